#!/usr/bin/env bash
# Proxy benchmark: an nginx origin answering a small JSON body on 127.0.0.1, then wrk
# through (a) nginx as a keep-alive reverse proxy and (b) `belay serve` (release build,
# default policy: timeouts, retry, breaker on) in three observability settings:
#   belay-off    metrics and the audit trail switched off, no tracing (the health model,
#                which /v1/upstreams and the status page read, cannot be switched off);
#   belay-on     the defaults: Prometheus metrics, the audit trail, the health model;
#   belay-traced the defaults plus a span per request and per attempt exported over OTLP
#                to a local sink (an nginx answering 200).
# Rounds alternate nginx, belay-off, belay-on, belay-traced in one run. Prints requests/s,
# p50/p99 latency and the proxy's CPU µs per request (from /proc), the ratios to nginx, and
# what observability costs (on and traced against off). Everything listens on 127.0.0.1 and
# stops by itself.
#
# Usage: scripts/bench-proxy.sh            (DURATION=10s CONNECTIONS=32 ROUNDS=2 to change)
# Needs nginx and wrk (installed with apt-get when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"
rounds="${ROUNDS:-2}"
origin_port=18181
nginx_proxy_port=18182
belay_ports=(18183 18184 18185)
sink_port=18186

# shellcheck source=bench-common.sh
source "$root/scripts/bench-common.sh"
bench_need nginx wrk

nginx_conf() { # name port body
    cat > "$work/$1.conf" <<CONF
worker_processes 2;
daemon off;
pid $work/$1.pid;
error_log $work/$1.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/$1.body;
    proxy_temp_path $work/$1.proxy;
    fastcgi_temp_path $work/$1.fastcgi;
    uwsgi_temp_path $work/$1.uwsgi;
    scgi_temp_path $work/$1.scgi;
    keepalive_requests 1000000;
    $3
    server { listen 127.0.0.1:$2; $4 }
}
CONF
}

nginx_conf origin "$origin_port" "" 'location / { default_type application/json; return 200 "{\"ok\":true,\"id\":\"ch_1\",\"amount\":1000}"; }'
nginx_conf proxy "$nginx_proxy_port" "upstream origin { server 127.0.0.1:$origin_port; keepalive 64; }" \
    'location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }'
nginx_conf sink "$sink_port" "" 'location / { client_max_body_size 64m; return 200; }'

"$nginx_bin" -c "$work/origin.conf" & pids+=($!)
"$nginx_bin" -c "$work/proxy.conf" & nginx_pid=$!; pids+=($nginx_pid)
"$nginx_bin" -c "$work/sink.conf" & pids+=($!)

echo "building belay (release)..." >&2
(cd "$root" && swift build -c release --product belay >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
names=(belay-off belay-on belay-traced)
extras=(
    "metrics: { enabled: false }
audit: { enabled: false }"
    ""
    "telemetry: { otlp: { endpoint: \"http://127.0.0.1:$sink_port\" } }"
)
belay_pids=()
for i in 0 1 2; do
    mkdir -p "$work/${names[$i]}"
    cat > "$work/${names[$i]}/belay.yaml" <<YAML
server: { listen: "127.0.0.1:${belay_ports[$i]}" }
storage: { url: "sqlite:$work/${names[$i]}/belay.db" }
upstreams:
  origin:
    endpoints: ["http://127.0.0.1:$origin_port"]
${extras[$i]}
YAML
    "$root/.build/release/belay" serve --config "$work/${names[$i]}/belay.yaml" --log-level warning --log-format json \
        >"$work/${names[$i]}/belay.log" 2>&1 &
    belay_pids+=($!); pids+=($!)
done

wait_for() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "error: $1 did not answer" >&2; exit 1; }
wait_for "http://127.0.0.1:$nginx_proxy_port/v1/charges"
for port in "${belay_ports[@]}"; do wait_for "http://127.0.0.1:$port/proxy/origin/v1/charges"; done

