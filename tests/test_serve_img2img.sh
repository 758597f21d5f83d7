#!/usr/bin/env bash
# POST /sdapi/v1/img2img of `zturbo serve` on the tiny checkpoint (CPU
# backend), talked to with Python's http.client on loopback only:
#   * img2img (a JPEG, denoising_strength 0.5, batch_size 2) and inpainting
#     (a data-URL PNG mask, strength 0.8, the server's default size), and
#     inpainting_mask_invert 1: the PNGs are byte for byte `zturbo generate`
#     --init-image/--mask/--strength/--mask-invert for the same seeds (the
#     files named as the server labels the request's images: init_images[0],
#     mask); parameters echo the request without the images, info as A1111;
#   * hostile inputs: bad base64, a truncated PNG, a 30000x30000 PNG bomb, a
#     mask of another size, strength outside (0, 1], no init_images: each a
#     400 with A1111's error body and one line, and nothing queued (no image
#     made, the queue empty);
#   * under --vram without --images on: a 400 naming --images on; with
#     --images on at the budget the plan needs: the resident CLI's bytes.
set -u
Z="$ZT_BIN/zturbo"
D="$ZT_ROOT/tests/data/images"
dir="$ZT_ROOT/build/test-tmp/serve-img2img"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
"$ZT_BIN/mkmodel" --config tiny --seed 3 --dtype bf16 -q -o snap || exit 1
export PYTHONPATH="$ZT_ROOT/tests"
# the names the server gives the request's images (the PNG's "Init image" and "Mask")
cp "$D/in_70x52.jpg" 'init_images[0]' && cp "$D/mask_70x52.png" mask && mkdir srv || exit 1
fail=0
. "$ZT_ROOT/tests/lib.sh"
G=(generate -m snap --device cpu --threads 1 -q -p "a red fox on a hill")
"$Z" "${G[@]}" --init-image 'init_images[0]' --strength 0.5 --seed 5 --steps 4 --width 64 --height 48 --count 2 -o cli-i.png || exit 1
"$Z" "${G[@]}" --init-image 'init_images[0]' --mask mask --strength 0.8 --seed 7 --steps 2 --width 64 --height 48 -o cli-m.png || exit 1
"$Z" "${G[@]}" --init-image 'init_images[0]' --mask mask --mask-invert --strength 0.8 --seed 7 --steps 2 --width 64 --height 48 \
    -o cli-v.png || exit 1

start_server_in srv main --width 64 --height 48 --steps 2 --max-width 128 --max-height 128 || exit 1
M=$ADDR MPID=$PID
echo "server at $M"

check "img2img (JPEG, strength 0.5, batch_size 2) and inpainting (data-URL mask, invert or not): generate's PNG bytes" \
    env M="$M" D="$D" python3 - <<'PY'
import base64, json, os, serve_util as su
m = os.environ["M"]
b64 = lambda f: base64.b64encode(open(f, "rb").read()).decode()
cli = lambda f: open(f, "rb").read()
body = {"prompt": "a red fox on a hill", "init_images": [b64("init_images[0]")], "denoising_strength": 0.5, "seed": 5,
        "steps": 4, "width": 64, "height": 48, "batch_size": 2, "sampler_name": "Euler"}
st, h, raw = su.post(m, "/sdapi/v1/img2img", body)
assert st == 200, (st, raw[:300])
ims = su.images(raw)
assert ims == [cli("cli-i-0.png"), cli("cli-i-1.png")], "img2img PNGs differ from generate --count 2"
r = json.loads(raw)
assert r["parameters"]["init_images"] is None and r["parameters"]["denoising_strength"] == 0.5, r["parameters"]
info = json.loads(r["info"])
assert info["all_seeds"] == [5, 6] and info["infotexts"][0] == su.png_texts(ims[0])["parameters"], info
assert "Denoising strength: 0.5" in info["infotexts"][0] and "Init image: init_images[0]" in info["infotexts"][0], info
inp = {"prompt": "a red fox on a hill", "init_images": [b64("init_images[0]")], "seed": 7, "denoising_strength": 0.8,
       "mask": "data:image/png;base64," + b64("mask"), "mask_blur": 4, "inpainting_fill": 1, "inpaint_full_res": False}
st, h, raw = su.post(m, "/sdapi/v1/img2img", inp)
assert st == 200, (st, raw[:300])
assert su.images(raw) == [cli("cli-m.png")], "inpainting PNG differs from generate --mask"
r = json.loads(raw)
assert r["parameters"]["mask"] is None and json.loads(r["info"])["zturbo"]["ignored"] == ["mask_blur"], r
inp["inpainting_mask_invert"] = 1
st, h, raw = su.post(m, "/sdapi/v1/img2img", inp)
assert st == 200, (st, raw[:300])
assert su.images(raw) == [cli("cli-v.png")], "inverted inpainting PNG differs from generate --mask-invert"
assert su.png_pixels(cli("cli-v.png")) != su.png_pixels(cli("cli-m.png")), "inverting the mask changed no pixel"
PY

