#!/usr/bin/env bash
# Load comparison, one run, same upstream: plain reverse_proxy (:18080) against
# flowgate-protected routes with a valid session: bolt store (:18082) and, in a
# second Caddy, Redis store (:18083, a private redis-server). For reference,
# plain reverse_proxy adding the same four identity headers with header_up
# (:18085): what carrying them costs without any authentication; and flowgate
# sending Remote-User only (:18086, header_email/name/groups -).
# Throughput at saturation (BENCH_CONNECTIONS), then the latency a single
# request sees (one connection, no queueing). Prints req/s, the ratios and
# p50/p99. Loopback only.
#   BENCH_DURATION (default 10s)  BENCH_ROUNDS (default 3)  BENCH_CONNECTIONS (default 32)
#   BENCH_LATENCY_ROUNDS (default 6, 5 s each)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-10s}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-32}
lat_rounds=${BENCH_LATENCY_ROUNDS:-6}
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
http://:18085 {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:18081 {
		header_up Remote-User bench
		header_up Remote-Email bench@example.com
		header_up Remote-Name "Bench User"
		header_up Remote-Groups staff,dev
	}
}
http://:18082 {
	bind 127.0.0.1
	flowgate
	reverse_proxy 127.0.0.1:18081
}
http://:18086 {
	bind 127.0.0.1
	flowgate {
		header_email -
		header_name -
		header_groups -
	}
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

run() { # connections duration url -> "rps p50 p99" (latencies in ms); every run sends the session cookie
	local out
	out=$(wrk -t"$(( $1 < 2 ? 1 : 2 ))" -c"$1" -d"$2" --latency -H "Cookie: flowgate_session=$4" "$3")
	local rps p50 p99
	rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
	p50=$(awk '$1=="50%"{print $2}' <<<"$out")
	p99=$(awk '$1=="99%"{print $2}' <<<"$out")
	echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000} }'; }

# Throughput: every route gets the same request, cookie included, so only what
# sits in front of reverse_proxy differs. Rounds alternate the routes.
echo "throughput: $rounds rounds x $duration, $conns connections, routes alternating"
tp=""
for i in $(seq "$rounds"); do
	read -r p_rps p_50 p_99 < <(run "$conns" "$duration" http://127.0.0.1:18080/ "$cookie")
	read -r f_rps f_50 f_99 < <(run "$conns" "$duration" http://127.0.0.1:18082/ "$cookie")
	read -r u_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18085/ "$cookie")
	read -r o_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18086/ "$cookie")
	read -r q_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18084/ "$rcookie")
	read -r r_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18083/ "$rcookie")
	printf 'round %d  plain %6.0f req/s p50 %5.2fms p99 %5.2fms | bolt %6.0f req/s p50 %5.2fms p99 %5.2fms | plain+header_up %6.0f req/s | bolt, Remote-User only %6.0f req/s | redis %6.0f req/s, plain in its process %6.0f req/s\n' \
		"$i" "$p_rps" "$p_50" "$p_99" "$f_rps" "$f_50" "$f_99" "$u_rps" "$o_rps" "$r_rps" "$q_rps"
	tp="$tp$p_rps $f_rps $u_rps $q_rps $r_rps $p_50 $p_99 $f_50 $f_99 $o_rps"$'\n'
done
awk 'NF { for (k = 1; k <= NF; k++) s[k] += $k; n++ }
END {
	printf "mean: plain %.0f req/s, flowgate+bolt %.0f req/s: ratio %.3f\n", s[1]/n, s[2]/n, s[2]/s[1]
	printf "      plain adding the four identity headers (header_up, no flowgate): ratio %.3f to plain; flowgate+bolt to it: %.3f\n", s[3]/s[1], s[2]/s[3]
	printf "      flowgate+bolt sending Remote-User only: ratio %.3f\n", s[10]/s[1]
	printf "      flowgate+redis vs plain reverse_proxy in the same (second) Caddy: ratio %.3f (%.3f to the first Caddy'"'"'s plain)\n", s[5]/s[4], s[5]/s[1]
	printf "      latency at saturation, added by flowgate+bolt: p50 %+.3f ms, p99 %+.3f ms\n", (s[8]-s[6])/n, (s[9]-s[7])/n
}' <<<"$tp"

# Latency: one request in flight, so no queueing; the added latency is
# flowgate's. p99 on two shared cores swings by up to a millisecond per run
# (GC and scheduling), so rounds alternate and the mean of the differences is
# reported with its range.
echo "latency: $lat_rounds rounds x 5s, 1 connection, routes alternating"
lt=""
for i in $(seq "$lat_rounds"); do
	read -r _ p_50 p_99 < <(run 1 5s http://127.0.0.1:18080/ "$cookie")
	read -r _ f_50 f_99 < <(run 1 5s http://127.0.0.1:18082/ "$cookie")
	printf 'round %d  plain p50 %.3fms p99 %.3fms | bolt p50 %.3fms p99 %.3fms\n' "$i" "$p_50" "$p_99" "$f_50" "$f_99"
	lt="$lt$p_50 $p_99 $f_50 $f_99"$'\n'
done
awk 'NF { d50 = $3-$1; d99 = $4-$2; s50 += d50; s99 += d99; n++
	if (n == 1 || d99 < lo) lo = d99; if (n == 1 || d99 > hi) hi = d99 }
END { printf "mean added latency, one request at a time: p50 %+.3f ms, p99 %+.3f ms (per-round p99 difference %+.3f to %+.3f ms)\n", s50/n, s99/n, lo, hi }' <<<"$lt"
