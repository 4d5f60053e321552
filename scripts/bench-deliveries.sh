#!/usr/bin/env bash
# Delivery queue benchmark (issues 4 and 12), all on 127.0.0.1, stopping by itself. For each
# backend — SQLite, PostgreSQL with one instance, PostgreSQL with three instances on one
# database — in the same run:
#  1. accept: wrk POSTs /v1/deliveries with 64 connections in all for DURATION (spread over
#     the instances); every 202 is durable (SQLite: WAL, synchronous = FULL; PostgreSQL:
#     synchronous_commit = on). Deliveries are queued for an hour later so the workers stay
#     idle: this is the accept path alone.
#  2. dispatch: those deliveries are made due at once and the instances restarted; the time
#     until all are delivered to an nginx sink gives deliveries per second.
#  3. the raw ceilings at the same durability on the same disk: SQLite single-row and
#     batched (64 rows) transactions through Python's sqlite3, PostgreSQL single-row and
#     batched commits through pgbench (64 clients).
#
# Usage: scripts/bench-deliveries.sh        (DURATION=10s CONNECTIONS=64 BACKENDS="sqlite pg1 pg3")
# Needs nginx, wrk, sqlite3 and a PostgreSQL server (installed with apt-get when missing
# and running as root); PostgreSQL runs as a throwaway cluster (scripts/pg-cluster.sh).
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
backends="${BACKENDS:-sqlite pg1 pg3}"
if [[ "$backends" == *pg* ]]; then
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || bench_need postgresql
    pgbench_bin="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -1)"
    chmod 755 "$work"  # the cluster runs as the postgres user, in a folder below it
    export BELAY_PG_DIR="$work/pg"
    eval "$("$root/scripts/pg-cluster.sh" start)"
    pg_stop() { "$root/scripts/pg-cluster.sh" stop; }
    trap 'pg_stop; cleanup' EXIT
    psql_belay() { PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U belay -d belay -qtAX "$@"; }
fi

later="$(date -u -d '+1 hour' '+%Y-%m-%dT%H:%M:%SZ')"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"upstream":"sink","method":"POST","path":"/v1/orders","not_before":"$later","body":{"order":{"id":42,"amount":1000,"currency":"eur","items":[1,2,3]}}}'
LUA

# write_configs BACKEND COUNT: one config per instance, on ports belay_port, +1, +2.
write_configs() {
    local storage
    case "$1" in
    sqlite) storage="sqlite:$work/data/belay.db" ;;
    *) storage="postgres://belay:$POSTGRES_PASSWORD@127.0.0.1:$POSTGRES_PORT/belay?sslmode=disable&pool_size=24&options=-c%20search_path%3D$1" ;;
    esac
    for i in $(seq 0 $(($2 - 1))); do
        cat > "$work/belay-$i.yaml" <<YAML
server: { listen: "127.0.0.1:$((belay_port + i))", instance: "bench-$i" }
storage: { url: "$storage" }
upstreams:
  sink:
    endpoints: ["http://127.0.0.1:$sink_port"]
    idempotency: { header: "Idempotency-Key" }
deliveries: { concurrency: 64 }
YAML
    done
}

instance_pids=()
start_instances() { # COUNT
    instance_pids=()
    for i in $(seq 0 $(($1 - 1))); do
        "$root/.build/release/belay" serve --config "$work/belay-$i.yaml" --log-level error --log-format json \
            >>"$work/belay-$i.log" 2>&1 &
        instance_pids+=($!)
        pids+=($!)
    done
    for i in $(seq 0 $(($1 - 1))); do
        local up=0
        for _ in $(seq 1 400); do
            if curl -fsS -o /dev/null "http://127.0.0.1:$((belay_port + i))/healthz" 2>/dev/null; then up=1; break; fi
            sleep 0.05
        done
        [ "$up" = 1 ] || { echo "error: belay instance $i did not start" >&2; cat "$work/belay-$i.log" >&2; exit 1; }
    done
}
stop_instances() {
    for pid in "${instance_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${instance_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# count BACKEND SQL: a number from the backend's database.
count() {
    case "$1" in
    sqlite) sqlite3 "$work/data/belay.db" "$2" 2>/dev/null || echo -1 ;;
    *) psql_belay -c "SET search_path = $1; $2" 2>/dev/null | tail -1 || echo -1 ;;
    esac
}

