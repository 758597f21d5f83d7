#!/usr/bin/env bash
# Invariant 1 (design.md): the PNG bytes are identical for every plan —
# resident, the minimum budget, budgets in between, any --prefetch/--window,
# --pinned 0 reading every streamed unit from a zstd store, the VAE decoded
# in row bands from host memory, transformer blocks lent the VAE's idle
# workspace — on the CPU
# backend (simulated device) and, when a GPU is present, on CUDA.
# Invariant 2: the run fails cleanly (one line, exit 1) below the minimum.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp stream-invariance
zt_tiny 3 f32 snap
"$Z" pack snap -o tiny.zts -q || exit 1
for dev in cpu cuda; do
    if [ $dev = cuda ] && ! "$Z" info 2>/dev/null | grep -q '^GPU 0'; then echo "no GPU: CUDA part skipped"; continue; fi
    common=(-m snap -p "a red fox on a hill, 1984" --width 64 --height 48 --seed 5 --device $dev -q)
    "$Z" generate "${common[@]}" -o ref.png || { echo "FAIL resident $dev"; exit 1; }
    m=$(up "$(min_budget)"); m1=$(up "$(min_budget --prefetch 0)"); m3=$(up "$(min_budget --prefetch 2 --window 4)")
    [ -n "$m" ] && [ -n "$m1" ] && [ -n "$m3" ] || { echo "FAIL $dev: no minimum budget in the error message"; exit 1; }
    check_same "$dev min budget ${m}M" --vram "${m}M"
    check_same "$dev min budget, prefetch 0" --vram "${m1}M" --prefetch 0
    check_same "$dev prefetch 2 window 4" --vram "${m3}M" --prefetch 2 --window 4
    check_same "$dev half resident" --vram "$(calc "$m + 4")M"
    check_same "$dev all resident under a budget" --vram 4G
    check_same "$dev --pinned 0 from the zstd store" --vram "${m}M" --pinned 0 --store tiny.zts
    check_same "$dev --pinned 3M, rest from disk" --vram "${m}M" --pinned 3M --store tiny.zts
    # the tuning options never change the image
    check_same "$dev --io pread from the store" --vram "${m}M" --pinned 0 --store tiny.zts --io pread
    check_same "$dev --copy-streams 2" --vram "${m}M" --copy-streams 2
    check_same "$dev --load-threads 1" --load-threads 1
    check_same "$dev --load-threads 3 under a budget" --load-threads 3 --vram "${m}M"
    # the banded VAE decode (host-memory activations, row bands), forced at
    # every level and band height the tiny VAE has
    for b in 1,1 1,5 2,3 3,64; do
        mb=$(up "$(min_budget --vae-bands $b)")
        check_same "$dev banded VAE decode $b at its min budget ${mb}M" --vae-bands $b --vram "${mb}M"
    done
    check_same "$dev banded VAE decode 2,2 resident" --vae-bands 2,2
    # transformer blocks lent the whole-image VAE's idle workspace: copied in at every image's
    # denoising loop, overwritten by its VAE decode (two images in one process). --vae-decode
    # device: on a fast link the plan may prefer the banded decode, which lends nothing;
    # --link-bw 0.05: a link slow enough that lending pays against the tiny model's compute;
    # --threads 2: the CPU backend's per-thread scratch (in the workspace) as on the dev machine.
    lendopt=(--width 128 --height 128 --device $dev --vae-precision bf16 --vae-decode device --link-bw 0.05 --threads 2)
    big=(-m snap -p "a red fox on a hill, 1984" --seed 5 -q "${lendopt[@]}")
    "$Z" generate "${big[@]}" --count 2 -o ref2.png || { echo "FAIL resident 128x128 $dev"; exit 1; }
    ml=$(min_budget "${lendopt[@]}"); ml=${ml%.*}
    lend=
    for v in $(seq $(( ${ml:-10} + 1 )) $(( ${ml:-10} + 40 ))); do
        if "$Z" plan -m snap "${lendopt[@]}" --vram "${v}M" 2>/dev/null | grep -q "lent the VAE"; then lend=$v; break; fi
    done
    checks=$((checks+1))
    if [ -z "$lend" ] && [ $dev = cuda ]; then
        echo "ok   $dev: no budget from ${ml}M lends blocks at 128x128 on this GPU (skipped; the full-size runs check it)"
    elif [ -z "$lend" ]; then echo "FAIL $dev: no budget from ${ml}M lends blocks at 128x128"; fail=$((fail+1))
    else
        rm -f x-0.png x-1.png
        if "$Z" generate "${big[@]}" --count 2 --vram "${lend}M" -o x.png && cmp -s ref2-0.png x-0.png && cmp -s ref2-1.png x-1.png
        then echo "ok   $dev lent blocks at --vram ${lend}M, two images"
        else echo "FAIL $dev lent blocks at --vram ${lend}M: PNG differs from the resident run"; fail=$((fail+1)); fi
        # --lend off: the plan lends nothing at that budget, same images
        checks=$((checks+1)); rm -f x-0.png x-1.png
        if "$Z" plan -m snap "${lendopt[@]}" --vram "${lend}M" --lend off | grep -q "lent the VAE"; then
            echo "FAIL $dev --lend off still lends at --vram ${lend}M"; fail=$((fail+1))
        elif "$Z" generate "${big[@]}" --count 2 --vram "${lend}M" --lend off -o x.png && cmp -s ref2-0.png x-0.png && cmp -s ref2-1.png x-1.png
        then echo "ok   $dev --lend off at --vram ${lend}M: nothing lent, same images"
        else echo "FAIL $dev --lend off at --vram ${lend}M: PNG differs from the resident run"; fail=$((fail+1)); fi
    fi
    # io_uring missing: the store is read by pread threads, the user is told in one line, same PNG
    rm -f x.png
    out=$(ZT_IO_FAULT=nouring "$ZT_BIN/test-zturbo" generate "${common[@]}" --vram "${m}M" --pinned 0 --store tiny.zts -o x.png 2>&1); rc=$?
    checks=$((checks+1))
    if [ $rc -ne 0 ] || ! printf '%s' "$out" | grep -q "^zturbo: warning: io_uring unavailable" || ! cmp -s ref.png x.png; then
        echo "FAIL $dev io_uring unavailable: rc=$rc out=$out"; fail=$((fail+1))
    else echo "ok   $dev io_uring unavailable: $out"; fi
    # below the minimum: one line, exit 1, no file
    rm -f y.png
    out=$("$Z" generate "${common[@]}" --vram "$(calc "$m - 0.6")M" -o y.png 2>&1); rc=$?
    checks=$((checks+1))
    if [ $rc -ne 1 ] || [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || [ -e y.png ]; then
        echo "FAIL $dev below minimum: rc=$rc out=$out"; fail=$((fail+1))
    else echo "ok   $dev below minimum: $out"; fi
    # --pinned 0 without a store cannot work: clear error
    out=$("$Z" generate "${common[@]}" --vram "${m}M" --pinned 0 -o y.png 2>&1); rc=$?
    checks=$((checks+1))
    if [ $rc -eq 0 ] || ! printf '%s' "$out" | grep -q "zturbo pack"; then echo "FAIL $dev pinned 0 without store: $out"; fail=$((fail+1)); else echo "ok   $dev pinned 0 without a store: $out"; fi
done
zt_summary
