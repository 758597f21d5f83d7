#!/usr/bin/env bash
# Ctrl-C during a generate: the process stops within about a second (it
# polls between transformer evaluations and the CPU backend's evaluations of
# the tiny model are short), exits 130 with one line that says "interrupted",
# and leaves neither the PNG nor its temporary file behind.
#
# The signal is sent only once the process has installed its SIGINT handler
# (SigCgt in /proc/PID/status), then after a delay: killed earlier, the
# default action also exits 130 and writes nothing, which would let a build
# without the handler pass (exit code alone cannot tell the two apart; the
# message can).
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp sigint
zt_tiny 4 bf16 snap
# SIGINT (2) is bit 1 of the caught-signals mask.
sigint_caught() { # pid
    local m
    m=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$m" ] && (( (16#$m >> 1) & 1 ))
}
# Job control gives the background job the default SIGINT disposition, as a
# foreground process at a terminal has (non-interactive shells otherwise
# start background jobs with SIGINT ignored).
set -m
for delay in 0 0.3 1.5; do
    rm -f out.png out.png.tmp*
    "$Z" generate -m snap -p "a fox" --width 512 --height 512 --steps 60 --seed 1 --device cpu -q -o out.png 2>err.txt &
    pid=$!
    waited=0
    while ! sigint_caught $pid; do
        if ! kill -0 $pid 2>/dev/null || [ $waited -ge 300 ]; then break; fi
        sleep 0.01; waited=$((waited + 1))
    done
    if ! sigint_caught $pid; then
        echo "FAIL after ${delay}s: the process never installed a SIGINT handler (waited $waited x 10 ms)"
        kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
        fail=$((fail+1)); continue
    fi
    sleep $delay
    t0=$(date +%s.%N)
    kill -INT $pid
    wait $pid; rc=$?
    t1=$(date +%s.%N)
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    left=$(ls | grep -c 'out\.png' || true)
    lines=$(grep -c '' err.txt)
    if [ $rc -ne 130 ] || [ "$left" -ne 0 ] || [ "$lines" -ne 1 ] || ! grep -q 'interrupted' err.txt ||
        awk -v d="$dt" 'BEGIN{exit !(d > 2.0)}'; then
        echo "FAIL SIGINT ${delay}s after the handler: exit $rc, stopped in ${dt}s, files left $left, stderr ($lines lines): $(cat err.txt)"; fail=$((fail+1))
    else
        echo "ok   SIGINT ${delay}s after the handler: exit 130 in ${dt}s: $(cat err.txt)"
    fi
done
[ $fail -eq 0 ]
