#!/usr/bin/env bash
# Capacity benchmark (issue 19): a provider with a fixed capacity — 8 workers of 20 ms, a
# waiting line of 8, 429 beyond: 400 calls/s at most — and 64 callers through `belay serve`
# (release build) for DURATION each, once with a fixed bulkhead (`max_concurrent: 100`) and
# once with the adaptive limit (`bulkhead.adaptive`, ALGORITHM, gradient by default). No
# retries, no breaker: what the provider refuses reaches the callers.
#
# Prints both runs side by side: successful calls/s (and as a share of the provider's
# capacity; target >= 90 % with adaptive), the share of the provider's answers that were
# 429 (target <= 5 %), the time at the provider — its own waiting line included — at p50
# and p99 (target p50 <= 1.5x its 20 ms service time: the provider's queue stays empty), and
# the latency the callers saw (wrk). Everything listens on 127.0.0.1 and stops by itself.
#
# Usage: scripts/bench-capacity.sh     (DURATION=30s CONNECTIONS=64 ALGORITHM=aimd to change;
#        BUILD=debug uses the debug build: at 400 calls/s the provider, not Belay, is the limit)
# Needs wrk and curl (wrk installed with apt-get when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${DURATION:-30s}"
connections="${CONNECTIONS:-64}"
algorithm="${ALGORITHM:-gradient}"
build="${BUILD:-release}"
upstream_port=18191
belay_ports=(18192 18193)
names=(fixed adaptive)
workers=8
line=8
service_ms=20

# shellcheck source=bench-common.sh
source "$root/scripts/bench-common.sh"
bench_need wrk curl

echo "building belay and belay-test-upstream ($build)..." >&2
for product in belay belay-test-upstream; do
    (cd "$root" && swift build -c "$build" --product "$product" >>"$work/build.log" 2>&1) \
        || { cat "$work/build.log" >&2; exit 1; }
done
bin="$root/.build/$build"

"$bin/belay-test-upstream" "$upstream_port" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "error: $1 did not answer" >&2; exit 1; }
wait_for "http://127.0.0.1:$upstream_port/__upstream/requests"
curl -fsS -o /dev/null -X DELETE "http://127.0.0.1:$upstream_port/__upstream/requests"

bulkheads=(
    "{ max_concurrent: 100, max_queue: 50 }"
    "{ adaptive: { algorithm: $algorithm, initial: 20, min: 2, max: 200 }, max_queue: 100, max_wait: 5s }"
)
for i in 0 1; do
    name="${names[$i]}"
    mkdir -p "$work/$name"
    # One path (and so one capacity, counted on its own) per run.
    curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$upstream_port/__upstream/behavior?path=/$name" \
        -H 'Content-Type: application/json' \
        -d "{\"latencyMilliseconds\":$service_ms,\"capacity\":$workers,\"capacityQueue\":$line,\"body\":\"{}\"}"
    cat > "$work/$name/belay.yaml" <<YAML
server: { listen: "127.0.0.1:${belay_ports[$i]}" }
storage: { url: "sqlite:$work/$name/belay.db" }
audit: { enabled: false }
upstreams:
  cap:
    endpoints: ["http://127.0.0.1:$upstream_port"]
    timeouts: { connect: 1s, attempt: 5s, total: 10s }
    retry: { max_attempts: 1 }
    circuit_breaker: { minimum_throughput: 1000000 }
    bulkhead: ${bulkheads[$i]}
YAML
    "$bin/belay" serve --config "$work/$name/belay.yaml" --log-level warning --log-format json \
        >"$work/$name/belay.log" 2>&1 &
    pids+=($!)
done
for port in "${belay_ports[@]}"; do wait_for "http://127.0.0.1:$port/healthz"; done

run() { # name
    local name="$1" port="${belay_ports[$2]}"
    echo "running $name: $connections callers for $duration..." >&2
    wrk -t2 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$port/proxy/cap/$name/quote" >"$work/$name/wrk.txt"
    curl -fsS "http://127.0.0.1:$upstream_port/__upstream/capacity?path=/$name" >"$work/$name/capacity.json"
    curl -fsS "http://127.0.0.1:$port/v1/upstreams/cap" >"$work/$name/upstream.json" || echo '{}' >"$work/$name/upstream.json"
}
run fixed 0
run adaptive 1

python3 - "$work" "$duration" "$workers" "$service_ms" "$algorithm" <<'PY'
import json, re, sys
work, duration, workers, service, algorithm = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
seconds = float(re.sub(r"[a-z]+$", "", duration)) * {"s": 1, "m": 60}.get(re.sub(r"^[0-9.]+", "", duration) or "s", 1)
capacity = workers * 1000 / service

def ms(text):
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.sub(r"^[0-9.]+", "", text)
    return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]

rows = {}
for name in ("fixed", "adaptive"):
    wrk = open(f"{work}/{name}/wrk.txt").read()
    total = int(re.search(r"(\d+) requests in", wrk).group(1))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", wrk) or [0, 0])[1])
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", wrk, re.M))
    provider = json.load(open(f"{work}/{name}/capacity.json"))
    upstream = json.load(open(f"{work}/{name}/upstream.json"))
    limit = (upstream.get("concurrency") or {}).get("limit")
    answered = provider["served"] + provider["refused"]
    rows[name] = {
        "ok/s": (total - non2xx) / seconds,
        "capacity": (total - non2xx) / seconds / capacity,
        "refused": provider["refused"] / answered if answered else 0,
        "p50 at provider": provider["p50Milliseconds"],
        "p99 at provider": provider["p99Milliseconds"],
        "p50 callers": ms(lat.get("50", "0ms")),
        "p99 callers": ms(lat.get("99", "0ms")),
        "limit": limit,
    }

print(f"\nprovider: {workers} workers of {service:.0f} ms, a line of 8, 429 beyond ({capacity:.0f} calls/s); {duration} each")
print(f"{'':28}{'fixed (100)':>14}{'adaptive (' + algorithm + ')':>22}")
f, a = rows["fixed"], rows["adaptive"]
print(f"{'successful calls/s':28}{f['ok/s']:>14.0f}{a['ok/s']:>22.0f}")
print(f"{'  of the capacity':28}{f['capacity']:>13.0%} {a['capacity']:>21.0%}   (target >= 90 %)")
print(f"{'provider answers 429':28}{f['refused']:>13.1%} {a['refused']:>21.1%}   (target <= 5 %)")
print(f"{'time at provider p50 (ms)':28}{f['p50 at provider']:>14.1f}{a['p50 at provider']:>22.1f}   (target <= {1.5 * service:.0f})")
print(f"{'time at provider p99 (ms)':28}{f['p99 at provider']:>14.1f}{a['p99 at provider']:>22.1f}")
print(f"{'callers p50 (ms)':28}{f['p50 callers']:>14.1f}{a['p50 callers']:>22.1f}")
print(f"{'callers p99 (ms)':28}{f['p99 callers']:>14.1f}{a['p99 callers']:>22.1f}")
print(f"{'adaptive limit at the end':28}{'':>14}{str(a['limit']):>22}")
PY
