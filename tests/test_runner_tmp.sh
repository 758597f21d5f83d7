#!/usr/bin/env bash
# tests/test_runner_tmp.sh — tests/run cleans up after the tests (a full run
# used to leave 1.1 GB in build/test-tmp): one test at a time, what a passing
# (or skipped) test leaves there is removed and a failing test's files are
# kept in build/test-failed/NAME; several at a time, the folder is removed at
# the end, or kept as build/test-failed/run after a failure. Each test is
# reported once, and the counts are right, in both modes. Runs a copy of tests/run in a scratch tree with three
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
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
for jobs in 1 3; do
    out=$(cd "$T/tree" && ZT_TEST_JOBS=$jobs ZT_TEST_SAN=1 ZT_TEST_FILTER= bash tests/run bin 2>&1)
    rc=$?
    check "jobs $jobs: the run fails (exit $rc) and counts 1/1/1" '[ $rc -ne 0 ] && echo "$out" | grep -q "1 passed, 1 failed, 1 skipped"'
    check "jobs $jobs: each test reported once" '[ "$(echo "$out" | grep -c "^PASS  test_a_pass\|^SKIP  test_b_skip\|^FAIL  test_c_fail")" -eq 3 ]'
    check "jobs $jobs: nothing is left in build/test-tmp" '[ ! -e "$T/tree/build/test-tmp" ]'
    if [ $jobs -eq 1 ]; then
        check "jobs 1: the failed test's files are kept, only those" \
            '[ -s "$T/tree/build/test-failed/test_c_fail/test_c_fail/data" ] && [ "$(ls "$T/tree/build/test-failed")" = test_c_fail ] &&
            [ "$(ls "$T/tree/build/test-failed/test_c_fail")" = test_c_fail ]'
    else
        check "jobs $jobs: the run's files are kept after a failure" '[ -s "$T/tree/build/test-failed/run/test_c_fail/data" ]'
    fi
    [ $fails -eq 0 ] || echo "$out" | sed 's/^/    /'
done
# a run without failures leaves nothing, at once too
rm "$T/tree/bin/tests/test_c_fail"
out=$(cd "$T/tree" && ZT_TEST_JOBS=3 ZT_TEST_SAN=1 ZT_TEST_FILTER= bash tests/run bin 2>&1)
rc=$?
check "jobs 3 without failures: exit 0, no build/test-tmp, no build/test-failed" \
    '[ $rc -eq 0 ] && [ ! -e "$T/tree/build/test-tmp" ] && [ ! -e "$T/tree/build/test-failed" ]'
rm -rf "$T"
[ $fails -eq 0 ]
