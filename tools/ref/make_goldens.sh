#!/usr/bin/env bash
# Regenerate the CI goldens tests/golden/tiny/*.safetensors from the mkmodel tiny checkpoint.
# Needs bin/mkmodel and a Python with torch, diffusers, transformers (default /opt/refenv).
# Run from anywhere; writes only tests/golden/tiny/ and the scratch checkpoint.
#   tools/ref/make_goldens.sh            # regenerate
#   tools/ref/make_goldens.sh --check    # regenerate into a temp dir and require identical bytes
#   PRECISIONS=bf16 tools/ref/make_goldens.sh   # only the bf16 goldens (default: "f32 bf16 fp16")
# CPU results move at the ulp level with the CPU's ISA path and torch version (see
# tests/golden/tiny/README.md), so --check is bit-exact only on the machine kind that made them.
. "$(dirname "$0")/golden_env.sh"
out=tests/golden/tiny
[ $check = 1 ] && out=$(mktemp -d)

# f32 on CPU, one thread: the golden reference (bf16 weights upcast exactly; thread count
# changes VAE convolutions at the ulp level, so it is pinned). bf16 on CPU, one thread: what
# diffusers users run (every module in bf16, the VAE and its postprocess included), the
# reference of the engine's bf16 path; written as NAME.bf16.safetensors. fp16 on CPU, one thread:
# the text encoder and transformer in float16 with the engine's fp16 guards patched in
# (ref_pipeline.py patch_fp16_guards), the VAE in float32: NAME.fp16.safetensors.
precisions=${PRECISIONS:-f32 bf16 fp16}
files=()
run() { # name prompt height width seed
    local p f
    for p in $precisions; do
        f=$1.safetensors; [ "$p" = f32 ] || f=$1.$p.safetensors
        "$PY" tools/ref/ref_pipeline.py --model "$ckpt" --prompt "$2" --height "$3" --width "$4" --steps 8 \
            --seed "$5" --noise-device cpu --precision "$p" --device cpu --threads 1 -o "$out/$f"
        files+=("$f")
    done
}
run cat_64x64 "a cat" 64 64 1
run fox_48x80 "A red fox jumps over 3 lazy dogs at 7:45 pm, watercolor, soft morning light, 1920s poster style" 48 80 2

if [ "$out" != tests/golden/tiny ]; then
    for f in "${files[@]}"; do cmp "$out/$f" "tests/golden/tiny/$f"; done
    echo "goldens reproduced bit-exactly"
    rm -rf "$out"
fi
ls -l tests/golden/tiny/*.safetensors
