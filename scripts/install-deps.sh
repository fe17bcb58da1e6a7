#!/usr/bin/env bash
# Installs the Debian packages the tests (or the benchmark) need, when missing.
# Usage: scripts/install-deps.sh [package-for-command ...]  e.g. chromium wrk
set -euo pipefail
missing=()
for pkg in "$@"; do
	cmd=$pkg
	case "$pkg" in
	redis-server) cmd=redis-server ;;
	chromium) cmd=chromium ;;
	esac
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
