#!/usr/bin/env bash
# Login flood (issue 8): FLOOD_FLOWS sign-in flows sent at once to a bolt-backed
# gateway whose users have argon2id hashes at Caddy's default cost (m=46 MiB,
# as `caddy hash-password --algorithm argon2id` writes them). Each flow comes
# from its own client IP (X-Forwarded-For from a trusted proxy, so regulation
# rightly does not stop them) and ends in a wrong password for an unknown name,
# checked against the dummy hash of the same cost. Meanwhile a signed-in user's
# proxied GETs are timed. Password hashing runs at its defaults (concurrency
# cores - 1, at least 1; queue 4 x that; max wait 2s) unless FLOOD_HASHING holds the
# options of a password_hashing block, e.g. FLOOD_HASHING="concurrency 1; queue 2". scripts/flood/ prints the figures and exits 1
# if a target is missed. Loopback only, bounded in count and time.
#   FLOOD_FLOWS (default 400)  FLOOD_MAX_RSS_MIB (default 512)  FLOOD_MAX_P99 (default 100ms)
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${FLOOD_FLOWS:-400}
work=$(mktemp -d)
caddy_pid=""
trap 'kill $caddy_pid 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT

go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/flood" ./scripts/flood
{
	echo "version: 1"
	echo "users:"
	for u in bench alice bob carol; do
		h=$("$work/caddy" hash-password --algorithm argon2id --plaintext "$u-pw")
		echo "  - {username: $u, email: $u@example.com, name: $u, password_hash: \"$h\"}"
	done
} >"$work/users.yaml"
grep -q 'argon2id\$v=19\$m=47104,t=1,p=1' "$work/users.yaml" || { echo "caddy hash-password did not write default argon2id hashes"; exit 1; }
hashing=""
[ -z "${FLOOD_HASHING:-}" ] || hashing="password_hashing {"$'\n'"${FLOOD_HASHING//;/$'\n'}"$'\n'"}"
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:12021
	persist_config off
	grace_period 1ns
	servers {
		trusted_proxies static 127.0.0.1/8
	}
	flowgate {
		storage bolt $work/flowgate.db
		blueprints $work/users.yaml $PWD/examples/blueprints/default-flows.yaml
		$hashing
	}
}
http://:18091 {
	bind 127.0.0.1
	respond "hello from upstream" 200
}
http://:18092 {
	bind 127.0.0.1
	flowgate
	reverse_proxy 127.0.0.1:18091
}
CADDY
XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config "$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18092/.flowgate/static/flowgate.css && break; sleep 0.2; done
kill -0 "$caddy_pid" 2>/dev/null || { echo "caddy did not start:"; tail -5 "$work/caddy.log"; exit 1; }

jar=$work/jar api=http://127.0.0.1:18092/.flowgate/api/v1/flows/default-authentication/
curl -fs -c "$jar" -b "$jar" "$api" >/dev/null
curl -fs -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"uid_field":"bench"}' "$api" >/dev/null
curl -fs -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"password":"bench-pw"}' "$api" | grep -q '"redirect"'
cookie=$(awk '$6=="flowgate_session"{print $7}' "$jar")
[ -n "$cookie" ] || { echo "no session cookie"; exit 1; }
curl -fs -H "Cookie: flowgate_session=$cookie" http://127.0.0.1:18092/ | grep -q "hello from upstream"

echo "gateway RSS before the flood: $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$caddy_pid/status)"
"$work/flood" -target http://127.0.0.1:18092 -flows "$flows" -cookie "$cookie" -pid "$caddy_pid" \
	-max-rss-mib "${FLOOD_MAX_RSS_MIB:-512}" -max-p99 "${FLOOD_MAX_P99:-100ms}"
