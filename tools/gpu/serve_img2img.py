#!/usr/bin/env python3
"""tools/gpu/serve_img2img.py — POST /sdapi/v1/img2img of `zturbo serve` on
the GPU machine, full-size checkpoint at --vram 8G (suite-full.sh part
`serveimg`, after `prep`; tests/test_serve_img2img.sh is the CPU twin):

identity  img2img (strength 0.6, 1024x1024), inpainting (strength 0.8,
          1024x768) and inpainting with inpainting_mask_invert, through a
          server started with --images on: each PNG byte-identical to
          `zturbo generate --init-image/--mask/--mask-invert --strength` at
          the same budget (files named init_images[0] and mask, as the
          server labels the request's images); seconds per request printed.
refusal   a server at the same budget without --images on answers 400
          naming --images on.

Everything on loopback. Writes serve_img2img.txt (the verdicts and times)
and the logs to --out. Exit 1 when a check fails."""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(root, "tests"))
import serve_util as su  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--zturbo", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--vram", default="8G", help="'' for none")
ap.add_argument("--device", default=None, help="cpu for a dry run on the tiny checkpoint")
ap.add_argument("--scale", type=int, default=1, help="divide every image side (dry runs on a CPU: 8)")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
os.makedirs(a.work, exist_ok=True)
work = os.path.abspath(a.work)
data = os.path.join(root, "tests", "data", "images")
shutil.copy(os.path.join(data, "in_70x52.jpg"), os.path.join(work, "init_images[0]"))
shutil.copy(os.path.join(data, "mask_70x52.png"), os.path.join(work, "mask"))
srv_dir = os.path.join(work, "srv")  # no files named as the labels: the server must use the request's bytes
os.makedirs(srv_dir, exist_ok=True)
model = os.path.abspath(a.model)
common = (["--vram", a.vram] if a.vram else []) + (["--device", a.device] if a.device else [])
verdicts = []


def side(v):
    return max(16, v // a.scale // 16 * 16)


def say(line):
    print(line, flush=True)
    with open(os.path.join(a.out, "serve_img2img.txt"), "a") as f:
        f.write(line + "\n")


def verdict(name, ok, text):
    verdicts.append(ok)
    say("%s %s: %s" % ("PASS" if ok else "FAIL", name, text))


def start_server(name, *extra):
    argv = [a.zturbo, "serve", "-m", model, *common, "--listen", "127.0.0.1:0", "-q", "--max-width", str(side(1024)),
            "--max-height", str(side(1024)), "--width", str(side(1024)), "--height", str(side(1024)), *extra]
    return su.launch(argv, os.path.join(a.out, "server-img2img-%s.err" % name), cwd=srv_dir)


stop_server = su.stop


b64 = lambda f: base64.b64encode(open(os.path.join(work, f), "rb").read()).decode()
cases = [  # name, width, height, strength, mask, invert
    ("img2img", side(1024), side(1024), 0.6, False, False),
    ("inpaint", side(1024), side(768), 0.8, True, False),
    ("inpaint-invert", side(1024), side(768), 0.8, True, True),
]
prompt = "a red fox on a hill, golden hour"
say("serve img2img at --vram %s (%s)" % (a.vram or "none", a.device or "cuda"))
srv, addr = start_server("images", "--images", "on")
api = {}
for name, w, h, s, mask, inv in cases:
    body = {"prompt": prompt, "seed": 42, "steps": 8, "width": w, "height": h, "denoising_strength": s,
            "init_images": [b64("init_images[0]")]}
    if mask:
        body["mask"] = "data:image/png;base64," + b64("mask")
        body["inpainting_mask_invert"] = int(inv)
    t0 = time.time()
    st, _, raw = su.post(addr, "/sdapi/v1/img2img", body, timeout=900)
    dt = time.time() - t0
    api[name] = (st, su.images(raw)[0] if st == 200 else raw[:300], dt)
rc = stop_server(srv)
verdict("server --images on", rc == 0, "exit %d" % rc)
for name, w, h, s, mask, inv in cases:
    out = os.path.join(work, "cli-%s.png" % name)
    cmd = [a.zturbo, "generate", "-m", model, *common, "-q", "-p", prompt, "--seed", "42", "--steps", "8",
           "--width", str(w), "--height", str(h), "--strength", str(s), "--init-image", "init_images[0]", "-o", out]
    if mask:
        cmd += ["--mask", "mask"] + (["--mask-invert"] if inv else [])
    t0 = time.time()
    r = subprocess.run(cmd, cwd=work)
    dt = time.time() - t0
    st, png, t_api = api[name]
    same = st == 200 and r.returncode == 0 and png == open(out, "rb").read()
    verdict(name, same, "%dx%d strength %g: API %d in %.2f s (request), generate exit %d in %.2f s (with load); %s" %
            (w, h, s, st, t_api, r.returncode, dt, "PNG byte-identical" if same else "PNGs DIFFER or failed: %r" % (png[:200] if st != 200 else "")))
if a.vram:
    srv, addr = start_server("noimages")
    st, _, raw = su.post(addr, "/sdapi/v1/img2img", {"init_images": [b64("init_images[0]")]})
    detail = json.loads(raw).get("detail", "") if raw.startswith(b"{") else ""
    verdict("no --images on", st == 400 and "--images on" in detail, "%d: %s" % (st, detail))
    stop_server(srv)
say("serve img2img: %d of %d checks passed" % (sum(verdicts), len(verdicts)))
sys.exit(0 if all(verdicts) else 1)
