#!/usr/bin/env bash
# Ctrl-C during a generate: the process stops within about a second (it
# polls between transformer evaluations and the CPU backend's evaluations of
# the tiny model are short), exits 130 with at most one line, and leaves neither the
# PNG nor its temporary file behind.
set -u
Z="$ZT_BIN/zturbo"
dir="$ZT_ROOT/build/test-tmp/sigint"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
"$ZT_BIN/mkmodel" --config tiny --seed 4 --dtype bf16 -q -o snap || exit 1
fail=0
# Job control gives the background job the default SIGINT disposition, as a
# foreground process at a terminal has (non-interactive shells otherwise
# start background jobs with SIGINT ignored). Killed before the handler is
# installed (model loading), the default action also exits 130, writing nothing.
set -m
for delay in 0.02 0.3 1.5; do
    rm -f out.png out.png.tmp*
    "$Z" generate -m snap -p "a fox" --width 512 --height 512 --steps 60 --seed 1 --device cpu -q -o out.png 2>err.txt &
    pid=$!
    sleep $delay
    t0=$(date +%s.%N)
    kill -INT $pid
    wait $pid; rc=$?
    t1=$(date +%s.%N)
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    left=$(ls | grep -c 'out\.png' || true)
    lines=$(grep -c '' err.txt)
    if [ $rc -ne 130 ] || [ "$left" -ne 0 ] || [ "$lines" -gt 1 ] || awk -v d="$dt" 'BEGIN{exit !(d > 2.0)}'; then
        echo "FAIL SIGINT after ${delay}s: exit $rc, stopped in ${dt}s, files left $left, stderr: $(cat err.txt)"; fail=$((fail+1))
    else
        echo "ok   SIGINT after ${delay}s: exit 130 in ${dt}s: $(cat err.txt)"
    fi
done
[ $fail -eq 0 ]
