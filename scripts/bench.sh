#!/usr/bin/env bash
# Load comparison, one run, same upstream: plain reverse_proxy (:18080) against
# flowgate-protected routes with a valid session: bolt store (:18082) and, in a
# second Caddy, Redis store (:18083, a private redis-server). For reference,
# plain reverse_proxy adding the same four identity headers with header_up
# (:18085): what carrying them costs without any authentication; and flowgate
# sending Remote-User only (:18086, header_email/name/groups -); and Caddy's
# forward_auth asking flowgate's auth/verify endpoint (:18087), which is what an
# external auth service costs at best: one more HTTP round trip per request.
# Throughput at saturation (BENCH_CONNECTIONS), then the latency a single
# request sees (one connection, no queueing). Prints req/s, the ratios and
# p50/p99. Loopback only.
#   BENCH_DURATION (default 5s)  BENCH_ROUNDS (default 6)  BENCH_CONNECTIONS (default 32)
#   BENCH_LATENCY_ROUNDS (default 6, 5 s each)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-5s}
rounds=${BENCH_ROUNDS:-6}
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
		blueprints $work/users.yaml $PWD/examples/blueprints/default-flows.yaml
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
http://:18087 {
	bind 127.0.0.1
	forward_auth 127.0.0.1:18082 {
		uri /.flowgate/auth/verify
		copy_headers Remote-User Remote-Email Remote-Name Remote-Groups
	}
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
		blueprints $work/users.yaml $PWD/examples/blueprints/default-flows.yaml
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
curl -fs -H "Cookie: flowgate_session=$cookie" http://127.0.0.1:18087/ | grep -q "hello from upstream"
curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:18087/ | grep -q 401 # forward_auth really asks flowgate
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
# sits in front of reverse_proxy differs. This machine's speed drifts by several
# percent within a minute, so each round runs plain reverse_proxy first and
# last and compares every route with the mean of the two; the plain-to-plain
# ratio of a round shows the noise. Ratios are medians over rounds, with range.
echo "throughput: $rounds rounds x $duration per route, $conns connections; plain runs first and last in each round"
tp=""
for i in $(seq "$rounds"); do
	read -r p_rps p_50 p_99 < <(run "$conns" "$duration" http://127.0.0.1:18080/ "$cookie")
	read -r f_rps f_50 f_99 < <(run "$conns" "$duration" http://127.0.0.1:18082/ "$cookie")
	read -r u_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18085/ "$cookie")
	read -r o_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18086/ "$cookie")
	read -r x_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18087/ "$cookie")
	read -r q_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18084/ "$rcookie")
	read -r r_rps _ _ < <(run "$conns" "$duration" http://127.0.0.1:18083/ "$rcookie")
	read -r p2_rps p2_50 p2_99 < <(run "$conns" "$duration" http://127.0.0.1:18080/ "$cookie")
	printf 'round %d  plain %6.0f/%6.0f req/s | bolt %6.0f | plain+header_up %6.0f | bolt, Remote-User only %6.0f | forward_auth %6.0f | redis %6.0f, plain in its process %6.0f\n' \
		"$i" "$p_rps" "$p2_rps" "$f_rps" "$u_rps" "$o_rps" "$x_rps" "$r_rps" "$q_rps"
	tp="$tp$p_rps $p2_rps $f_rps $u_rps $o_rps $q_rps $r_rps $p_50 $p_99 $p2_50 $p2_99 $f_50 $f_99 $x_rps"$'\n'
done
awk '
function med(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
function line(label, a, n,   lo, hi, i) { lo = hi = a[1]; for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
	printf "  %-58s %.3f (rounds %.3f to %.3f)\n", label, med(a, n), lo, hi }
NF { n++; p = ($1 + $2) / 2; plain += p
	bolt[n] = $3 / p; hdr[n] = $4 / p; vs[n] = $3 / $4; one[n] = $5 / p; fwd[n] = $14 / p; red[n] = $7 / $6; aa[n] = $2 / $1
	d50 += $12 - ($8 + $10) / 2; d99 += $13 - ($9 + $11) / 2 }
END {
	printf "ratios to plain reverse_proxy (mean plain %.0f req/s), median over %d rounds:\n", plain / n, n
	line("flowgate+bolt", bolt, n)
	line("plain + the four identity headers (header_up, no flowgate)", hdr, n)
	line("flowgate+bolt to that", vs, n)
	line("flowgate+bolt sending Remote-User only", one, n)
	line("forward_auth to flowgate'"'"'s auth/verify (an external check)", fwd, n)
	line("flowgate+redis to plain in the same (second) Caddy", red, n)
	line("noise: plain last to plain first", aa, n)
	printf "latency at saturation, added by flowgate+bolt: p50 %+.3f ms, p99 %+.3f ms (means)\n", d50 / n, d99 / n
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
