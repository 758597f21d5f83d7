#!/usr/bin/env bash
# tests/test_lora_golden.sh — LoRA merging end to end on the tiny checkpoint (CPU backend):
#  1. against diffusers + peft (tests/golden/tiny_lora, tools/ref/make_lora_goldens.sh: ZImagePipeline
#     f32 with load_lora_weights + fuse_lora, fused weights rounded to bf16): a diffusers/PEFT file
#     (alpha from its metadata), a kohya file (.alpha, strength 0.7) and both at once (0.8 and 0.5);
#     f32 activations within relative L2 3e-5 per tensor (we reach <= 3.1e-6), the image 1e-3
#     (one level on a few values); bf16 activations within 2e-2 (we reach <= 1e-2);
#  2. the same factors in six other layouts (tests/lora_layouts.py: kohya, ComfyUI native with fused
#     qkv, dot format, ai-toolkit without alpha, lycoris_, raw PEFT) give the same pixels;
#  3. the same LoRAs give the same PNG bytes resident, at the minimum --vram, half resident,
#     with --pinned 0 from a store, coded and bf16 (merged after every disk read), and from a store packed with
#     `zturbo pack --lora` (pixels; that store's PNG does not name the LoRA);
#  4. a LoRA changes the image; strength 0 gives the image without it.
set -u
. "$ZT_ROOT/tests/lib.sh"
R=$ZT_ROOT
zt_tmp lora-golden
zt_tiny 1 bf16 snap
D=$R/tests/data/lora G=$R/tests/golden/tiny_lora
P=$D/tiny_peft_r2.safetensors K=$D/tiny_kohya_r3.safetensors
gen() { "$Z" generate -m snap -p "a cat" --width 64 --height 64 --seed 1 --device cpu -q "$@"; }
cmp_golden() { # golden, precision, lora args...
    local g=$1 pr=$2; shift 2
    gen --precision "$pr" --vae-precision "$pr" "$@" -o "$g-$pr.png" --dump "$g-$pr.st" || return 1
    if [ "$pr" = f32 ]; then
        python3 "$R/tools/ref/compare.py" --tol 3e-5 --tol-for image=1e-3 "$g-$pr.st" "$G/${g}_cat_64x64.safetensors"
    else
        python3 "$R/tools/ref/compare.py" --tol 2e-2 "$g-$pr.st" "$G/${g}_cat_64x64.safetensors"
    fi
}
for pr in f32 bf16; do
    check "diffusers/PEFT LoRA vs diffusers ($pr)" cmp_golden peft $pr --lora "$P"
    check "kohya LoRA at 0.7 vs diffusers ($pr)" cmp_golden kohya $pr --lora "$K:0.7"
    check "two LoRAs at 0.8 and 0.5 vs diffusers ($pr)" cmp_golden both $pr --lora "$P:0.8" --lora "$K:0.5"
