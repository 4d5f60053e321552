#!/usr/bin/env bash
# Delivery queue benchmark (issue 4), all on 127.0.0.1, stopping by itself:
#  1. accept: wrk POSTs /v1/deliveries with 64 connections for DURATION; every 202 is
#     durable (WAL, synchronous = FULL). Deliveries are queued for an hour later so
#     the worker stays idle: this is the accept path alone.
#  2. dispatch: those deliveries are made due at once and the gateway restarted; the
#     time until all are delivered to an nginx sink gives deliveries per second.
#  3. the raw SQLite ceiling in the same run and on the same disk: single-row and
#     batched (64 rows) transactions of the same row shape, WAL + synchronous = FULL,
#     through Python's sqlite3 (the C library; Python's own cost is small beside a commit).
#
# Usage: scripts/bench-deliveries.sh        (DURATION=10s CONNECTIONS=64 to change)
# Needs nginx, wrk and sqlite3 (installed with apt-get when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-64}"
sink_port=18191
belay_port=18192

# shellcheck source=bench-common.sh
source "$root/scripts/bench-common.sh"
bench_need nginx wrk sqlite3

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
    server { listen 127.0.0.1:$sink_port; location / { return 200 '{"ok":true}'; } }
}
CONF
"$nginx_bin" -c "$work/sink.conf" & pids+=($!)

echo "building belay (release)..." >&2
(cd "$root" && swift build -c release --product belay >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
db="$work/data/belay.db"
cat > "$work/belay.yaml" <<YAML
server: { listen: "127.0.0.1:$belay_port" }
storage: { url: "sqlite:$db" }
upstreams:
  sink:
    endpoints: ["http://127.0.0.1:$sink_port"]
    idempotency: { header: "Idempotency-Key" }
deliveries: { concurrency: 64 }
YAML

start_belay() {
    "$root/.build/release/belay" serve --config "$work/belay.yaml" --log-level error --log-format json \
        >>"$work/belay.log" 2>&1 &
    belay_pid=$!
    pids+=($belay_pid)
    for _ in $(seq 1 200); do
        curl -fsS -o /dev/null "http://127.0.0.1:$belay_port/healthz" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "error: belay did not start" >&2
    cat "$work/belay.log" >&2
    exit 1
}

# 1. Accept throughput.
later="$(date -u -d '+1 hour' '+%Y-%m-%dT%H:%M:%SZ')"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"upstream":"sink","method":"POST","path":"/v1/orders","not_before":"$later","body":{"order":{"id":42,"amount":1000,"currency":"eur","items":[1,2,3]}}}'
LUA
start_belay
wrk -t2 -c8 -d2s -s "$work/post.lua" "http://127.0.0.1:$belay_port/v1/deliveries" >/dev/null  # warm-up
out="$(wrk -t2 -c"$connections" -d"$duration" --latency -s "$work/post.lua" "http://127.0.0.1:$belay_port/v1/deliveries")"
accept_rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
accept_p50="$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
accept_p99="$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
errors="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
[ -z "$errors" ] || echo "warning: $errors non-2xx answers while accepting" >&2
kill "$belay_pid"; wait "$belay_pid" 2>/dev/null || true

# 2. Dispatch throughput: make everything due now, restart, time until all are delivered.
queued="$(sqlite3 "$db" "SELECT COUNT(*) FROM deliveries")"
sqlite3 "$db" "UPDATE deliveries SET due_at = CAST(strftime('%s','now') AS INTEGER) * 1000"
begin="$(date +%s.%N)"
start_belay
while :; do
    left="$(sqlite3 "$db" "SELECT COUNT(*) FROM deliveries WHERE status != 'delivered'" 2>/dev/null || echo "$queued")"
    [ "$left" = 0 ] && break
    if awk -v b="$begin" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - b > 300) }'; then
        echo "error: $left deliveries still undelivered after 300 s" >&2
        exit 1
    fi
    sleep 0.2
done
end="$(date +%s.%N)"
dispatch_rps="$(awk -v n="$queued" -v b="$begin" -v e="$end" 'BEGIN { printf "%.0f", n / (e - b) }')"
kill "$belay_pid"; wait "$belay_pid" 2>/dev/null || true

# 3. The raw SQLite ceiling, same durability, same disk.
read -r single batched < <(python3 - "$work/raw.db" <<'PY'
import os, sqlite3, sys, time
path = sys.argv[1]
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("""CREATE TABLE t (id TEXT PRIMARY KEY, upstream TEXT, method TEXT, path TEXT, headers TEXT,
    body BLOB, idempotency_key TEXT, fingerprint TEXT, status TEXT, due_at INTEGER, created_at INTEGER)""")
row = ("sink", "POST", "/v1/orders", '[{"name":"Content-Type","value":"application/json"}]',
       b'{"order":{"id":42,"amount":1000,"currency":"eur","items":[1,2,3]}}', "k", "f" * 64, "pending", 0, 0)
def insert(n):
    db.execute("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?)", (os.urandom(12).hex(),) + row)
def rate(rows_per_txn, seconds=3.0):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(rows_per_txn):
            insert(count)
            count += 1
        db.execute("COMMIT")
    return count / (time.perf_counter() - start)
print(f"{rate(1):.0f} {rate(64):.0f}")
PY
)

cat <<TABLE

| measure | result | target |
|:--|--:|--:|
| accepted/s (durable 202s, $connections connections, $duration) | $accept_rps | ≥ 5,000 |
| accept p50 / p99 | ${accept_p50} ms / ${accept_p99} ms | p99 ≤ 20 ms |
| delivered/s to a local sink ($queued deliveries, concurrency 64) | $dispatch_rps | ≥ 2,000 |
| raw SQLite, one row per transaction (rows/s) | $single | — |
| raw SQLite, 64 rows per transaction (rows/s) | $batched | — |

($(date -u '+%Y-%m-%d %H:%M UTC'), release build, WAL + synchronous = FULL)
TABLE