rows=()
bench_backend() { # BACKEND: sqlite, pg1 or pg3
    local backend=$1 n=1 label
    case "$backend" in
    sqlite) label="SQLite, 1 instance" ;;
    pg1) label="PostgreSQL, 1 instance" ;;
    pg3) n=3; label="PostgreSQL, 3 instances" ;;
    esac
    write_configs "$backend" "$n"
    # 1. Accept throughput: the connections spread over the instances, one wrk each, at once.
    start_instances "$n"
    for i in $(seq 0 $((n - 1))); do
        wrk -t1 -c4 -d2s -s "$work/post.lua" "http://127.0.0.1:$((belay_port + i))/v1/deliveries" >/dev/null  # warm-up
    done
    for i in $(seq 0 $((n - 1))); do
        wrk -t$((n == 1 ? 2 : 1)) -c$((connections / n)) -d"$duration" --latency -s "$work/post.lua" \
            "http://127.0.0.1:$((belay_port + i))/v1/deliveries" >"$work/wrk-$i.out" &
    done
    wait $(jobs -p | tail -n "$n") 2>/dev/null || true
    local rps=0 p50=0 p99=0
    for i in $(seq 0 $((n - 1))); do
        out="$(cat "$work/wrk-$i.out")"
        rps="$(awk -v a="$rps" -v b="$(echo "$out" | awk '/Requests\/sec/ {print $2}')" 'BEGIN { printf "%.0f", a + b }')"
        p50="$(awk -v a="$p50" -v b="$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")" 'BEGIN { print (b > a ? b : a) }')"
        p99="$(awk -v a="$p99" -v b="$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")" 'BEGIN { print (b > a ? b : a) }')"
        errors="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
        [ -z "$errors" ] || echo "warning: $label: $errors non-2xx answers while accepting" >&2
    done
    stop_instances
    # 2. Dispatch throughput: make everything due now, restart, time until all are delivered.
    local queued now_ms
    queued="$(count "$backend" "SELECT COUNT(*) FROM deliveries")"
    now_ms="$(($(date +%s) * 1000))"
    case "$backend" in
    sqlite) sqlite3 "$work/data/belay.db" "UPDATE deliveries SET due_at = $now_ms" ;;
    *) psql_belay -c "SET search_path = $backend; UPDATE deliveries SET due_at = $now_ms" >/dev/null ;;
    esac
    local begin end left
    begin="$(date +%s.%N)"
    start_instances "$n"
    while :; do
        left="$(count "$backend" "SELECT COUNT(*) FROM deliveries WHERE status != 'delivered'")"
        [ "$left" = 0 ] && break
        if awk -v b="$begin" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - b > 300) }'; then
            echo "error: $label: $left deliveries still undelivered after 300 s" >&2
            exit 1
        fi
        sleep 0.2
    done
    end="$(date +%s.%N)"
    local dispatch
    dispatch="$(awk -v n="$queued" -v b="$begin" -v e="$end" 'BEGIN { printf "%.0f", n / (e - b) }')"
    stop_instances
    rows+=("| $label | $rps | ${p50} ms / ${p99} ms | $dispatch ($queued) |")
}

for backend in $backends; do bench_backend "$backend"; done

# 3. The raw ceilings, same durability, same disk.
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

pg_single="—"; pg_batched="—"
if [[ "$backends" == *pg* ]]; then
    psql_belay -c "CREATE TABLE IF NOT EXISTS public.raw (id TEXT PRIMARY KEY, upstream TEXT, method TEXT, path TEXT,
        headers TEXT, body BYTEA, idempotency_key TEXT, fingerprint TEXT, status TEXT, due_at BIGINT, created_at BIGINT)"
    cat > "$work/one.sql" <<'SQL'
INSERT INTO public.raw VALUES (md5(random()::text || clock_timestamp()::text), 'sink', 'POST', '/v1/orders',
  '[{"name":"Content-Type","value":"application/json"}]', '\x7b226f72646572223a7b7d7d', 'k', repeat('f', 64), 'pending', 0, 0);
SQL
    cat > "$work/batch.sql" <<'SQL'
INSERT INTO public.raw SELECT md5(random()::text || clock_timestamp()::text || g), 'sink', 'POST', '/v1/orders',
  '[{"name":"Content-Type","value":"application/json"}]', '\x7b226f72646572223a7b7d7d', 'k', repeat('f', 64), 'pending', 0, 0
  FROM generate_series(1, 64) g;
SQL
    pgb() { PGPASSWORD="$POSTGRES_PASSWORD" "$pgbench_bin" -h 127.0.0.1 -p "$POSTGRES_PORT" -U belay -n -c 64 -j 2 -T 5 -f "$1" belay 2>/dev/null | awk '/^tps/ {print $3; exit}'; }
    pg_single="$(pgb "$work/one.sql" | awk '{printf "%.0f", $1}')"
    pg_batched="$(pgb "$work/batch.sql" | awk '{printf "%.0f", $1 * 64}')"
fi

cat <<TABLE

| backend | accepted/s (durable 202s, $connections connections, $duration) | accept p50 / p99 (worst instance) | delivered/s to a local sink (queued) |
|:--|--:|--:|--:|
$(printf '%s\n' "${rows[@]}")

| raw ceiling, same durability and disk | rows/s |
|:--|--:|
| SQLite, one row per transaction (WAL, synchronous = FULL) | $single |
| SQLite, 64 rows per transaction | $batched |
| PostgreSQL, one row per commit (pgbench, 64 clients, synchronous_commit = on) | $pg_single |
| PostgreSQL, 64 rows per commit (pgbench, 64 clients) | $pg_batched |

Targets: ≥ 5,000 accepts/s with p99 ≤ 20 ms (SQLite) / 25 ms (PostgreSQL), ≥ 2,000 delivered/s.
($(date -u '+%Y-%m-%d %H:%M UTC'), release build)
TABLE
