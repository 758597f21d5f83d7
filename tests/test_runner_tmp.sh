#!/usr/bin/env bash
# tests/test_runner_tmp.sh — tests/run cleans up after the tests: what a
# passing (or skipped) test leaves in build/test-tmp is removed (a full run
# used to leave 1.1 GB there), a failing test's files are kept in
# build/test-failed/NAME. Runs a copy of tests/run in a scratch tree with three
# stand-in tests: one that passes, one that skips, one that fails, each
# writing a file into build/test-tmp.
set -u
ZT_ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
T=$ZT_ROOT/build/test-tmp/runner-tmp
rm -rf "$T" && mkdir -p "$T/tree/tests" "$T/tree/bin/tests" || exit 1
cp "$ZT_ROOT/tests/run" "$T/tree/tests/run" || exit 1
mk() { # name, exit code
    printf '#!/bin/sh\nmkdir -p "$ZT_ROOT/build/test-tmp/%s" && head -c 100000 /dev/zero > "$ZT_ROOT/build/test-tmp/%s/data"\nexit %s\n' \
        "$1" "$1" "$2" >"$T/tree/bin/tests/$1"
    chmod +x "$T/tree/bin/tests/$1"
}
mk test_a_pass 0
mk test_b_skip 77
mk test_c_fail 1
out=$(cd "$T/tree" && ZT_TEST_SAN=1 ZT_TEST_FILTER= bash tests/run bin 2>&1)
rc=$?
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
check "the run fails (exit $rc) and counts 1/1/1" '[ $rc -ne 0 ] && echo "$out" | grep -q "1 passed, 1 failed, 1 skipped"'
check "nothing is left in build/test-tmp" '[ ! -e "$T/tree/build/test-tmp" ]'
check "the failed test's files are kept" '[ -s "$T/tree/build/test-failed/test_c_fail/test_c_fail/data" ]'
check "only the failed test's files are kept" '[ "$(ls "$T/tree/build/test-failed")" = test_c_fail ]'
[ $fails -eq 0 ] || echo "$out" | sed 's/^/    /'
rm -rf "$T"
[ $fails -eq 0 ]
