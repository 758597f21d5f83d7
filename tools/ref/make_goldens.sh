#!/usr/bin/env bash
# Regenerate the CI goldens tests/golden/tiny/*.safetensors from the mkmodel tiny checkpoint.
# Needs bin/mkmodel and a Python with torch, diffusers, transformers (default /opt/refenv).
# Run from anywhere; writes only tests/golden/tiny/ and the scratch checkpoint.
#   tools/ref/make_goldens.sh            # regenerate
#   tools/ref/make_goldens.sh --check    # regenerate into a temp dir and require identical bytes
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
PY=${PY:-/opt/refenv/bin/python}
MKMODEL=${MKMODEL:-bin/mkmodel}
ckpt=${CKPT:-models-local/tiny-seed1-bf16}
out=tests/golden/tiny
[ "${1:-}" = "--check" ] && out=$(mktemp -d)

rm -rf "$ckpt"
"$MKMODEL" --config tiny --seed 1 --dtype bf16 -o "$ckpt"

# f32 on CPU, one thread: the golden reference (bf16 weights upcast exactly; thread count
# changes VAE convolutions at the ulp level, so it is pinned).
run() { # name prompt height width seed
    "$PY" tools/ref/ref_pipeline.py --model "$ckpt" --prompt "$2" --height "$3" --width "$4" --steps 8 \
        --seed "$5" --noise-device cpu --precision f32 --device cpu --threads 1 -o "$out/$1.safetensors"
}
run cat_64x64 "a cat" 64 64 1
run fox_48x80 "A red fox jumps over 3 lazy dogs at 7:45 pm, watercolor, soft morning light, 1920s poster style" 48 80 2

if [ "$out" != tests/golden/tiny ]; then
    for f in cat_64x64 fox_48x80; do cmp "$out/$f.safetensors" "tests/golden/tiny/$f.safetensors"; done
    echo "goldens reproduced bit-exactly"
    rm -rf "$out"
fi
ls -l tests/golden/tiny/*.safetensors
