#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS FUZZER... — `make fuzz`: run each libFuzzer binary
# for SECONDS on its corpus (build/fuzz-corpus/NAME, plus the seeds in
# tests/fuzz/seeds/NAME). Any failure of a fuzzer (a crash, a sanitizer report,
# a leak, an input slower than 10 s, a binary that does not run) fails the
# whole run with exit 1, after every fuzzer has had its turn; its log stays in
# build/fuzz-logs/NAME.log and the input that failed in build/fuzz-crashes/.
# The fuzzer's output goes to the log, never through a pipe, so that its exit
# status is the one tested.
set -u
secs=${1:?usage: tests/fuzz/run.sh SECONDS FUZZER...}
shift
mkdir -p build/fuzz-logs build/fuzz-crashes || exit 1
failed=()
for f in "$@"; do
    n=$(basename "$f")
    corpus=build/fuzz-corpus/$n
    mkdir -p "$corpus" || exit 1
    seeds=()
    [ -d "tests/fuzz/seeds/$n" ] && seeds=("tests/fuzz/seeds/$n")
    log=build/fuzz-logs/$n.log
    echo "fuzz: $n for $secs s"
    timeout $((secs * 2 + 120)) "$f" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="build/fuzz-crashes/$n-" "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | sed 's/^/  /'
    else
        tail -n 25 "$log" | sed 's/^/  | /'
        echo "fuzz: $n FAILED (exit $rc); log: $log; failing input: build/fuzz-crashes/$n-*"
        failed+=("$n")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} of $# failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: all $# passed"
