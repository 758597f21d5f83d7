#!/usr/bin/env bash
# zturbo plan: prints the plan generate would use, fails cleanly on bad input.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp plan-cli
zt_tiny 2 bf16 snap
expect "all resident" 0 "0 streamed" "$Z" plan -m snap --vram 4G --device cpu --width 64 --height 64
expect "streaming" 0 "over the bus" "$Z" plan -m snap --vram 11M --device cpu --width 64 --height 64 -v
expect "per-unit lines" 0 "dit.layers.1" "$Z" plan -m snap --vram 11M --device cpu --width 64 --height 64 -v
expect "too small" 1 "too small" "$Z" plan -m snap --vram 1M --device cpu --width 64 --height 64
expect "missing --vram" 2 "missing --vram" "$Z" plan -m snap
expect "bad size" 2 "not a size" "$Z" plan -m snap --vram lots
expect "bad width" 2 "multiple of 16" "$Z" plan -m snap --vram 1G --width 100
expect "missing model" 1 "nonexistent" "$Z" plan -m nonexistent --vram 1G --device cpu
expect "pinned 0 without store" 1 "zturbo pack" "$Z" plan -m snap --vram 11M --pinned 0 --device cpu --width 64 --height 64
# the VAE decode choice: the whole-image decode needs more device memory at 1024x1024 than the
# banded one, so the minimum with --vae-decode device is larger, and plan says which it took
minb() { "$Z" plan -m snap --vram 1M --device cpu "$@" 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p'; }
auto_min=$(minb); dev_min=$(minb --vae-decode device)
if [ -n "$auto_min" ] && [ -n "$dev_min" ] && awk -v a="$auto_min" -v d="$dev_min" 'BEGIN{exit !(a < d)}'; then
    echo "ok   banded VAE lowers the minimum at 1024x1024: $auto_min < $dev_min MiB"
else echo "FAIL banded VAE minimum: auto '$auto_min' vs device '$dev_min'"; fail=$((fail+1)); fi
expect "plan says the VAE is banded near the minimum" 0 "vae: decoded in row bands" \
    "$Z" plan -m snap --vram "$(awk -v a="$auto_min" 'BEGIN{printf "%.2fM", a + 0.01}')" --device cpu
expect "plan says whole-image when forced" 0 "vae: whole-image decode" "$Z" plan -m snap --vram 4G --device cpu --vae-decode device
expect "bad --vae-decode" 2 "auto, device or banded" "$Z" plan -m snap --vram 1G --vae-decode tiles
# a GPU that is not here: --context on the cpu backend plans for a simulated device (the README's T4
# plan), and --precision fp16 plans the fp16 path: bf16 weights (never coded) and its larger
# workspace (f32 residual streams; a plan made in bf16 would be too small for it)
expect "simulated GPU" 0 "a simulated GPU" "$Z" plan -m snap --vram 20M --context 1M --device cpu --width 64 --height 64
expect "plan --precision fp16: bf16 weights" 0 "weights bf16" "$Z" plan -m snap --vram 20M --context 1M --device cpu \
    --width 64 --height 64 --precision fp16
wsb() { "$Z" plan -m snap --vram 1G --context 1M --device cpu --vae-precision f32 --json "$@" |
    sed -n 's/.*"workspace_bytes":\([0-9]*\).*/\1/p'; }
ws_bf16=$(wsb --precision bf16); ws_fp16=$(wsb --precision fp16)
checks=$((checks+1))
if [ -n "$ws_bf16" ] && [ -n "$ws_fp16" ] && [ "$ws_fp16" -gt "$ws_bf16" ]; then
    echo "ok   the fp16 path's workspace is planned larger: $ws_fp16 > $ws_bf16 bytes (bf16)"
else echo "FAIL fp16 workspace '$ws_fp16' not above bf16's '$ws_bf16'"; fail=$((fail+1)); fi
# the fp16 path reads bf16 weights: from a coded store on every use it cannot, and the way out it is told is
# a bf16 store (--weights coded is not one there); from such a store the same plan streams
"$Z" pack snap -o coded.zts -q && "$Z" pack snap -o bf16.zts --weights bf16 -q || { echo "FAIL pack"; fail=$((fail+1)); }
checks=$((checks+1))
out=$("$Z" plan -m coded.zts --precision fp16 --vram 20M --pinned 0 --context 1M --device cpu --width 64 --height 64 2>&1)
if [ $? -eq 1 ] && [[ "$out" == *"zturbo pack --weights bf16"* ]] && [[ "$out" != *"--weights coded"* ]]; then
    echo "ok   fp16 from a coded store on every use: $out"
else echo "FAIL fp16 from a coded store: $out"; fail=$((fail+1)); fi
expect "fp16 from a bf16 store, streamed" 0 "streamed" "$Z" plan -m bf16.zts --precision fp16 --vram 20M --pinned 0 \
    --context 1M --device cpu --width 64 --height 64
zt_summary
