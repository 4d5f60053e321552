#!/usr/bin/env bash
# Webhook inbox benchmark (issue 5), all on 127.0.0.1, stopping by itself:
#  1. ingest throughput: wrk POSTs Standard Webhooks events to /webhooks/shop with 64
#     connections for DURATION. Every event has its own id and a valid signature (signed
#     beforehand by Python: wrk cannot compute an HMAC), so each 200 is a verified,
#     deduplicated, durable commit of the event and its forward. Forwards go to an nginx
#     sink meanwhile, as in production.
#  2. acknowledgement latency at a fixed RATE (default 1,000 events/s) for DURATION: an
#     open-loop Python driver on 32 keep-alive connections sends each event at its
#     scheduled time and measures from that time (a slow answer delays no later event,
#     so the figures are free of coordinated omission).
#
# Usage: scripts/bench-webhooks.sh     (DURATION=10s CONNECTIONS=64 RATE=1000 to change)
# Needs nginx and wrk (installed with apt-get when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${DURATION:-10s}"
seconds="${duration%s}"
connections="${CONNECTIONS:-64}"
rate="${RATE:-1000}"
sink_port=18291
belay_port=18292
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# shellcheck source=bench-common.sh
source "$root/scripts/bench-common.sh"
bench_need nginx wrk

cat > "$work/sink.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/sink.pid;
error_log $work/sink.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$sink_port; location / { return 204; } }
}
CONF
"$nginx_bin" -c "$work/sink.conf" & pids+=($!)

echo "building belay (release)..." >&2
(cd "$root" && swift build -c release --product belay >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
cat > "$work/belay.yaml" <<YAML
server: { listen: "127.0.0.1:$belay_port" }
storage: { url: "sqlite:$work/data/belay.db" }
deliveries: { concurrency: 64 }
webhooks:
  shop:
    verify: { scheme: standard-webhooks, secret: "$secret" }
    forward_to: "http://127.0.0.1:$sink_port/hooks/shop"
    forward_secret: "whsec_dGhpcyBpcyBiZWxheSdzIGZvcndhcmQgc2VjcmV0"
YAML
"$root/.build/release/belay" serve --config "$work/belay.yaml" --log-level error --log-format json \
    >"$work/belay.log" 2>&1 & pids+=($!)
for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$belay_port/healthz" 2>/dev/null && break
    sleep 0.05
done

# The events: one body, a unique id and signature each. Timestamps are now, well inside
# the 5-minute tolerance for the whole run.
body='{"type":"order.paid","data":{"object":{"id":"ord_42","amount":1000,"currency":"eur","items":[1,2,3]}}}'
count=$((seconds * 24000 + 40000))
python3 - "$work/events.txt" "$secret" "$body" "$count" <<'PY'
import base64, hashlib, hmac, sys, time
path, secret, body, count = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
key = base64.b64decode(secret.removeprefix("whsec_"))
stamp = str(int(time.time()))
with open(path, "w") as out:
    for n in range(count):
        msg_id = f"msg_{n:09d}"
        mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        out.write(f"{msg_id} {stamp} v1,{base64.b64encode(mac).decode()}\n")
PY

# 1. Throughput: each wrk thread takes every other line, so no id is sent twice.
cat > "$work/events.lua" <<LUA
local threads = {}
function setup(thread)
    thread:set("index", #threads)
    table.insert(threads, thread)
end
function init(args)
    events = {}
    local n = 0
    for line in io.lines("$work/events.txt") do
        if n % 2 == index then table.insert(events, line) end
        n = n + 1
    end
    next_event = 1
    body = '$body'
end
function request()
    local line = events[next_event]
    next_event = next_event + 1
    if line == nil then line = events[1] end
    local id, stamp, signature = line:match("(%S+) (%S+) (%S+)")
    return wrk.format("POST", "/webhooks/shop", {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = stamp,
        ["webhook-signature"] = signature,
    }, body)
end
LUA
out="$(wrk -t2 -c"$connections" -d"$duration" --latency -s "$work/events.lua" "http://127.0.0.1:$belay_port")"
ingest_rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
sent="$(echo "$out" | awk '/requests in/ {print $1}')"
errors="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
[ -z "$errors" ] || echo "warning: $errors non-2xx answers while ingesting" >&2
if [ "$((sent * 2))" -gt "$count" ]; then echo "warning: ids ran out; some events were repeats" >&2; fi

# The first phase left tens of thousands of forwards queued: let them drain, so the
# fixed-rate phase measures a steady state (each event's forward sent as it comes).
for _ in $(seq 1 600); do
    busy="$(curl -fsS "http://127.0.0.1:$belay_port/v1/deliveries?status=pending&limit=1" | tr -d ' \n')"
    flying="$(curl -fsS "http://127.0.0.1:$belay_port/v1/deliveries?status=in_flight&limit=1" | tr -d ' \n')"
    case "$busy$flying" in *'"id"'*) sleep 0.5 ;; *) break ;; esac
done

# 2. Fixed rate, with ids the first phase did not use (each wrk thread took every other
#    line, so fewer than twice as many lines as it sent).
read -r fixed_sent fixed_p50 fixed_p99 fixed_max fixed_errors < <(
    python3 - "$work/events.txt" "$body" "$rate" "$seconds" "$belay_port" "$((sent * 2))" <<'PY'
import asyncio, sys, time
path, body, rate, seconds, port, skip = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
with open(path) as source:
    events = [line.split() for line in source.readlines()[skip + 1000:]]
total = min(int(rate * seconds), len(events))
latencies, errors = [], 0

async def connection(queue):
    global errors
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        item = await queue.get()
        if item is None:
            writer.close()
            return
        scheduled, (msg_id, stamp, signature) = item
        writer.write(
            b"POST /webhooks/shop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"webhook-id: {msg_id}\r\nwebhook-timestamp: {stamp}\r\nwebhook-signature: {signature}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            errors += 1
        latencies.append(time.perf_counter() - scheduled)

async def main():
    queues = [asyncio.Queue() for _ in range(32)]
    workers = [asyncio.create_task(connection(q)) for q in queues]
    start = time.perf_counter() + 0.1
    for n in range(total):
        at = start + n / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        # The least busy connection takes it; the clock starts at the scheduled time.
        min(queues, key=lambda q: q.qsize()).put_nowait((at, events[n]))
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*workers)

asyncio.run(main())
latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
print(f"{len(latencies)} {pct(0.50):.2f} {pct(0.99):.2f} {latencies[-1] * 1000:.2f} {errors}")
PY
)
[ "$fixed_errors" = 0 ] || echo "warning: $fixed_errors non-200 answers at the fixed rate" >&2

cat <<TABLE

| measure | result | target |
|:--|--:|--:|
| verified, durable acknowledgements/s ($connections connections, $duration) | $ingest_rps | ≥ 5,000 |
| acknowledgement p50 / p99 / max at $rate events/s ($fixed_sent events) | ${fixed_p50} ms / ${fixed_p99} ms / ${fixed_max} ms | p99 ≤ 20 ms |

($(date -u '+%Y-%m-%d %H:%M UTC'), release build, WAL + synchronous = FULL, forwards to a local nginx sink meanwhile)
TABLE
