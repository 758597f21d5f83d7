#!/usr/bin/env bash
# tools/gpu/suite-full.sh PART — full-size runs on the GPU machine, in parts
# that each fit one device call (10 min). Binaries: $B (default .device/bin,
# built here with CUDA_ARCH=sm_90 and carried); diffusers wheel in .whl.
# Results (logs, JSON lines, comparisons) go to $OUT.
#   tests   : every test (GPU ones included) + memcheck on a tiny CUDA generate
#   bench   : kbench / attnbench next to torch
#   full    : mkmodel full (bf16) + pack + bench-io + resident ours vs diffusers
#   stream  : s/step for budgets x throttled links, --pinned 0 from the store,
#             diffusers group offload; accuracy at 3 sizes x 3 prompt lengths
set -u
part=${1:?part}
OUT=${OUT:-build/gpu-out}; mkdir -p "$OUT"
B=${B:-.device/bin}
export ZT_ROOT=$PWD ZT_BIN=$PWD/$B PYTHONUNBUFFERED=1
W=/tmp/zt; mkdir -p $W
M=$W/full; S=$W/full.zts
Z=$B/zturbo
P=tools/gpu/prompts
log() { echo "== $(date -u +%T) $*" | tee -a "$OUT/steps.log"; }
pyenv() {
  [ -d /tmp/site/diffusers ] || python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >/dev/null 2>&1
  export PYTHONPATH=/tmp/site
}
ensure_model() {
  [ -f $M/model_index.json ] || { log mkmodel; $B/mkmodel --config full --seed 1 --dtype bf16 -q -o $M; }
  [ -f $S ] || { log pack; $Z pack $M -o $S -q; }
}
ours() { # name, args...: one generate with --stats, JSON to $OUT/ours.jsonl
  local name=$1; shift
  local line
  line=$(timeout 300 $Z generate -m $M -q --stats "$@" 2>>"$OUT/ours.err" | grep '^stats-json:' | sed 's/^stats-json: //')
  echo "{\"run\":\"$name\",\"r\":${line:-null}}" | tee -a "$OUT/ours.jsonl"
}
case $part in
prep) ( ensure_model ) > "$OUT/mk.log" 2>&1 ;;
tests)
  nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv | tee "$OUT/machine.txt"
  $Z info | tee -a "$OUT/machine.txt"
  tests/run $B 2>&1 | tee "$OUT/tests.log" | tail -40
  $B/mkmodel --config tiny --seed 1 --dtype bf16 -q -o $W/tiny
  for tool in memcheck racecheck; do
    timeout 200 compute-sanitizer --tool $tool $Z generate -m $W/tiny -p "a cat" --width 64 --height 64 --seed 1 -q \
      -o $W/san.png --vram 2G > "$OUT/sanitizer-$tool.log" 2>&1
    echo "$tool generate: exit $? $(grep 'ERROR SUMMARY\|RACECHECK SUMMARY' "$OUT/sanitizer-$tool.log" | tail -1)" | tee -a "$OUT/sanitizer.txt"
  done
  ;;
bench)
  $B/kbench 2>&1 | tee "$OUT/kbench.txt" | tail -40
  python3 tools/kbench_torch.py > "$OUT/kbench_torch.txt" 2>&1
  $B/attnbench > "$OUT/attnbench.txt" 2>&1
  python3 tools/attnbench_torch.py > "$OUT/attnbench_torch.txt" 2>&1
  ;;
full)
  pyenv
  ( ensure_model ) > "$OUT/mk.log" 2>&1
  log bench-io; timeout 90 $B/bench-io $S > "$OUT/bench-io.txt" 2>&1
  log oracle bf16 timing
  timeout 240 python3 tools/ref/ref_pipeline.py --model $M --prompt "$(cat $P/p100.txt)" --width 1024 --height 1024 \
    --seed 42 --save-noise $W/noise1024.st --precision bf16 --device cuda --timing -o $W/ref_bf16_1024.st > "$OUT/oracle_bf16.log" 2>&1
  tail -3 "$OUT/oracle_bf16.log"
  log ours resident
  ours resident --noise $W/noise1024.st -p "$(cat $P/p100.txt)" -o $W/ours1024.png --dump $W/ours1024.st
  ours resident-bf16vae --noise $W/noise1024.st -p "$(cat $P/p100.txt)" -o $W/ours1024b.png --vae-precision bf16
  python3 tools/ref/compare.py --tol 1e-2 $W/ours1024.st $W/ref_bf16_1024.st > "$OUT/compare_1024_bf16.txt" 2>&1; cat "$OUT/compare_1024_bf16.txt"
  ;;
