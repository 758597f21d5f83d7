#!/usr/bin/env bash
# Images in from the command line (CPU backend, tiny checkpoint):
#  1. invariant 1 for img2img and inpainting: the PNG bytes of the resident
#     run at the minimum budget (which then holds the VAE encoder's
#     workspace), between, with the banded VAE decode, from a zstd store with
#     --pinned 0, and for two images in one process (--count 2);
#  2. --prompts-jsonl lines carry init_image / mask / strength: the same
#     bytes as the flags give;
#  3. hostile inputs: each one line on stderr, a non-zero exit, no output
#     file (the image-loader hostile set of tests/data/images included).
set -u
. "$ZT_ROOT/tests/lib.sh"
D="$ZT_ROOT/tests/data/images"
zt_tmp images-cli
zt_tiny 3 f32 snap
"$Z" pack snap -o tiny.zts -q || exit 1
for mode in img2img inpaint; do
    common=(-m snap -p "a red fox on a hill" --init-image "$D/in_70x52.jpg" --seed 5 --device cpu -q)
    [ $mode = inpaint ] && common+=(--mask "$D/mask_70x52.png" --strength 0.8)
    [ $mode = img2img ] && common+=(--strength 0.6)
    "$Z" generate "${common[@]}" -o ref.png || { echo "FAIL $mode resident"; exit 1; }
    m=$(up "$(min_budget)")
    [ -n "$m" ] || { echo "FAIL $mode: no minimum budget in the error message"; exit 1; }
    check_same "min budget ${m}M" --vram "${m}M"
    check_same "min budget + 4M" --vram "$(calc "$m + 4")M"
    check_same "--pinned 0 from the zstd store" --vram "${m}M" --pinned 0 --store tiny.zts
    mb=$(up "$(min_budget --vae-bands 1,5)")
    check_same "banded VAE decode 1,5 at ${mb}M" --vae-bands 1,5 --vram "${mb}M"
    # two images in one process: the second re-encodes, the lent blocks (if any) come back
    check_two_images "${m}M"
    cp ref.png "ref_$mode.png"
done

# the init image shapes the output: 70x52 -> 64x48
checks=$((checks+1))
if python3 -c "import struct,sys; d=open('ref_img2img.png','rb').read(); w,h=struct.unpack('>II',d[16:24]); sys.exit(0 if (w,h)==(64,48) else 1)"
then echo "ok   output size from the init image (64x48)"; else echo "FAIL output size"; fail=$((fail+1)); fi
# the same requests as JSON lines
printf '%s\n' "{\"prompt\": \"a red fox on a hill\", \"init_image\": \"$D/in_70x52.jpg\", \"strength\": 0.6, \"seed\": 5}" \
    "{\"prompt\": \"a red fox on a hill\", \"init_image\": \"$D/in_70x52.jpg\", \"mask\": \"$D/mask_70x52.png\", \"strength\": 0.8, \"seed\": 5}" > p.jsonl
rm -f j-0.png j-1.png
checks=$((checks+1))
if "$Z" generate -m snap --device cpu -q --prompts-jsonl p.jsonl -o j.png && cmp -s ref_img2img.png j-0.png && cmp -s ref_inpaint.png j-1.png
then echo "ok   --prompts-jsonl init_image/mask/strength"; else echo "FAIL --prompts-jsonl lines differ from the flags"; fail=$((fail+1)); fi
# --dump with one %d: one file per JSON line, the bytes of the single run's dump (the GPU suite's one-process cases)
"$Z" generate -m snap -p "a red fox on a hill" --init-image "$D/in_70x52.jpg" --mask "$D/mask_70x52.png" --strength 0.8 \
    --seed 5 --device cpu -q -o s.png --dump s1.st || { echo "FAIL inpaint --dump"; exit 1; }
rm -f jd0.st jd1.st; checks=$((checks+1))
if "$Z" generate -m snap --device cpu -q --prompts-jsonl p.jsonl -o j.png --dump 'jd%d.st' && [ -s jd0.st ] && cmp -s s1.st jd1.st
then echo "ok   --prompts-jsonl --dump 'jd%d.st': one dump per line, as the single run's"
else echo "FAIL --prompts-jsonl --dump 'jd%d.st' (missing, or not the single run's dump)"; fail=$((fail+1)); fi

G=(generate -m snap --device cpu --seed 1 -q -p x)
for f in bomb.png bomb.jpg trunc.png trunc.jpg cmyk.jpg text.png empty.jpg badcrc.png; do
    bad "init image $f" "$Z" "${G[@]}" --init-image "$D/$f" -o out.png
    bad "mask $f" "$Z" "${G[@]}" --init-image "$D/in_70x52.jpg" --mask "$D/$f" -o out.png
done
bad "init image missing" "$Z" "${G[@]}" --init-image nonexistent.png -o out.png
bad "mask of another size" "$Z" "${G[@]}" --init-image "$D/in_70x52.jpg" --mask "$D/mask.png" -o out.png
bad "mask without init image" "$Z" "${G[@]}" --mask "$D/mask.png" -o out.png
bad "strength without init image" "$Z" "${G[@]}" --strength 0.5 -o out.png
bad "strength 0" "$Z" "${G[@]}" --init-image "$D/in_70x52.jpg" --strength 0 -o out.png
bad "strength 1.5" "$Z" "${G[@]}" --init-image "$D/in_70x52.jpg" --strength 1.5 -o out.png
bad "strength nan" "$Z" "${G[@]}" --init-image "$D/in_70x52.jpg" --strength nan -o out.png
# 2100x16 and 15x40 gray PNGs (written with python3's zlib): sizes the model cannot take without --width/--height
python3 - <<'PY'
import struct, zlib
def png(path, w, h):
    c = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(w)) for y in range(h))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + c(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + c(b"IDAT", zlib.compress(raw)) + c(b"IEND", b""))
png("wide.png", 2100, 16)
png("small.png", 15, 40)
PY
bad "init image 2100 wide (default size over 2048)" "$Z" "${G[@]}" --init-image wide.png -o out.png
bad "init image 15 wide (default size 0)" "$Z" "${G[@]}" --init-image small.png -o out.png
good=0; rm -f out.png; checks=$((checks+1))
if "$Z" "${G[@]}" --init-image wide.png --width 64 --height 32 -o out.png && [ -s out.png ]; then echo "ok   a wide init image resized to --width/--height"
else echo "FAIL a wide init image with --width/--height"; fail=$((fail+1)); fi
# --stats: the encoder's time and workspace (the GPU suite's images_speed reads them)
checks=$((checks+1))
st=$("$Z" generate -m snap -p "a red fox on a hill" --init-image "$D/in_70x52.jpg" --seed 5 --device cpu -q -o s.png --stats |
     sed -n 's/^stats-json: //p')
if printf '%s' "$st" | python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if j['vae_encode_s'] > 0 and j['vae_encode_bytes'] > 0 else 1)"
then echo "ok   --stats vae_encode_s / vae_encode_bytes"; else echo "FAIL --stats encoder time/workspace: $st"; fail=$((fail+1)); fi
bad "--dump without %d, several images" "$Z" generate -m snap --device cpu -q --prompts-jsonl p.jsonl --dump one.st -o out.png
printf '{"prompt": "x", "strength": 2}\n' > bad.jsonl
bad "jsonl strength 2" "$Z" generate -m snap --device cpu -q --prompts-jsonl bad.jsonl -o out.png
zt_summary
