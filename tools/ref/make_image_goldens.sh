#!/usr/bin/env bash
# Regenerate the image-input CI goldens (tests/golden/images/*.safetensors) from the
# mkmodel tiny checkpoint with tools/ref/ref_images.py (diffusers, float32, CPU, one thread).
# Needs bin/mkmodel and a Python with torch, diffusers, transformers: PY=/path/to/venv/bin/python.
#   tools/ref/make_image_goldens.sh            # regenerate
#   tools/ref/make_image_goldens.sh --check    # regenerate into a temp dir and require identical bytes
. "$(dirname "$0")/golden_env.sh"
out=tests/golden/images
[ $check = 1 ] && out=$(mktemp -d)
ref() { "$PY" tools/ref/ref_images.py "$@" --model "$ckpt" --precision f32 --device cpu --threads 1; }

ref encode --image tests/data/images/big.png --width 64 --height 48 --seed 3 -o "$out/encode_big_64x48.safetensors"
# img2img / inpainting through diffusers' pipelines: a 70x52 JPEG (default size 64x48), prompt "a cat"
img=tests/data/images/in_70x52.jpg mask=tests/data/images/mask_70x52.png
ref img2img --image $img --strength 0.6 --seed 11 -o "$out/img2img_s06.safetensors"
ref img2img --image $img --strength 0.3 --seed 12 -o "$out/img2img_s03.safetensors"
ref inpaint --image $img --mask $mask --seed 13 -o "$out/inpaint_s10.safetensors"
ref inpaint --image $img --mask $mask --strength 0.7 --seed 14 -o "$out/inpaint_s07.safetensors"

# ControlNet-Union (ZImageControlNetPipeline / ZImageControlNetInpaintPipeline): tiny random
# ControlNets of the three layouts (mkmodel --control, seed 5, BF16 as the engine holds weights), 64x48,
# prompt "a cat"
for k in union-1.0 union-2.0 union-2.1; do
    rm -rf "$ckpt-$k"
    "$MKMODEL" --config tiny --control $k --seed 5 --dtype bf16 -q -o "$ckpt-$k"
done
big=tests/data/images/big.png
ref control --control-model "$ckpt-union-1.0" --control $img --width 64 --height 48 --control-scale 0.75 --seed 31 \
    -o "$out/control_u10.safetensors"
ref control --control-model "$ckpt-union-2.0" --control $img --width 64 --height 48 --control-scale 1.0 --seed 32 \
    -o "$out/control_u20.safetensors"
ref control --control-model "$ckpt-union-2.1" --control $big --width 64 --height 48 --control-scale 0.6 --seed 33 \
    -o "$out/control_u21.safetensors"
ref control_inpaint --control-model "$ckpt-union-2.1" --control $big --image $img --mask $mask --width 64 --height 48 \
    --control-scale 0.75 --seed 34 -o "$out/control_inpaint_u21.safetensors"
ref control_inpaint --control-model "$ckpt-union-2.0" --control $img --image $img --mask $mask --width 64 --height 48 \
    --control-scale 0.9 --seed 35 -o "$out/control_inpaint_u20.safetensors"

if [ "$out" != tests/golden/images ]; then
    for f in "$out"/*.safetensors; do cmp "$f" "tests/golden/images/$(basename "$f")"; done
    echo "image goldens reproduced bit-exactly"
    rm -rf "$out"
fi