stream)
  pyenv
  ( ensure_model ) >> "$OUT/mk.log" 2>&1
  A=(-p "$(cat $P/p100.txt)" --seed 42 --width 1024 --height 1024)
  log budgets
  ours resident "${A[@]}" -o $W/r.png
  min=$($Z generate -m $M "${A[@]}" -q --vram 100M -o $W/x.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) GiB.*/\1/p')
  min=$(awk "BEGIN{printf \"%.2f\", $min + 0.01}"); echo "min budget ${min}G" | tee -a "$OUT/steps.log"
  for v in 12G 8G 6G 4G ${min}G; do ours "vram-$v" "${A[@]}" --vram $v -o $W/v.png; cmp -s $W/r.png $W/v.png && echo "  same PNG as resident" | tee -a "$OUT/ours.jsonl"; done
  ours "vram-${min}G-pinned0-store" "${A[@]}" --vram ${min}G --pinned 0 --store $S -o $W/v.png; cmp -s $W/r.png $W/v.png && echo "  same PNG as resident" | tee -a "$OUT/ours.jsonl"
  for t in 25 12 3; do for v in 8G ${min}G; do ours "vram-$v-link-$t" "${A[@]}" --steps 2 --vram $v --throttle $t -o $W/t.png; done; done
  log diffusers group offload
  timeout 200 python3 tools/ref/ref_pipeline.py --model $M --prompt "$(cat $P/p100.txt)" --width 1024 --height 1024 \
    --noise $W/noise1024.st --precision bf16 --device cuda --timing --offload group --repeat 3 --repeat-e2e 1 > "$OUT/oracle_offload.log" 2>&1
  tail -2 "$OUT/oracle_offload.log"
  ;;
accuracy)
  pyenv
  ( ensure_model ) >> "$OUT/mk.log" 2>&1
  for c in "p1 512 768" "p37 1280 720" "p300 1024 1024"; do
    set -- $c; pr=$1 w=$2 h=$3
    log "accuracy $pr ${w}x$h"
    timeout 150 python3 tools/ref/ref_pipeline.py --model $M --prompt "$(cat $P/$pr.txt)" --width $w --height $h --seed 7 \
      --save-noise $W/n.st --precision bf16 --device cuda -o $W/ref_$pr.st > "$OUT/oracle_$pr.log" 2>&1
    $Z generate -m $M -q -p "$(cat $P/$pr.txt)" --width $w --height $h --noise $W/n.st -o $W/o.png --dump $W/ours_$pr.st 2>>"$OUT/ours.err"
    python3 tools/ref/compare.py --tol 1e-2 --only cap_feats --only dit_out_0 --only latents_8 --only decoded --only image $W/ours_$pr.st $W/ref_$pr.st > "$OUT/compare_$pr.txt" 2>&1
    cat "$OUT/compare_$pr.txt"
  done
  log "f32 reference, p100 1024x1024"
  timeout 200 python3 tools/ref/ref_pipeline.py --model $M --prompt "$(cat $P/p100.txt)" --width 1024 --height 1024 --seed 42 \
    --save-noise $W/n42.st --precision f32 --device cuda -o $W/ref_f32.st > "$OUT/oracle_f32.log" 2>&1
  timeout 150 python3 tools/ref/ref_pipeline.py --model $M --prompt "$(cat $P/p100.txt)" --width 1024 --height 1024 \
    --noise $W/n42.st --precision bf16 --device cuda -o $W/ref_bf16.st > "$OUT/oracle_bf16b.log" 2>&1
  for v in bf16 f32; do
    $Z generate -m $M -q -p "$(cat $P/p100.txt)" --noise $W/n42.st --vae-precision $v -o $W/o.png --dump $W/ours_vae$v.st 2>>"$OUT/ours.err"
    echo "-- ours (vae $v) vs diffusers f32" >> "$OUT/compare_f32.txt"
    python3 tools/ref/compare.py --tol 1e-2 --only cap_feats --only dit_out_0 --only latents_8 --only decoded --only image $W/ours_vae$v.st $W/ref_f32.st >> "$OUT/compare_f32.txt" 2>&1
  done
  echo "-- diffusers bf16 vs diffusers f32" >> "$OUT/compare_f32.txt"
  python3 tools/ref/compare.py --tol 1e-2 --only cap_feats --only dit_out_0 --only latents_8 --only decoded --only image $W/ref_bf16.st $W/ref_f32.st >> "$OUT/compare_f32.txt" 2>&1
  echo "-- ours (vae bf16) vs diffusers bf16" >> "$OUT/compare_f32.txt"
  python3 tools/ref/compare.py --tol 1e-2 --only cap_feats --only dit_out_0 --only latents_8 --only decoded --only image $W/ours_vaebf16.st $W/ref_bf16.st >> "$OUT/compare_f32.txt" 2>&1
  cat "$OUT/compare_f32.txt"
  ;;
disk)
  ( ensure_model ) >> "$OUT/mk.log" 2>&1
  A=(-p "$(cat $P/p100.txt)" --seed 42 --width 1024 --height 1024)
  min=$($Z generate -m $M "${A[@]}" -q --vram 100M -o $W/x.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) GiB.*/\1/p')
  min=$(awk "BEGIN{printf \"%.2f\", $min + 0.01}"); echo "min budget ${min}G (bf16 VAE)" | tee -a "$OUT/steps.log"
  ours "vram-${min}G" "${A[@]}" --vram ${min}G -o $W/v.png
  ours "vram-8G" "${A[@]}" --vram 8G -o $W/v8.png
  ours "vram-${min}G-pinned0-store-2steps" "${A[@]}" --steps 2 --vram ${min}G --pinned 0 --store $S -o $W/d.png
  ;;
esac
