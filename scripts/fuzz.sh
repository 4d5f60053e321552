#!/usr/bin/env bash
# Runs each libFuzzer target in Fuzz/ for a bounded time on a copy of its committed corpus.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default 60 s, every target)
#
# Builds the Fuzz/ package (its own scratch folder, Fuzz/.build) with the fuzzer and address
# sanitizers, then runs every target with -max_total_time. Exits non-zero if any target
# crashes, traps, leaks or times out, printing the input that did it as base64: add it as a
# unit test (Tests/BelayGatewayTests/FuzzRegressionTests.swift) and fix it. New inputs the
# fuzzer finds go to a scratch copy, never into Fuzz/Corpus/ (commit one by hand if it is
# worth keeping).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(FuzzConfig FuzzProxyPath FuzzRateLimitHeaders FuzzWebhookSignatures FuzzJSONPointer)
fi

# The same dependency versions as the root package, when it has resolved them.
if [ -f Package.resolved ] && [ ! -f Fuzz/Package.resolved ]; then
    cp Package.resolved Fuzz/Package.resolved
fi

echo "== fuzz build (-sanitize=fuzzer,address)"
start=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
build=(swift build --package-path Fuzz --scratch-path Fuzz/.build -c debug -Xswiftc -sanitize=fuzzer,address)
if ! "${build[@]}" >"$work/build.log" 2>&1; then
    grep -E "error:" "$work/build.log" | head -40 || tail -40 "$work/build.log"
    echo "error: the fuzz build failed" >&2
    exit 1
fi
bin="$("${build[@]}" --show-bin-path)"
echo "   built in $(($(date +%s) - start)) s"
failed=()
for target in "${targets[@]}"; do
    echo "== $target for ${seconds} s"
    corpus="$work/$target"
    mkdir -p "$corpus" "$work/$target-artifacts"
    cp Fuzz/Corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    dict=()
    if [ -f "Fuzz/Dictionaries/$target.dict" ]; then dict=("-dict=Fuzz/Dictionaries/$target.dict"); fi
    # -timeout: one input taking over 10 s is a hang, reported as a failure like a crash.
    if "$bin/$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$work/$target-artifacts/" \
        >"$work/$target.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$work/$target.log" | sed 's/^/   /'
    else
        failed+=("$target")
        tail -60 "$work/$target.log"
        for artifact in "$work/$target-artifacts"/*; do
            [ -f "$artifact" ] || continue
            echo "   input that failed ($(basename "$artifact")), base64:"
            base64 -w0 "$artifact"
            echo
        done
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "error: fuzzing found failures in: ${failed[*]}" >&2
    exit 1
fi
echo "== fuzzing: no failures in ${#targets[@]} target(s)"
