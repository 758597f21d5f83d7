#!/usr/bin/env python3
"""tests/lora_layouts.py IN OUTDIR — rewrite a diffusers/PEFT LoRA file (save_lora_weights output with
its lora_alpha in "lora_adapter_metadata") in the other layouts zturbo reads, with the same update
coef * B A on every layer, using nothing but the standard library (CI has no torch):

  kohya.safetensors      lora_unet_<module with _>.lora_down/lora_up.weight + .alpha       (kohya, sd-scripts)
  comfy.safetensors      diffusion_model.<ComfyUI native name>.lora_A/lora_B + .alpha; q|k|v fused into
                         attention.qkv (A = [A_q; A_k; A_v], B = blockdiag(B_q, B_k, B_v), alpha x 3)
  dots.safetensors       <module with every '_' a '.'>.lora.down/lora.up.weight + .alpha   (dot-format trainers)
  aitoolkit.safetensors  diffusion_model.<module>.lora_A/lora_B, no alpha: B doubled when alpha/rank = 2
                         (a power of two keeps bf16 exact)
  lycoris.safetensors    lycoris_<module with _>.lora_down/lora_up + .alpha                 (SimpleTuner)
  peftraw.safetensors    base_model.model.<module>.lora_A.default.weight + .alpha            (a raw PEFT model dict)
Factors must be BF16 or F32."""
import json
import math
import os
import re
import struct
import sys

SIZE = {"BF16": 2, "F32": 4, "F16": 2}


def load(path):
    d = open(path, "rb").read()
    n = struct.unpack("<Q", d[:8])[0]
    h = json.loads(d[8:8 + n])
    meta = h.pop("__metadata__", {})
    t = {k: (v["dtype"], v["shape"], d[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
    return t, meta


def save(path, t):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(t):
        dt, shape, raw = t[k]
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def scalar(v, dt):
    if dt == "F32":
        return ("F32", [], struct.pack("<f", v))
    b = struct.unpack("<I", struct.pack("<f", v))[0] >> 16  # exact for the small alphas used here
    return ("BF16", [], struct.pack("<H", b))


def times2(x):
    dt, shape, raw = x
    if dt == "F32":
        vals = struct.unpack(f"<{len(raw) // 4}f", raw)
        return (dt, shape, struct.pack(f"<{len(vals)}f", *[2 * v for v in vals]))
    out = bytearray(raw)
    for i in range(0, len(out), 2):
        h = out[i] | out[i + 1] << 8
        if h & 0x7f80 and (h & 0x7f80) != 0x7f80:  # normal: exponent + 1
            h += 0x80
        elif h & 0x7fff:
            raise SystemExit("subnormal bf16 factor: doubling it is not a exponent step")
        out[i], out[i + 1] = h & 0xff, h >> 8
    return (dt, shape, bytes(out))


def block_diag(bs):
    dt = bs[0][0]
    es = SIZE[dt]
    rows = sum(b[1][0] for b in bs)
    cols = sum(b[1][1] for b in bs)
    out = bytearray(rows * cols * es)
    r0 = c0 = 0
    for _, (h, w), raw in bs:
        for i in range(h):
            dst = ((r0 + i) * cols + c0) * es
            out[dst:dst + w * es] = raw[i * w * es:(i + 1) * w * es]
        r0, c0 = r0 + h, c0 + w
    return (dt, [rows, cols], bytes(out))


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    t, meta = load(src)
    cfg = json.loads(meta["lora_adapter_metadata"])
    alpha, rank = float(cfg["transformer.lora_alpha"]), int(cfg["transformer.r"])
    pairs = {}
    for k, v in t.items():
        m = re.match(r"transformer\.(.*)\.lora_([AB])\.weight$", k)
        pairs.setdefault(m.group(1), {})[m.group(2)] = v
    dt = next(iter(t.values()))[0]
    al = scalar(alpha, dt)
    L = {n: {} for n in ("kohya", "comfy", "dots", "aitoolkit", "lycoris", "peftraw")}
    fused = set()
    for mod, ab in sorted(pairs.items()):
        a, b = ab["A"], ab["B"]
        u = mod.replace(".", "_")
        L["kohya"].update({f"lora_unet_{u}.lora_down.weight": a, f"lora_unet_{u}.lora_up.weight": b,
                           f"lora_unet_{u}.alpha": al})
        L["lycoris"].update({f"lycoris_{u}.lora_down.weight": a, f"lycoris_{u}.lora_up.weight": b, f"lycoris_{u}.alpha": al})
        dmod = mod.replace("_", ".")
        L["dots"].update({f"{dmod}.lora.down.weight": a, f"{dmod}.lora.up.weight": b, f"{dmod}.alpha": al})
        L["peftraw"].update({f"base_model.model.{mod}.lora_A.default.weight": a,
                             f"base_model.model.{mod}.lora_B.default.weight": b, f"base_model.model.{mod}.alpha": al})
        if alpha / rank == 2:
            L["aitoolkit"].update({f"diffusion_model.{mod}.lora_A.weight": a,
                                   f"diffusion_model.{mod}.lora_B.weight": times2(b)})
        blk = re.match(r"(.*\.attention)\.to_[qkv]$", mod)
        if blk and all(f"{blk.group(1)}.to_{x}" in pairs for x in "qkv"):
            if blk.group(1) not in fused:
                fused.add(blk.group(1))
                qkv = [pairs[f"{blk.group(1)}.to_{x}"] for x in "qkv"]
                ra = qkv[0]["A"]
                A = (ra[0], [3 * ra[1][0], ra[1][1]], b"".join(p["A"][2] for p in qkv))
                base = f"diffusion_model.{blk.group(1)}.qkv"
                L["comfy"].update({base + ".lora_A.weight": A, base + ".lora_B.weight": block_diag([p["B"] for p in qkv]),
                                   base + ".alpha": scalar(3 * alpha, dt)})
            continue
        name = re.sub(r"\.attention\.to_out\.0$", ".attention.out", mod)
        name = re.sub(r"^all_x_embedder\.2-1$", "x_embedder", name)
        name = re.sub(r"^all_final_layer\.2-1\.", "final_layer.", name)
        L["comfy"].update({f"diffusion_model.{name}.lora_A.weight": a, f"diffusion_model.{name}.lora_B.weight": b,
                           f"diffusion_model.{name}.alpha": al})
    for n, tens in L.items():
        if tens:
            save(os.path.join(outdir, n + ".safetensors"), tens)
    print(f"{len(pairs)} layers, alpha {alpha}, rank {rank}: {', '.join(n for n in L if L[n])}")


if __name__ == "__main__":
    main()
