#!/usr/bin/env python3
"""Image-input cases on the full-size random checkpoint (tools/gpu/suite-full.sh parts `images` and
`images_speed`): the diffusers oracle loaded ONCE per precision for all cases, the inputs, the
comparison table and the timing rows.

  ref_images_cases.py cases --dir D [--cases 'NAME ...'] [--sizes 1024x1024,1024x576]
      makes the input PNGs (a smooth photo-like init image, a mask, an edge-like control image per
      size), D/cases.jsonl: one line per case (name, mode and the
      inputs; read by `run` and `table`) and D/prompts.jsonl: the same lines without name and mode, read
      by `zturbo generate --prompts-jsonl`. Cases per size: i2i03 i2i06 i2i10 (img2img at
      strength 0.3/0.6/1.0), inp (inpainting, strength 1.0), cn05 cn10 (ControlNet at scale 0.5/1.0),
      cninp (ControlNet inpainting, 0.75); a case is NAME_WxH. --cases: only the names (or NAME
      prefixes, e.g. 'i2i06 cn10_1024x576') listed.
  ref_images_cases.py run --model M --control-model CM --dir D --precision f32 [--precision bf16]
      runs every case of D/cases.jsonl through diffusers' own pipelines (tools/ref/ref_images.py:
      ZImageImg2ImgPipeline, ZImageInpaintPipeline, ZImageControlNetPipeline,
      ZImageControlNetInpaintPipeline), the components loaded once per precision and reused,
      writing D/ref_<precision>_<name>.st; one JSON line per case with its seconds.
  ref_images_cases.py table --dir D --ours 'D/ours_%d.st' [--md FILE] [--slack 1.05]
      (numpy only) for each case: the encoded latents (image_latents, or control_latents: the
      control context), the DiT output of the first evaluation and the decoded image, ours against
      the f32 reference beside diffusers bf16 against the same reference (relative L2); a case
      passes when ours <= diffusers bf16 * slack for each, and the noise both drew is the same.
      Exit 1 on any failed check.
  ref_images_cases.py speed --model M --control-model CM --dir D [--offload group]
      diffusers bf16 timing rows: vae.encode at 1024^2 (seconds, device memory) without and with
      enable_tiling(); s per evaluation of the ControlNet pipeline (median step-to-step time at
      1024^2, scale 0.75), resident, or with enable_group_offload on the transformer and the
      ControlNet (block level, one block per group, a side stream). JSON lines.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# what ZImageControlNetModel.from_transformer shares with the transformer (modules and tensors)
SHARED = ("t_embedder", "all_x_embedder", "cap_embedder", "rope_embedder", "noise_refiner", "context_refiner",
          "x_pad_token", "cap_pad_token")
PROMPT = "a red fox standing in fresh snow at golden hour, photograph"
KINDS = [  # name, mode, extra fields
    ("i2i03", "img2img", {"strength": 0.3}),
    ("i2i06", "img2img", {"strength": 0.6}),
    ("i2i10", "img2img", {"strength": 1.0}),
    ("inp", "inpaint", {}),
    ("cn05", "control", {"control_scale": 0.5}),
    ("cn10", "control", {"control_scale": 1.0}),
    ("cninp", "control_inpaint", {"control_scale": 0.75}),
]


def make_inputs(d, w, h, seed):
    """Deterministic inputs of exactly w x h (no resize on either side): a smooth colour field with
    some texture (init), an ellipse mask (white = repaint), thin lines on black (control)."""
    import numpy as np
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 64 + 2, w // 64 + 2, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), dtype=np.float32)
    base += rng.normal(0, 6, base.shape)
    init = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse([w // 4, h // 5, 3 * w // 4, 4 * h // 5], fill=255)
    ctl = Image.new("RGB", (w, h), (0, 0, 0))
    dr = ImageDraw.Draw(ctl)
    for _ in range(24):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, [w, h, w, h]))
        dr.line([x0, y0, x1, y1], fill=(255, 255, 255), width=3)
    paths = {}
    for k, im in (("init", init), ("mask", mask), ("control", ctl)):
        paths[k] = os.path.join(d, f"{k}_{w}x{h}.png")
        im.save(paths[k])
    return paths


def cmd_cases(a):
    os.makedirs(a.dir, exist_ok=True)
    want = a.cases.split() if a.cases else None
    lines = []
    for si, size in enumerate(a.sizes.split(",")):
        w, h = (int(v) for v in size.split("x"))
        paths = None
        for ki, (kind, mode, extra) in enumerate(KINDS):
            name = f"{kind}_{w}x{h}"
            if want and not any(name == c or name.startswith(c + "_") for c in want):
                continue
            paths = paths or make_inputs(a.dir, w, h, 100 + si)
            c = {"name": name, "mode": mode, "prompt": PROMPT, "seed": 1000 + 10 * si + ki}
            if mode in ("img2img", "inpaint", "control_inpaint"):
                c["init_image"] = paths["init"]
            if mode in ("inpaint", "control_inpaint"):
                c["mask"] = paths["mask"]
            if mode.startswith("control"):
                c.update(control=paths["control"], width=w, height=h)
            c.update(extra)
            lines.append(c)
    if not lines:
        sys.exit(f"cases: no case matches '{a.cases}'")
    with open(os.path.join(a.dir, "cases.jsonl"), "w") as f:
        for c in lines:
            f.write(json.dumps(c) + "\n")
    # what zturbo reads: the same lines without the case's name and mode (generate refuses unknown keys)
    with open(os.path.join(a.dir, "prompts.jsonl"), "w") as f:
        for c in lines:
            f.write(json.dumps({k: v for k, v in c.items() if k not in ("name", "mode")}) + "\n")
    print(" ".join(c["name"] for c in lines))


def read_cases(d):
    with open(os.path.join(d, "cases.jsonl")) as f:
        return [json.loads(x) for x in f if x.strip()]


def cmd_run(a):
    import torch
    from ref_images import load_controlnet, run_control, run_pipeline
    from ref_pipeline import check_loaded_from_files, load_pipeline, set_precision_flags
    cases = read_cases(a.dir)
    need_cn = any(c["mode"].startswith("control") for c in cases)
    for prec in a.precision:
        dtype = torch.float32 if prec == "f32" else torch.bfloat16
        set_precision_flags(prec, a.device)
        t0 = time.perf_counter()
        base = load_pipeline(a.model, dtype, a.device)
        check_loaded_from_files(base.vae, os.path.join(a.model, "vae"))  # the encoder too
        cn = load_controlnet(a.control_model, dtype, a.device) if need_cn else None
        print(json.dumps({"what": "load", "precision": prec, "s": round(time.perf_counter() - t0, 2)}), flush=True)
        for c in cases:
            ns = argparse.Namespace(mode=c["mode"], prompt=c["prompt"], steps=a.steps, strength=c.get("strength"),
                                    mask=c.get("mask"), image=c.get("init_image"), control=c.get("control"),
                                    control_model=a.control_model, control_scale=c.get("control_scale", 0.75),
                                    width=c.get("width"), height=c.get("height"), seed=c["seed"], precision=prec,
                                    device=a.device, model=a.model,
                                    output=os.path.join(a.dir, f"ref_{prec}_{c['name']}.st"))
            t = time.perf_counter()
            if c["mode"].startswith("control"):
                run_control(ns, dtype, base=base, controlnet=cn)
            else:
                run_pipeline(ns, dtype, base=base)
            if a.device == "cuda":
                torch.cuda.synchronize()
            print(json.dumps({"what": "case", "precision": prec, "name": c["name"],
                              "s": round(time.perf_counter() - t, 2)}), flush=True)
        del base, cn
        if a.device == "cuda":
            torch.cuda.empty_cache()


def cmd_table(a):
    import numpy as np
    from compare import load
    cases = read_cases(a.dir)
    rows, fails = [], []
    for i, c in enumerate(cases):
        name = c["name"]
        try:
            ours = load(a.ours % i)
            f32 = load(os.path.join(a.dir, f"ref_f32_{name}.st"))
            bf16 = load(os.path.join(a.dir, f"ref_bf16_{name}.st"))
        except (OSError, ValueError) as e:
            fails.append(f"{name}: {e}")
            continue
        arr = lambda t: np.asarray(t.values, dtype=np.float64)
        for k in ("noise", "encode_noise"):  # the same random numbers on both sides, bit for bit
            if k in f32 and (k not in ours or not np.array_equal(arr(ours[k]), arr(f32[k]))):
                fails.append(f"{name}: our {k} is not the reference's (seed {c['seed']})")
        lat = "control_latents" if c["mode"].startswith("control") else "image_latents"
        for k in (lat, "dit_out_0", "decoded"):
            if k not in ours or k not in f32 or k not in bf16:
                fails.append(f"{name}: {k} missing")
                continue
            if ours[k].shape != f32[k].shape or bf16[k].shape != f32[k].shape:
                fails.append(f"{name}: {k} shapes {ours[k].shape} / {bf16[k].shape} / {f32[k].shape}")
                continue
            r = arr(f32[k])
            nr = float(np.linalg.norm(r)) or 1.0
            o = float(np.linalg.norm(arr(ours[k]) - r)) / nr
            b = float(np.linalg.norm(arr(bf16[k]) - r)) / nr
            ok = o <= b * a.slack
            rows.append((name, c["mode"], k, o, b, ok))
            if not ok:
                fails.append(f"{name}: {k} ours {o:.3e} > diffusers bf16 {b:.3e} x {a.slack}")
    out = ["| case | mode | tensor | ours vs f32 | diffusers bf16 vs f32 | ours / bf16 | |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, mode, k, o, b, ok in rows:
        out.append(f"| {name} | {mode} | {k} | {o:.3e} | {b:.3e} | {o / b if b else float('inf'):.3f} | "
                   f"{'ok' if ok else 'FAIL'} |")
    text = "\n".join(out) + "\n"
    if fails:
        text += "\nFailed:\n" + "".join(f"- {x}\n" for x in fails)
    print(text, end="")
    if a.md:
        with open(a.md, "a") as f:
            f.write(text)
    sys.exit(1 if fails else 0)


def cmd_speed(a):
    import numpy as np
    import torch
    from diffusers import ZImageControlNetPipeline
    from diffusers.utils import load_image
    from ref_images import load_controlnet
    from ref_pipeline import load_pipeline, mem_snapshot, reset_peak, sync, timed, versions
    dev, dtype = a.device, torch.bfloat16
    W, H = a.width, a.height
    base = load_pipeline(a.model, dtype, dev)
    cn = load_controlnet(a.control_model, dtype, "cpu" if a.offload else dev)
    shared = {}
    if a.offload == "group":
        # diffusers' block-level group offload (one block per group, a side stream) on the transformer and
        # the ControlNet. The ControlNet calls modules it shares with the transformer (from_transformer:
        # embedders, refiners, pad tokens) before the transformer's own forward, which is when the
        # transformer's hooks onload them; so the ControlNet gets resident copies of those (~0.9 B
        # parameters), the rest streams.
        import copy
        tr = base.transformer
        for k in SHARED:
            shared[k] = copy.deepcopy(getattr(tr, k))
        tr.to("cpu")
        for m in (tr, cn):
            m.enable_group_offload(onload_device=torch.device(dev), offload_device=torch.device("cpu"),
                                   offload_type="block_level", num_blocks_per_group=1, use_stream=(dev == "cuda"))
    res = {"what": "ref_images speed", "offload": a.offload, "width": W, "height": H}
    res.update(versions())
    if dev == "cuda":
        res["gpu"] = torch.cuda.get_device_name()
    ctl = load_image(os.path.join(a.dir, f"control_{W}x{H}.png"))
    if not a.offload:  # the VAE encode rows (the VAE is resident in both modes; once is enough)
        vae = base.vae
        img = base.image_processor.preprocess(load_image(os.path.join(a.dir, f"init_{W}x{H}.png")), H, W)
        img = img.to(dev, dtype)
        for tiling in (False, True):
            vae.enable_tiling() if tiling else vae.disable_tiling()
            with torch.no_grad():
                sync(dev)
                before = torch.cuda.memory_allocated() if dev == "cuda" else 0
                reset_peak(dev)
                s, ts = timed(lambda: vae.encode(img).latent_dist.mode(), dev, a.repeat)
                peak = torch.cuda.max_memory_allocated() - before if dev == "cuda" else 0
            key = "vae_encode_tiled" if tiling else "vae_encode"
            res[key + "_s"] = round(s, 4)
            res[key + "_all_s"] = [round(v, 4) for v in ts]
            res[key + "_activation_MiB"] = round(peak / 2**20, 1)
            res["mem_" + key] = mem_snapshot(dev)
        vae.disable_tiling()
    pipe = ZImageControlNetPipeline(**base.components, controlnet=cn)
    pipe.set_progress_bar_config(disable=True)
    for k, v in shared.items():
        setattr(pipe.controlnet, k, v)
    res["resident_copies_for_controlnet"] = sorted(shared)
    marks = []

    def step_end(p, i, t, kw):
        sync(dev)
        marks.append(time.perf_counter())
        return {}
    gen = torch.Generator("cpu").manual_seed(1)
    noise = torch.randn((1, 16, H // 8, W // 8), generator=gen)
    call = lambda steps: pipe(prompt=PROMPT, control_image=ctl, num_inference_steps=steps, guidance_scale=0.0,
                              height=H, width=W, latents=noise.to(dev), controlnet_conditioning_scale=0.75,
                              output_type="latent", callback_on_step_end=step_end)
    with torch.no_grad():
        call(2)  # warm-up
        marks.clear()
        reset_peak(dev)
        sync(dev)
        t0 = time.perf_counter()
        call(a.steps)
        sync(dev)
        total = time.perf_counter() - t0
    d = np.diff(marks)
    res["controlnet_pipeline_s_per_eval"] = round(statistics.median(d), 4) if len(d) else None
    res["controlnet_pipeline_step_s"] = [round(float(v), 4) for v in d]
    res["controlnet_pipeline_latent_out_s"] = round(total, 3)
    res["mem_controlnet_pipeline"] = mem_snapshot(dev)
    print(json.dumps(res), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("cases")
    p.add_argument("--dir", required=True)
    p.add_argument("--cases", default="")
    p.add_argument("--sizes", default="1024x1024,1024x576")
    p = sp.add_parser("run")
    p.add_argument("--model", required=True)
    p.add_argument("--control-model", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--precision", action="append", choices=["f32", "bf16"], required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p = sp.add_parser("table")
    p.add_argument("--dir", required=True)
    p.add_argument("--ours", required=True, help="our dumps, %%d = the case's line index")
    p.add_argument("--md")
    p.add_argument("--slack", type=float, default=1.05)
    p = sp.add_parser("speed")
    p.add_argument("--model", required=True)
    p.add_argument("--control-model", required=True)
    p.add_argument("--dir", required=True, help="where `cases` wrote init_WxH.png and control_WxH.png")
    p.add_argument("--offload", choices=["group"], default=None)
    p.add_argument("--device", default="cuda")
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=1024)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if getattr(a, "threads", 0):
        import torch
        torch.set_num_threads(a.threads)
    {"cases": cmd_cases, "run": cmd_run, "table": cmd_table, "speed": cmd_speed}[a.cmd](a)


if __name__ == "__main__":
    main()
