#!/usr/bin/env bash
# Runs Belay's library micro-benchmarks (the Benchmarks/ sub-package, package-benchmark) in
# release mode and prints one markdown table: per pipeline execution, the median (p50) and
# p90 wall-clock time, the median malloc count, and both medians' difference from `empty`.
#
# Usage: scripts/bench-library.sh [extra `swift package benchmark` options]
#   e.g. scripts/bench-library.sh --filter 'empty|retry.*'
# The table goes to stdout; build and tool output go to stderr (only when the run fails).
# Exits non-zero if the build or any benchmark fails, or if nothing was measured.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
package="$root/Benchmarks"
source_file="$package/Benchmarks/ResilienceBenchmarks/ResilienceBenchmarks.swift"

# The raw results are totals per sample; a sample runs `scalingFactor` executions.
case "$(grep -oE 'scalingFactor: *\.(one|kilo|mega|giga)' "$source_file" | head -n 1 | sed 's/.*\.//')" in
one) scale=1 ;;
kilo) scale=1000 ;;
mega) scale=1000000 ;;
giga) scale=1000000000 ;;
*)
    echo "error: cannot find the scalingFactor in $source_file" >&2
    exit 2
    ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() {
    # run NAME COMMAND...: runs the command, showing its output only if it fails.
    local name="$1"
    shift
    if ! "$@" >"$work/$name.out" 2>"$work/$name.err"; then
        echo "error: '$*' failed:" >&2
        tail -n 60 "$work/$name.err" "$work/$name.out" >&2
        exit 1
    fi
}

cd "$root"
echo "building and running the benchmarks (release)..." >&2
# Definition order, for the table's rows.
run list swift package --package-path Benchmarks benchmark list
run results swift package --package-path Benchmarks benchmark --no-progress --format influx --path stdout "$@"

# With no filter, every listed benchmark must have results.
awk -F, -v scale="$scale" -v complete="$(( $# == 0 ))" '
    # Pass 1: benchmark names in definition order, from `benchmark list`.
    FNR == NR {
        if ($0 ~ /available benchmarks:/) { listing = 1; next }
        if (listing && $0 == "") listing = 0
        if (listing) { order[++count] = $0; known[$0] = 1 }
        next
    }
    # Pass 2: influx lines: ...,metric(7),unit(8),test(9),percentile(10),value(11),...
    NF >= 11 && ($10 == "50.0" || $10 == "90.0") {
        test = $9
        if (!(test in seen)) {
            seen[test] = 1
            if (!(test in known)) { order[++count] = test; known[test] = 1 }
        }
        if ($7 == "Time(wallclock)") {
            unit = ($8 == "ns") ? 1 : ($8 == "us" || $8 == "μs") ? 1000 : ($8 == "ms") ? 1000000 : ($8 == "s") ? 1000000000 : -1
            if (unit < 0) { print "error: unknown time unit " $8 > "/dev/stderr"; failed = 1; exit 1 }
            time[test, $10] = $11 * unit / scale
        } else if ($7 == "Malloc(total)" && $10 == "50.0") {
            mallocs[test] = $11 / scale
        }
    }
    END {
        if (failed) exit 1
        rows = 0
        for (i = 1; i <= count; i++) if (order[i] in seen) rows++
        if (rows == 0) { print "error: no results were measured" > "/dev/stderr"; exit 1 }
        if (complete) for (i = 1; i <= count; i++) if (!(order[i] in seen)) {
            print "error: no results for " order[i] > "/dev/stderr"; exit 1
        }
        base = ("empty" in seen)
        print "| Benchmark | p50 ns/op | p90 ns/op | p50 Δ vs empty (ns) | mallocs/op | Δ mallocs vs empty |"
        print "|:--|--:|--:|--:|--:|--:|"
        for (i = 1; i <= count; i++) {
            test = order[i]
            if (!(test in seen)) continue
            dt = base ? sprintf("%+.0f", time[test, "50.0"] - time["empty", "50.0"]) : "n/a"
            dm = base ? sprintf("%+.2f", mallocs[test] - mallocs["empty"]) : "n/a"
            if (test == "empty") { dt = "—"; dm = "—" }
            printf "| %s | %.0f | %.0f | %s | %.2f | %s |\n", test, time[test, "50.0"], time[test, "90.0"], dt, mallocs[test], dm
        }
    }
' "$work/list.out" "$work/results.out"