ticks="$(getconf CLK_TCK)"
cpu_ticks() { # pid and its children: utime + stime
    local total=0
    for pid in "$1" $(pgrep -P "$1" || true); do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
run() { # label url pid -> "rps p50ms p99ms cpu_us_per_request"
    local before after out requests
    before="$(cpu_ticks "$3")"
    out="$(wrk -t2 -c"$connections" -d"$duration" --latency "$2")"
    after="$(cpu_ticks "$3")"
    requests="$(echo "$out" | awk '/requests in/ {print $1}')"
    local rps p50 p99 errors
    rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
    p50="$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
    p99="$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
    errors="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
    [ -z "$errors" ] || echo "warning: $1 had $errors non-2xx answers" >&2
    awk -v r="$rps" -v a="$p50" -v b="$p99" -v t="$((after - before))" -v hz="$ticks" -v n="$requests" \
        'BEGIN { printf "%.0f %.3f %.3f %.1f\n", r, a, b, (t / hz) * 1e6 / n }'
}

printf "%-7s %-13s %10s %9s %9s %13s\n" round proxy "req/s" "p50 ms" "p99 ms" "CPU µs/req" >&2
results_nginx=(); results_0=(); results_1=(); results_2=()
for round in $(seq 1 "$rounds"); do
    a="$(run nginx "http://127.0.0.1:$nginx_proxy_port/v1/charges" "$nginx_pid")"
    printf "%-7s %-13s %10s %9s %9s %13s\n" "$round" nginx $a >&2
    results_nginx+=("$a")
    for i in 0 1 2; do
        b="$(run "${names[$i]}" "http://127.0.0.1:${belay_ports[$i]}/proxy/origin/v1/charges" "${belay_pids[$i]}")"
        printf "%-7s %-13s %10s %9s %9s %13s\n" "$round" "${names[$i]}" $b >&2
        eval "results_$i+=(\"\$b\")"
    done
done

mean() { printf "%s\n" "$@" | awk -v col="$COL" '{ s += $col; n++ } END { printf "%.3f", s / n }'; }
summary() {
    local name="$1"; shift
    COL=1 rps="$(mean "$@")"; COL=2 p50="$(mean "$@")"; COL=3 p99="$(mean "$@")"; COL=4 cpu="$(mean "$@")"
    echo "$name $rps $p50 $p99 $cpu"
}
rows=("$(summary nginx "${results_nginx[@]}")" "$(summary belay-off "${results_0[@]}")"
    "$(summary belay-on "${results_1[@]}")" "$(summary belay-traced "${results_2[@]}")")
echo
echo "| proxy | req/s | p50 ms | p99 ms | CPU µs/request |"
echo "|:--|--:|--:|--:|--:|"
for row in "${rows[@]}"; do
    set -- $row
    printf "| %s | %.0f | %.3f | %.3f | %.1f |\n" "$1" "$2" "$3" "$4" "$5"
done
set -- ${rows[0]}; n_rps=$2; n_cpu=$5
set -- ${rows[1]}; off_rps=$2; off_cpu=$5
set -- ${rows[2]}; on_rps=$2; on_cpu=$5
set -- ${rows[3]}; tr_rps=$2; tr_cpu=$5
awk -v nr="$n_rps" -v nc="$n_cpu" -v fr="$off_rps" -v fc="$off_cpu" -v or="$on_rps" -v oc="$on_cpu" \
    -v tr="$tr_rps" -v tc="$tr_cpu" 'BEGIN {
    printf "\nbelay-on / nginx: %.2fx the requests/s (target >= 0.7), %.2fx the CPU per request (target <= 2)\n", or / nr, oc / nc
    printf "observability on: %.1f%% fewer requests/s than off (target <= 15%%), %+.1f µs CPU per request\n", (1 - or / fr) * 100, oc - fc
    printf "with OTLP tracing too: %.1f%% fewer requests/s than off, %+.1f µs CPU per request\n", (1 - tr / fr) * 100, tc - fc }'
echo "($rounds rounds of $duration each, $connections connections, wrk -t2; $(date -u '+%Y-%m-%d %H:%M UTC'))"
