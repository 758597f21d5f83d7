#!/usr/bin/env bash
# Regenerate the LoRA CI data: two random LoRA files for the mkmodel tiny checkpoint made with peft
# (tools/ref/make_lora.py: tests/data/lora/tiny_peft_r2.safetensors in diffusers/PEFT format written
# by save_lora_weights, tests/data/lora/tiny_kohya_r3.safetensors in kohya format with .alpha), and the
# diffusers goldens tests/golden/tiny_lora/*.safetensors: ZImagePipeline in float32 on the CPU with
# load_lora_weights + set_adapters + fuse_lora, the fused weights rounded to bf16 (--lora-round-bf16:
# zturbo merges once into bf16 weights), one thread.
# Needs bin/mkmodel and a Python with torch, diffusers 0.42.1, transformers, peft, safetensors:
#   PY=/path/to/python tools/ref/make_lora_goldens.sh           # regenerate
#   PY=/path/to/python tools/ref/make_lora_goldens.sh --check   # into a temp dir, require identical bytes
. "$(dirname "$0")/golden_env.sh"
data=tests/data/lora gold=tests/golden/tiny_lora
if [ $check = 1 ]; then data=$(mktemp -d); gold=$data; fi
"$PY" tools/ref/make_lora.py --model "$ckpt" --rank 2 --alpha 4 --seed 1 --std 0.06 --out "$data/tiny_peft_r2.safetensors"
"$PY" tools/ref/make_lora.py --model "$ckpt" --rank 3 --alpha 1.5 --seed 2 --std 0.08 \
    --out "$data/tmp_r3.safetensors" --kohya "$data/tiny_kohya_r3.safetensors"
rm -f "$data/tmp_r3.safetensors"
run() { # name, lora specs...
    local name=$1; shift
    local args=()
    for l in "$@"; do args+=(--lora "$l"); done
    "$PY" tools/ref/ref_pipeline.py --model "$ckpt" --prompt "a cat" --height 64 --width 64 --steps 8 --seed 1 \
        --noise-device cpu --precision f32 --device cpu --threads 1 "${args[@]}" --lora-round-bf16 -o "$gold/$name.safetensors"
}
run peft_cat_64x64 "$data/tiny_peft_r2.safetensors"
run kohya_cat_64x64 "$data/tiny_kohya_r3.safetensors:0.7"
run both_cat_64x64 "$data/tiny_peft_r2.safetensors:0.8" "$data/tiny_kohya_r3.safetensors:0.5"
if [ "$gold" != tests/golden/tiny_lora ]; then
    for f in tiny_peft_r2 tiny_kohya_r3; do cmp "$data/$f.safetensors" "tests/data/lora/$f.safetensors"; done
    for f in peft_cat_64x64 kohya_cat_64x64 both_cat_64x64; do cmp "$gold/$f.safetensors" "tests/golden/tiny_lora/$f.safetensors"; done
    echo "LoRA files and goldens reproduced bit-exactly"
    rm -rf "$data"
fi
ls -l tests/data/lora tests/golden/tiny_lora
