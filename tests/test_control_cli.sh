#!/usr/bin/env bash
# ControlNet from the command line (CPU backend, tiny checkpoint, tiny random
# ControlNets of the three released layouts):
#  1. invariant 1 for ControlNet (Union 1.0, 2.0, 2.1) and ControlNet
#     inpainting (2.1): the PNG bytes of the resident run at the minimum
#     budget (the plan then holds the control units and buffers), a little
#     above it, with the banded VAE decode, and for two images in one
#     process (--count 2); the control units are in the plan (`zturbo plan`);
#  2. the released single-file layout gives the folder's bytes;
#  3. --prompts-jsonl lines carry control / control_scale: the flags' bytes;
#  4. hostile inputs: each one line on stderr, a non-zero exit, no output file.
set -u
. "$ZT_ROOT/tests/lib.sh"
D="$ZT_ROOT/tests/data/images"
zt_tmp control-cli
zt_tiny 3 bf16 snap
for k in union-1.0 union-2.0 union-2.1; do zt_tiny 7 bf16 "c-$k" --control $k; done
zt_tiny 7 bf16 c-single.safetensors --control union-2.0 --layout single
for mode in u10 u20 u21 u21-inpaint; do
    case $mode in
        u10) cm=c-union-1.0 extra=(--control "$D/in_70x52.jpg") ;;
        u20) cm=c-union-2.0 extra=(--control "$D/big.png" --control-scale 1.0) ;;
        u21) cm=c-union-2.1 extra=(--control "$D/in_70x52.jpg" --control-scale 0.5) ;;
        u21-inpaint) cm=c-union-2.1 extra=(--control "$D/big.png" --init-image "$D/in_70x52.jpg" --mask "$D/mask_70x52.png") ;;
    esac
    common=(-m snap -p "a red fox on a hill" --control-model $cm "${extra[@]}" --width 64 --height 48 --seed 5 --device cpu -q)
    "$Z" generate "${common[@]}" -o ref.png || { echo "FAIL $mode resident"; exit 1; }
    m=$(up "$(min_budget)")
    [ -n "$m" ] || { echo "FAIL $mode: no minimum budget in the error message"; exit 1; }
    check_same "min budget ${m}M" --vram "${m}M"
    check_same "min budget + 4M" --vram "$(calc "$m + 4")M"
    mb=$(up "$(min_budget --vae-bands 1,5)")
    check_same "banded VAE decode 1,5 at ${mb}M" --vae-bands 1,5 --vram "${mb}M"
    check_two_images "${m}M"
    # the control changes the image (scale 0 does not)
    checks=$((checks+1))
    "$Z" generate "${common[@]}" --control-scale 0 -o s0.png && \
        "$Z" generate -m snap -p "a red fox on a hill" --width 64 --height 48 --seed 5 --device cpu -q -o t2i.png
    if same_pixels s0.png t2i.png && ! same_pixels ref.png t2i.png; then echo "ok   $mode: scale 0 = text to image, the control changes it"
    else echo "FAIL $mode: scale 0 / text to image"; fail=$((fail+1)); fi
    cp ref.png "ref_$mode.png"
done

# the plan counts the control units: Union 2.0's layers twice a step
checks=$((checks+1))
if "$Z" plan -m snap --control-model c-union-2.0 --vram 64M --width 64 --height 48 --device cpu -v 2>/dev/null | grep -q "control.layers.1 "
then echo "ok   zturbo plan lists the control units"; else echo "FAIL zturbo plan without the control units"; fail=$((fail+1)); fi

# the released single-file layout: the folder's bytes
checks=$((checks+1)); rm -f x.png
if "$Z" generate -m snap -p "a red fox on a hill" --control-model c-single.safetensors --control "$D/big.png" --control-scale 1.0 \
    --width 64 --height 48 --seed 5 --device cpu -q -o x.png && same_pixels x.png ref_u20.png
then echo "ok   single-file Union 2.0 = the folder"; else echo "FAIL single-file layout differs"; fail=$((fail+1)); fi

# JSON lines
printf '%s\n' "{\"prompt\": \"a red fox on a hill\", \"control\": \"$D/in_70x52.jpg\", \"control_scale\": 0.5, \"seed\": 5}" \
    "{\"prompt\": \"a red fox on a hill\", \"control\": \"$D/big.png\", \"init_image\": \"$D/in_70x52.jpg\", \"mask\": \"$D/mask_70x52.png\", \"seed\": 5}" > p.jsonl
rm -f j-0.png j-1.png
checks=$((checks+1))
if "$Z" generate -m snap --control-model c-union-2.1 --width 64 --height 48 --device cpu -q --prompts-jsonl p.jsonl -o j.png &&
    cmp -s ref_u21.png j-0.png && cmp -s ref_u21-inpaint.png j-1.png
then echo "ok   --prompts-jsonl control/control_scale"; else echo "FAIL --prompts-jsonl lines differ from the flags"; fail=$((fail+1)); fi

G=(generate -m snap --device cpu --seed 1 -q -p x --width 64 --height 48)
for f in bomb.png trunc.jpg cmyk.jpg text.png; do
    bad "control image $f" "$Z" "${G[@]}" --control-model c-union-2.1 --control "$D/$f" -o out.png
done
bad "--control without --control-model" "$Z" "${G[@]}" --control "$D/big.png" -o out.png
bad "--control with --strength" "$Z" "${G[@]}" --control-model c-union-2.1 --control "$D/big.png" --init-image "$D/in_70x52.jpg" --mask "$D/mask_70x52.png" --strength 0.5 -o out.png
bad "--control with --init-image, no mask" "$Z" "${G[@]}" --control-model c-union-2.1 --control "$D/big.png" --init-image "$D/in_70x52.jpg" -o out.png
bad "ControlNet inpainting with Union 1.0" "$Z" "${G[@]}" --control-model c-union-1.0 --control "$D/big.png" --init-image "$D/in_70x52.jpg" --mask "$D/mask_70x52.png" -o out.png
bad "--control-scale 2000" "$Z" "${G[@]}" --control-model c-union-2.1 --control "$D/big.png" --control-scale 2000 -o out.png
bad "control model missing" "$Z" "${G[@]}" --control-model nonexistent --control "$D/big.png" -o out.png
bad "the model folder as a control model" "$Z" "${G[@]}" --control-model snap --control "$D/big.png" -o out.png
# a ControlNet for another transformer: its config says 33 input channels, its tensors have 16
mkdir -p wrong && cp c-union-1.0/diffusion_pytorch_model.safetensors wrong/ &&
    sed 's/"control_in_dim": 16/"control_in_dim": 33/' c-union-1.0/config.json > wrong/config.json
bad "control tensors that do not match the config" "$Z" "${G[@]}" --control-model wrong --control "$D/big.png" -o out.png
mkdir -p wrong2 && cp c-union-2.1/diffusion_pytorch_model.safetensors wrong2/ &&
    sed 's/"dim": 256/"dim": 512/' c-union-2.1/config.json > wrong2/config.json
bad "a ControlNet of another width" "$Z" "${G[@]}" --control-model wrong2 --control "$D/big.png" -o out.png
printf '{"prompt": "x", "control_scale": "big"}\n' > bad.jsonl
bad "jsonl control_scale not a number" "$Z" generate -m snap --control-model c-union-2.1 --device cpu -q --prompts-jsonl bad.jsonl -o out.png
zt_summary
