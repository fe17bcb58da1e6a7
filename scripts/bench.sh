#!/usr/bin/env bash
# Load comparison, one run, same upstream: plain reverse_proxy (:18080) against a
# flowgate-protected route with a valid session (:18082, bolt store). Prints
# req/s of both, the ratio, and p50/p99 latency. Loopback only.
#   BENCH_DURATION (default 10s)  BENCH_ROUNDS (default 3)  BENCH_CONNECTIONS (default 32)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-10s}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-32}
work=$(mktemp -d)
trap 'kill $caddy_pid 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT

go build -o "$work/caddy" ./cmd/caddy
hash=$("$work/caddy" hash-password --plaintext bench-pw)
cat >"$work/users.yaml" <<YAML
version: 1
users:
  - {username: bench, email: bench@example.com, name: Bench User, groups: [staff, dev], password_hash: "$hash"}
YAML
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:12019
	persist_config off
	grace_period 1ns
	flowgate {
		storage bolt $work/flowgate.db
		blueprints $work/users.yaml
	}
}
http://:18081 {
	bind 127.0.0.1
	respond "hello from upstream" 200
}
http://:18080 {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:18081
}
http://:18082 {
	bind 127.0.0.1
	flowgate
	reverse_proxy 127.0.0.1:18081
}
CADDY
XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config "$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18080/ && break; sleep 0.2; done

# Sign in once through the JSON API to get a session cookie.
jar=$work/jar
api=http://127.0.0.1:18082/.flowgate/api/v1/flows/default-authentication/
curl -fs -c "$jar" -b "$jar" "$api" >/dev/null
curl -fs -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"uid_field":"bench"}' "$api" >/dev/null
curl -fs -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"password":"bench-pw"}' "$api" | grep -q '"redirect"'
cookie=$(awk '$6=="flowgate_session"{print $7}' "$jar")
[ -n "$cookie" ] || { echo "no session cookie"; exit 1; }
curl -fs -H "Cookie: flowgate_session=$cookie" http://127.0.0.1:18082/ | grep -q "hello from upstream"

run() { # url [header...] -> "rps p50 p99" (latencies in ms)
	local out url=$1 args=()
	shift
	for h in "$@"; do args+=(-H "$h"); done
	out=$(wrk -t2 -c"$conns" -d"$duration" --latency "${args[@]}" "$url")
	local rps p50 p99
	rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
	p50=$(awk '$1=="50%"{print $2}' <<<"$out")
	p99=$(awk '$1=="99%"{print $2}' <<<"$out")
	echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000} }'; }

echo "wrk: $rounds rounds x $duration, $conns connections, alternating plain and protected"
plain_sum=0; prot_sum=0
for i in $(seq "$rounds"); do
	# Both get the same request, cookie included, so only flowgate's work differs.
	read -r p_rps p_50 p_99 < <(run http://127.0.0.1:18080/ "Cookie: flowgate_session=$cookie")
	read -r f_rps f_50 f_99 < <(run http://127.0.0.1:18082/ "Cookie: flowgate_session=$cookie")
	# For reference: plain reverse_proxy carrying the same identity headers the
	# upstream gets behind flowgate, which separates flowgate's own cost from
	# the cost of proxying four more headers.
	read -r h_rps _ _ < <(run http://127.0.0.1:18080/ "Cookie: flowgate_session=$cookie" \
		"Remote-User: bench" "Remote-Email: bench@example.com" "Remote-Name: Bench User" "Remote-Groups: staff,dev")
	printf 'round %d  plain %8.0f req/s p50 %6.3fms p99 %6.3fms | flowgate %8.0f req/s p50 %6.3fms p99 %6.3fms | plain+identity headers %8.0f req/s\n' \
		"$i" "$p_rps" "$p_50" "$p_99" "$f_rps" "$f_50" "$f_99" "$h_rps"
	hdr_sum=$(awk -v a="${hdr_sum:-0}" -v b="$h_rps" 'BEGIN{print a+b}')
	plain_sum=$(awk -v a="$plain_sum" -v b="$p_rps" 'BEGIN{print a+b}')
	prot_sum=$(awk -v a="$prot_sum" -v b="$f_rps" 'BEGIN{print a+b}')
	last_p99_plain=$p_99; last_p99_fg=$f_99
done
awk -v p="$plain_sum" -v f="$prot_sum" -v h="$hdr_sum" -v n="$rounds" -v a="$last_p99_plain" -v b="$last_p99_fg" 'BEGIN{
	printf "mean: plain %.0f req/s, flowgate %.0f req/s, ratio %.3f; p99 added (last round) %.3f ms\n", p/n, f/n, f/p, b-a
	printf "      flowgate vs plain with the same identity headers: ratio %.3f\n", f/h }'
