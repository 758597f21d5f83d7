#!/usr/bin/env bash
# tests/test_fuzz_runner.sh — `make fuzz` (tests/fuzz/run.sh) must fail when a
# fuzzer fails. Stand-in fuzzers (shell scripts that take libFuzzer's
# arguments): one that passes, one that aborts like a crashing harness, one
# that exits with libFuzzer's error code after printing a crash report, one
# that is missing. Each failing one must make the runner exit 1 and name it;
# the passing one alone must pass (so the check is not vacuous).
set -u
ZT_ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
T=$ZT_ROOT/build/test-tmp/fuzz-runner
rm -rf "$T" && mkdir -p "$T/bin" || exit 1
cd "$ZT_ROOT" || exit 1
fails=0
mk() { # name, body
    printf '#!/bin/sh\n%s\n' "$2" >"$T/bin/$1"
    chmod +x "$T/bin/$1"
}
mk fuzz_ok 'echo "Done 100 runs"; echo "stat::number_of_executed_units: 100"; exit 0'
mk fuzz_abort 'echo "INFO: Running with entropic power schedule"; kill -ABRT $$'
mk fuzz_crash 'echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow"; echo "artifact_prefix=x; Test unit written to ./crash-1" >&2; exit 77'
expect() { # want_rc, label, fuzzers...
    local want=$1 label=$2
    shift 2
    out=$(tests/fuzz/run.sh 1 "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $label: exit $rc, want $want"; echo "$out" | sed 's/^/    /'; fails=$((fails + 1)); return
    fi
    for f in "$@"; do
        n=$(basename "$f")
        [ "$want" -ne 0 ] && [ "$n" != fuzz_ok ] && ! echo "$out" | grep -q "fuzz: $n FAILED" &&
            { echo "FAIL $label: $n not named as failed"; fails=$((fails + 1)); }
    done
    echo "ok   $label (exit $rc)"
}
expect 0 "a passing fuzzer passes" "$T/bin/fuzz_ok"
expect 1 "an aborting fuzzer fails the run" "$T/bin/fuzz_ok" "$T/bin/fuzz_abort"
expect 1 "a fuzzer reporting a crash fails the run" "$T/bin/fuzz_crash" "$T/bin/fuzz_ok"
expect 1 "a missing fuzzer fails the run" "$T/bin/fuzz_missing"
rm -rf "$T" build/fuzz-logs/fuzz_ok.log build/fuzz-logs/fuzz_abort.log build/fuzz-logs/fuzz_crash.log \
    build/fuzz-logs/fuzz_missing.log build/fuzz-corpus/fuzz_ok build/fuzz-corpus/fuzz_abort \
    build/fuzz-corpus/fuzz_crash build/fuzz-corpus/fuzz_missing
[ $fails -eq 0 ]
