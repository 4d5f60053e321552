#!/usr/bin/env bash
# Status counts with a large history (issue 11): how long `GET /metrics` takes (it reads the
# delivery store's status counts) once the store holds ROWS finished deliveries.
#  1. belay starts once on an empty database (it migrates it) and stops;
#  2. ROWS delivered deliveries (plus 100 pending and 10 dead) are written straight into the
#     database with sqlite3 (a recursive CTE: no 1 M API calls);
#  3. belay starts again and /metrics is scraped SCRAPES times, one after the other;
#     the first, the median and the slowest scrape times are printed (curl's time_total).
#
# Usage: scripts/bench-counts.sh                 (ROWS=1000000 SCRAPES=40)
#        BELAY=path/to/belay scripts/bench-counts.sh   (a given binary, e.g. an older build)
# Needs sqlite3 and curl (sqlite3 installed with apt-get when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows="${ROWS:-1000000}"
scrapes="${SCRAPES:-40}"
port=18193

# shellcheck source=bench-common.sh
source "$root/scripts/bench-common.sh"
bench_need sqlite3

if [ -z "${BELAY:-}" ]; then
    echo "building belay (release)..." >&2
    (cd "$root" && swift build -c release --product belay >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
    BELAY="$root/.build/release/belay"
fi
db="$work/data/belay.db"
cat > "$work/belay.yaml" <<YAML
server: { listen: "127.0.0.1:$port" }
storage: { url: "sqlite:$db" }
upstreams:
  sink: { endpoints: ["http://127.0.0.1:9"] }
YAML

start_belay() {
    "$BELAY" serve --config "$work/belay.yaml" --log-level error --log-format json >>"$work/belay.log" 2>&1 &
    belay_pid=$!
    pids+=($belay_pid)
    for _ in $(seq 1 400); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "error: belay did not start" >&2
    cat "$work/belay.log" >&2
    exit 1
}

start_belay
kill "$belay_pid"; wait "$belay_pid" 2>/dev/null || true

echo "writing $rows finished deliveries..." >&2
now_ms="$(($(date +%s) * 1000))"
sqlite3 "$db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows + 110)
INSERT INTO deliveries (id, upstream, method, path, headers, body, idempotency_key, fingerprint, require_ack,
    status, attempt_count, due_at, created_at, updated_at, delivered_at)
SELECT printf('dlv_%012x%016x', $now_ms - 86400000 + i, abs(random())), 'sink', 'POST', '/v1/orders',
    '[{"name":"Content-Type","value":"application/json"}]', randomblob(120), printf('k%d', i), printf('f%d', i), 0,
    CASE WHEN i <= $rows THEN 'delivered' WHEN i <= $rows + 100 THEN 'pending' ELSE 'dead' END, 1,
    CASE WHEN i > $rows AND i <= $rows + 100 THEN $now_ms + 3600000 END,
    $now_ms - 86400000 + i, $now_ms - 86400000 + i, $now_ms - 86400000 + i
FROM n;
SQL
sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null

start_belay
times=()
for _ in $(seq 1 "$scrapes"); do
    times+=("$(curl -fsS -o "$work/metrics.txt" -w '%{time_total}' "http://127.0.0.1:$port/metrics")")
done
grep -q "belay_delivery_queue_depth{status=\"delivered\"} $rows" "$work/metrics.txt" \
    || { echo "error: /metrics does not count $rows delivered:" >&2; grep queue_depth "$work/metrics.txt" >&2; exit 1; }
kill "$belay_pid"; wait "$belay_pid" 2>/dev/null || true

first_ms="$(awk -v t="${times[0]}" 'BEGIN { printf "%.1f", t * 1000 }')"
printf '%s\n' "${times[@]}" | sort -n | awk -v rows="$rows" -v first="$first_ms" '
    { t[NR] = $1 * 1000 }
    END {
        printf "\n| /metrics with %d delivered | first scrape | median | slowest |\n", rows
        printf "|:--|--:|--:|--:|\n"
        printf "| %d scrapes | %s ms | %.1f ms | %.1f ms |\n", NR, first, t[int((NR + 1) / 2)], t[NR]
    }'
