# Sourced by the bench scripts (not run alone): the tools they need, installed with apt-get
# when missing and running as root; a scratch folder `$work` and background processes
# `pids` cleaned up on exit; and helpers.

# Installs (or asks for) each tool named, then sets `nginx_bin`.
bench_need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
            if [ "$(id -u)" = 0 ]; then
                echo "installing $tool..." >&2
                apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
            else
                echo "error: $tool is needed (apt-get install $tool)" >&2
                exit 2
            fi
        fi
    done
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
}

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

to_ms() { # wrk latency like 1.23ms / 456.00us / 1.01s -> ms
    awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 } else { sub(/s$/, "", v); print v * 1000 } }'
}