done
pixels() { python3 -c "
import hashlib, struct, sys, zlib
d = open(sys.argv[1], 'rb').read(); i, idat = 8, b''
while i < len(d):
    n, t = struct.unpack('>I4s', d[i:i + 8]); idat += d[i + 8:i + 8 + n] if t == b'IDAT' else b''; i += 12 + n
print(hashlib.md5(zlib.decompress(idat)).hexdigest())" "$1"; }
gen --lora "$P" -o peft.png
mkdir -p lay && python3 "$R/tests/lora_layouts.py" "$P" lay > /dev/null
for l in kohya comfy dots aitoolkit lycoris peftraw; do
    gen --lora "lay/$l.safetensors" -o "lay/$l.png"
    check "$l layout: the same pixels as the diffusers file" test "$(pixels lay/$l.png)" = "$(pixels peft.png)"
done
gen -o none.png
check "the LoRA changes the image" test "$(pixels none.png)" != "$(pixels peft.png)"
gen --lora "$P:0" -o zero.png
check "strength 0: the image without the LoRA" test "$(pixels zero.png)" = "$(pixels none.png)"
# tiers and budgets (CPU backend: simulated device)
"$Z" pack snap -o snap.zts -q || exit 1
"$Z" pack snap -o snapbf.zts --weights bf16 -q || exit 1 # bf16 extents: merged after each read of the reader
L2=(--lora "$P:0.8" --lora "$K:0.5")
gen "${L2[@]}" -o ref.png
m=$(gen "${L2[@]}" --vram 1M -o x.png 2>&1 | sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p')
m=$(awk "BEGIN{printf \"%.2f\", $m + 0.01}")
for b in "--vram ${m}M" "--vram $(awk "BEGIN{printf \"%.2f\", $m + 4}")M" "--vram ${m}M --pinned 0 --store snap.zts" \
         "--vram ${m}M --pinned 2M --store snap.zts" "--vram ${m}M --pinned 0 --store snapbf.zts"; do
    # shellcheck disable=SC2086
    gen "${L2[@]}" $b -o t.png
    check "two LoRAs, $b: the resident PNG bytes" cmp -s ref.png t.png
done
"$Z" pack snap -o merged.zts -q "${L2[@]}" || fail=$((fail+1))
"$Z" generate -m merged.zts --tokenizer snap/tokenizer/tokenizer.json -p "a cat" --width 64 --height 64 --seed 1 \
    --device cpu -q -o packed.png
check "zturbo pack --lora: the same pixels from the merged store" test "$(pixels packed.png)" = "$(pixels ref.png)"
# per-line LoRAs in --prompts-jsonl: each line = a separate run with those LoRAs (pixels), resident,
# streamed and from disk; a line with the flags' LoRAs re-merges nothing
printf '%s\n' "{\"prompt\": \"a cat\", \"seed\": 1, \"loras\": [\"$P\"]}" "{\"prompt\": \"a cat\", \"seed\": 1, \"loras\": []}" \
    "{\"prompt\": \"a cat\", \"seed\": 1, \"loras\": [\"$K:0.7\"]}" '{"prompt": "a cat", "seed": 1}' \
    "{\"prompt\": \"a cat\", \"seed\": 1, \"loras\": [\"$P:0.8\", \"$K:0.5\"]}" "{\"prompt\": \"a cat\", \"seed\": 1, \"loras\": [\"$K:x\"]}" > l.jsonl
gen --lora "$K:0.7" -o k.png
want=("$(pixels peft.png)" "$(pixels none.png)" "$(pixels k.png)" "$(pixels peft.png)" "$(pixels ref.png)")
for b in "" "--vram ${m}M" "--vram ${m}M --pinned 0 --store snap.zts"; do
    rm -f l-*.png
    # shellcheck disable=SC2086
    "$Z" generate -m snap --prompts-jsonl l.jsonl --width 64 --height 64 --seed 1 --device cpu -q --lora "$P" $b \
        -o l.png --json > l.json 2> l.err; rc=$?
    ok=1
    for i in 0 1 2 3 4; do [ "$(pixels l-$i.png)" = "${want[$i]}" ] || { ok=0; echo "  line $i differs"; }; done
    check "per-line LoRAs ${b:-resident}: each image = its own run; the bad line named" \
        bash -c "test $ok = 1 && test $rc = 1 && grep -q 'tiny_kohya_r3.safetensors:x: cannot open' l.err"
done
check "a line with the flags' LoRAs merges nothing again (lora_tensors)" python3 - l.json <<'PY'
import json, sys
o = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t = [x.get("lora_tensors") for x in o]
# line 0 = the flags' LoRA (merged at load, nothing new); line 3 goes back to it after line 2's
assert o[0]["loras"] == 1 and t[0] > 0 and "loras" not in o[1] and t[4] > t[3] > t[2], t
PY
# refused at the command line: one line, exit 1 (file) / 2 (usage), no PNG
python3 - nan.safetensors <<'PY'
import json, struct, sys
a = struct.pack("<512f", *([0.01] * 511 + [float("nan")])); b = struct.pack("<512f", *([0.01] * 512))
h = {"transformer.layers.0.attention.to_q.lora_A.weight": {"dtype": "F32", "shape": [2, 256], "data_offsets": [0, 2048]},
     "transformer.layers.0.attention.to_q.lora_B.weight": {"dtype": "F32", "shape": [256, 2], "data_offsets": [2048, 4096]}}
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(hb)) + hb + a + b)
PY
bad() { # label, exit code, text, args...
    local what=$1 code=$2 text=$3; shift 3
    rm -f bad.png
    local out; out=$(gen "$@" -o bad.png 2>&1); local rc=$?
    check "$what: exit $code, one line naming it, no PNG" bash -c "test $rc -eq $code && [[ \"\$1\" == *\"$text\"* ]] && [ \$(printf '%s\n' \"\$1\" | grep -c '') -eq 1 ] && test ! -e bad.png" _ "$out"
}
bad "a NaN in a LoRA" 1 "lora_A.weight: NaN at element 511" --lora nan.safetensors
bad "a missing LoRA file" 1 "--lora: missing.safetensors: cannot open" --lora missing.safetensors
bad "an infinite strength" 2 "scale inf not allowed" --lora "$P:inf"
bad "a second file that is no safetensors" 1 "lora_layouts.py: header length" --lora "$P" --lora "$R/tests/lora_layouts.py"
zt_summary