check "hostile img2img inputs: each a 400 with one line, A1111's error shape, nothing queued" \
    env M="$M" D="$D" python3 - <<'PY'
import base64, json, os, serve_util as su
m, d = os.environ["M"], os.environ["D"]
b64 = lambda f: base64.b64encode(open(f, "rb").read()).decode()
jpg = b64("init_images[0]")
made = su.metric(m, "zturbo_images_total")
cases = [  # body, field named, words
    ({"prompt": "x"}, "init_images", "init_images: required"),
    ({"init_images": []}, "init_images", "expected one"),
    ({"init_images": ["iVBORw0K!!!!"]}, "init_images[0]", "not base64"),
    ({"init_images": ["data:image/png," + jpg]}, "init_images[0]", ";base64,"),
    ({"init_images": [b64(d + "/trunc.png")]}, "init_images[0]", "corrupt or truncated PNG"),
    ({"init_images": [b64(d + "/bomb.png")]}, "init_images[0]", "larger than allowed"),
    ({"init_images": [jpg], "mask": b64(d + "/rgb8.png")}, "mask", "mask is 37x23, init_images[0] 70x52"),
    ({"init_images": [jpg], "denoising_strength": 0}, "denoising_strength", "(0, 1]"),
    ({"init_images": [jpg], "denoising_strength": 1.5}, "denoising_strength", "(0, 1]"),
    ({"init_images": [jpg], "mask": jpg, "inpaint_full_res": True}, "inpaint_full_res", "whole picture"),
]
for body, param, words in cases:
    st, h, b = su.post(m, "/sdapi/v1/img2img", body)
    assert st == 400 and h["content-type"] == "application/json", (param, st, b[:200])
    r = json.loads(b)
    assert r["error"] == "Bad Request" and words in r["detail"] and "\n" not in r["detail"], (param, r)
p = json.loads(su.get(m, "/sdapi/v1/progress")[2])
assert su.metric(m, "zturbo_images_total") == made and p["state"]["job_count"] == 0, (made, p)
PY
stop_server "$MPID"

# ---- a device budget: the plan must hold the VAE encoder's workspace ----
min_of() { "$Z" generate -m snap --device cpu -q -p x --width 128 --height 128 --steps 2 --vram 1M "$@" -o x.png 2>&1 |
           sed -n 's/.*needs at least \([0-9.]*\) MiB.*/\1/p'; }
plain=$(min_of) images=$(min_of --init-image 'init_images[0]')
[ -n "$plain" ] && [ -n "$images" ] || { echo "FAIL no minimum budget in generate's message"; exit 1; }
vp=$(awk "BEGIN{printf \"%.2f\", $plain + 0.01}") vi=$(awk "BEGIN{printf \"%.2f\", $images + 0.01}")
start_server_in srv noimages --width 64 --height 48 --steps 2 --max-width 128 --max-height 128 --vram "${vp}M" || exit 1
check "--vram ${vp}M without --images on: img2img is a 400 naming --images on, txt2img still runs" env M="$ADDR" python3 - <<'PY'
import base64, json, os, serve_util as su
m = os.environ["M"]
st, h, b = su.post(m, "/sdapi/v1/img2img", {"init_images": [base64.b64encode(open("init_images[0]", "rb").read()).decode()]})
r = json.loads(b)
assert st == 400 and "--images on" in r["detail"] and "\n" not in r["detail"], (st, r)
st, h, b = su.post(m, "/sdapi/v1/txt2img", {"prompt": "x", "seed": 1})
assert st == 200, (st, b[:200])
PY
stop_server "$PID"
start_server_in srv images --width 64 --height 48 --steps 2 --max-width 128 --max-height 128 --vram "${vi}M" --images on || exit 1
check "--vram ${vi}M --images on: inpainting gives the resident CLI's bytes" env M="$ADDR" python3 - <<'PY'
import base64, os, serve_util as su
b64 = lambda f: base64.b64encode(open(f, "rb").read()).decode()
st, h, b = su.post(os.environ["M"], "/sdapi/v1/img2img", {"prompt": "a red fox on a hill", "init_images": [b64("init_images[0]")],
                                                          "mask": b64("mask"), "seed": 7, "denoising_strength": 0.8})
assert st == 200, (st, b[:300])
assert su.images(b) == [open("cli-m.png", "rb").read()], "PNG differs from the resident CLI's"
PY
stop_server "$PID"

[ $fail -eq 0 ] && echo "test_serve_img2img: all passed" || echo "test_serve_img2img: $fail failed"
[ $fail -eq 0 ]
