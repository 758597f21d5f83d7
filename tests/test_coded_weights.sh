#!/usr/bin/env bash
# Coded weights (storage/wcode.h) change where bytes come from, never what is
# computed: on the tiny checkpoint the PNG bytes with --weights coded equal
# the bf16 resident run's at every budget and tier — the minimum budget,
# budgets in between (with units kept resident coded), everything resident
# under a budget, the whole snapshot coded at load, --pinned 0 and a pinned
# cap reading coded extents from a store packed coded, the coded store given
# as the model — and so do the same runs with --weights bf16 (and a bf16
# store). Per step, coded runs move fewer bytes over the bus than bf16 runs
# at the same budget (--stats). The CPU backend decodes on the host; with a
# GPU the same runs use the CUDA decoder. The runs plan for a 0.1 GB/s link,
# so that the plan moves the streamed blocks coded (the CPU's decoder, 1 GB/s,
# is slower than its copies); on a fast link it moves them as bf16 (a
# snapshot's bf16 images at hand), and the PNG is the same again.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp coded-weights
zt_tiny 7 bf16 snap
"$Z" pack snap -o coded.zts -q || exit 1
"$Z" pack snap -o bf16.zts --weights bf16 -q || exit 1
bad() { echo "FAIL $*"; fail=$((fail+1)); }
run_same() { # label, args...: the PNG must equal ref.png
    local label=$1; shift
    rm -f x.png
    checks=$((checks+1))
    if ! "$Z" generate "${common[@]}" "$@" -o x.png 2> err.txt; then bad "$label: generate failed: $(cat err.txt)"; return; fi
    cmp -s ref.png x.png || { bad "$label: PNG differs from the bf16 resident run"; return; }
    echo "ok   $label"
}
bus() { # args...: bytes copied host->device during the denoising steps (--stats)
    "$Z" generate "${common[@]}" "$@" --stats -o y.png 2>/dev/null | sed -n 's/.*"bytes_h2d":\([0-9]*\).*/\1/p'
}
for dev in cpu cuda; do
    if [ $dev = cuda ] && ! "$Z" info 2>/dev/null | grep -q '^GPU 0'; then echo "no GPU: CUDA part skipped"; continue; fi
    common=(-m snap -p "a lighthouse on a cliff" --width 64 --height 64 --steps 3 --seed 11 --device $dev -q --link-bw 0.1)
    "$Z" generate "${common[@]}" -o ref.png || { echo "FAIL resident $dev"; exit 1; }
    mc=$("$Z" generate "${common[@]}" --vram 1M -o x.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p')
    mb=$("$Z" generate "${common[@]}" --weights bf16 --vram 1M -o x.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p')
    [ -n "$mc" ] && [ -n "$mb" ] || { echo "FAIL $dev: no minimum budget in the error message"; exit 1; }
    mc=$(awk "BEGIN{printf \"%.2f\", $mc + 0.01}"); mb=$(awk "BEGIN{printf \"%.2f\", $mb + 0.01}")
    echo "$dev minimum budget: coded ${mc} MiB, bf16 ${mb} MiB"
    # a budget where the plan keeps units resident coded
    kc=
    for v in $(seq "${mc%.*}" $(( ${mc%.*} + 12 ))); do
        if "$Z" plan -m snap --device $dev --width 64 --height 64 --steps 3 --link-bw 0.1 --vram "${v}M" 2>/dev/null | grep -q "kept coded"; then kc=$v; break; fi
    done
    checks=$((checks+1))
    [ -n "$kc" ] && echo "ok   $dev: --vram ${kc}M keeps units resident coded" || bad "$dev: no budget keeps units resident coded"
    for w in coded bf16; do
        st=coded.zts; [ $w = bf16 ] && st=bf16.zts
        m=$mc; [ $w = bf16 ] && m=$mb
        run_same "$dev $w min budget ${m}M" --weights $w --vram "${m}M"
        [ -n "$kc" ] && run_same "$dev $w --vram ${kc}M" --weights $w --vram "${kc}M"
        run_same "$dev $w --vram $(awk "BEGIN{print $m + 3}")M" --weights $w --vram "$(awk "BEGIN{print $m + 3}")M"
        run_same "$dev $w all resident under a budget" --weights $w --vram 2G
        run_same "$dev $w --pinned 0 --store $st" --weights $w --vram "${m}M" --pinned 0 --store $st
        run_same "$dev $w --pinned 3M --store $st" --weights $w --vram "${m}M" --pinned 3M --store $st
        run_same "$dev $w -m $st" --weights $w --vram "${m}M" -m $st --tokenizer snap/tokenizer/tokenizer.json
    done
    # a fast link: the plan moves the streamed blocks as bf16 (from the snapshot, also with a coded
    # store given), the same PNG; the slow link's plan moves them coded
    nslow=$("$Z" plan -m snap --device $dev --width 64 --height 64 --steps 3 --link-bw 0.1 --vram "${mc}M" -v 2>&1 | grep -c 'dit\..*streamed, coded')
    nfast=$("$Z" plan -m snap --device $dev --width 64 --height 64 --steps 3 --link-bw 100 --vram "${mc}M" -v 2>&1 | grep -c 'dit\..*streamed, coded')
    checks=$((checks+1))
    if [ "$nslow" -gt 0 ] && [ "$nfast" -lt "$nslow" ]; then echo "ok   $dev: streamed blocks coded on a slow link ($nslow), fewer on a fast one ($nfast)"
    else bad "$dev: streamed coded blocks: slow link '$nslow', fast link '$nfast' (want fewer on the fast one)"; fi
    run_same "$dev coded, fast link (blocks as bf16)" --weights coded --vram "${mc}M" --link-bw 100
    run_same "$dev coded, fast link, --store coded.zts" --weights coded --vram "${mc}M" --link-bw 100 --store coded.zts
    # bf16 weights from disk out of a coded store: refused in one line, exit 2
    rm -f x.png
    out=$("$Z" generate "${common[@]}" --weights bf16 --vram "${mb}M" --pinned 0 --store coded.zts -o x.png 2>&1); rc=$?
    checks=$((checks+1))
    if [ $rc -eq 0 ] || [ -e x.png ] || ! printf '%s' "$out" | grep -q "repack the store with --weights bf16"; then
        bad "$dev bf16 from a coded store: rc=$rc out=$out"
    else echo "ok   $dev bf16 from a coded store refused: $out"; fi
    # fewer bytes over the bus: at their minimum budgets both stream every block every step
    bc=$(bus --vram "${mc}M"); bb=$(bus --weights bf16 --vram "${mb}M")
    checks=$((checks+1))
    if [ -n "$bc" ] && [ -n "$bb" ] && [ "$bb" -gt 0 ] && [ $((bc * 100)) -le $((bb * 75)) ]; then
        echo "ok   $dev minimum budgets: coded moves $bc bytes in the steps, bf16 $bb"
    else bad "$dev minimum budgets: coded moves '$bc' bytes in the steps, bf16 '$bb' (want <= 75%)"; fi
done
zt_summary
