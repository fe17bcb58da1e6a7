#!/usr/bin/env bash
# Load comparison, one run, same upstream: plain reverse_proxy (:18080) against
# flowgate-protected routes with a valid session: bolt store (:18082) and, in a
# second Caddy, Redis store (:18083, a private redis-server). Prints req/s, the
# ratios, and p50/p99 latency. Loopback only.
#   BENCH_DURATION (default 10s)  BENCH_ROUNDS (default 3)  BENCH_CONNECTIONS (default 32)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-10s}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-32}
work=$(mktemp -d)
[ -z "${BENCH_KEEP:-}" ] || echo "work dir: $work"
redis_pid=""; caddy2_pid=""
trap 'kill $caddy_pid $caddy2_pid $redis_pid 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT

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

# The Redis-backed gateway: a second Caddy, same upstream.
redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
cat >"$work/Caddyfile.redis" <<CADDY
{
	admin localhost:12020
	persist_config off
	grace_period 1ns
	flowgate {
		storage redis redis://127.0.0.1:16379
		blueprints $work/users.yaml
	}
}
http://:18083 {
	bind 127.0.0.1
	flowgate
	reverse_proxy 127.0.0.1:18081
}
# Plain reverse_proxy in the same process as the Redis-backed route.
http://:18084 {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:18081
}
CADDY
sleep 0.5
XDG_DATA_HOME=$work/data2 XDG_CONFIG_HOME=$work/config2 "$work/caddy" run --config "$work/Caddyfile.redis" >"$work/caddy2.log" 2>&1 &
caddy2_pid=$!
for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18083/.flowgate/static/flowgate.css && break; sleep 0.2; done

# Sign in once on each gateway through the JSON API to get a session cookie.
login() { # port -> cookie
	local jar=$work/jar.$1 api=http://127.0.0.1:$1/.flowgate/api/v1/flows/default-authentication/
	curl -fs -c "$jar" -b "$jar" "$api" >/dev/null
	curl -fs -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"uid_field":"bench"}' "$api" >/dev/null
	curl -fs -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"password":"bench-pw"}' "$api" | grep -q '"redirect"'
	awk '$6=="flowgate_session"{print $7}' "$jar"
}
cookie=$(login 18082)
rcookie=$(login 18083)
[ -n "$cookie" ] && [ -n "$rcookie" ] || { echo "no session cookie"; exit 1; }
curl -fs -H "Cookie: flowgate_session=$cookie" http://127.0.0.1:18082/ | grep -q "hello from upstream"
curl -fs -H "Cookie: flowgate_session=$rcookie" http://127.0.0.1:18083/ | grep -q "hello from upstream"

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

echo "wrk: $rounds rounds x $duration, $conns connections, alternating plain and protected routes"
plain_sum=0; prot_sum=0
for i in $(seq "$rounds"); do
	# Both get the same request, cookie included, so only flowgate's work differs.
	read -r p_rps p_50 p_99 < <(run http://127.0.0.1:18080/ "Cookie: flowgate_session=$cookie")
	read -r f_rps f_50 f_99 < <(run http://127.0.0.1:18082/ "Cookie: flowgate_session=$cookie")
	read -r q_rps _ _ < <(run http://127.0.0.1:18084/ "Cookie: flowgate_session=$rcookie")
	read -r r_rps r_50 r_99 < <(run http://127.0.0.1:18083/ "Cookie: flowgate_session=$rcookie")
	# For reference: plain reverse_proxy carrying the same identity headers the
	# upstream gets behind flowgate, which separates flowgate's own cost from
	# the cost of proxying four more headers.
	read -r h_rps _ _ < <(run http://127.0.0.1:18080/ "Cookie: flowgate_session=$cookie" \
		"Remote-User: bench" "Remote-Email: bench@example.com" "Remote-Name: Bench User" "Remote-Groups: staff,dev")
	printf 'round %d  plain %6.0f req/s p50 %5.2fms p99 %5.2fms | bolt %6.0f req/s p50 %5.2fms p99 %5.2fms | redis %6.0f req/s p50 %5.2fms p99 %5.2fms | plain in the redis process %6.0f req/s | plain+identity headers %6.0f req/s\n' \
		"$i" "$p_rps" "$p_50" "$p_99" "$f_rps" "$f_50" "$f_99" "$r_rps" "$r_50" "$r_99" "$q_rps" "$h_rps"
	red_sum=$(awk -v a="${red_sum:-0}" -v b="$r_rps" 'BEGIN{print a+b}')
	plain2_sum=$(awk -v a="${plain2_sum:-0}" -v b="$q_rps" 'BEGIN{print a+b}')
	hdr_sum=$(awk -v a="${hdr_sum:-0}" -v b="$h_rps" 'BEGIN{print a+b}')
	plain_sum=$(awk -v a="$plain_sum" -v b="$p_rps" 'BEGIN{print a+b}')
	prot_sum=$(awk -v a="$prot_sum" -v b="$f_rps" 'BEGIN{print a+b}')
	lat=$(awk -v a="${lat:-0 0 0 0}" -v b="$p_50 $p_99 $f_50 $f_99" 'BEGIN{split(a,x," "); split(b,y," "); printf "%f %f %f %f", x[1]+y[1], x[2]+y[2], x[3]+y[3], x[4]+y[4]}')
done
awk -v p="$plain_sum" -v f="$prot_sum" -v r="$red_sum" -v q="$plain2_sum" -v h="$hdr_sum" -v n="$rounds" -v lat="$lat" 'BEGIN{
	split(lat, l, " ")
	printf "mean: plain %.0f req/s, flowgate+bolt %.0f req/s (ratio %.3f), flowgate+redis %.0f req/s (ratio %.3f)\n", p/n, f/n, f/p, r/n, r/p
	printf "      latency added by flowgate+bolt: p50 %+.3f ms, p99 %+.3f ms (means over rounds)\n", (l[3]-l[1])/n, (l[4]-l[2])/n
	printf "      flowgate+redis vs plain reverse_proxy in the same (second) Caddy: ratio %.3f\n", r/q
	printf "      flowgate+bolt vs plain with the same identity headers: ratio %.3f\n", f/h }'
