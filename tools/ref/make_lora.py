#!/usr/bin/env python3
"""tools/ref/make_lora.py — random LoRA files for a Z-Image checkpoint, made the way trainers make
them: peft's LoraConfig on diffusers' ZImageTransformer2DModel, the factors drawn from a seeded
generator, saved with ZImagePipeline.save_lora_weights (diffusers/PEFT format, alpha in the
"lora_adapter_metadata"), then the SAME factors rewritten in other layouts:

  --kohya FILE    kohya / sd-scripts: lora_unet_<module with _>.lora_down/lora_up.weight + .alpha
  --comfy FILE    ComfyUI native Z-Image names: diffusion_model.layers.N.attention.qkv (q|k|v fused:
                  A = [A_q; A_k; A_v], B = blockdiag(B_q, B_k, B_v), alpha x 3, so B A is exactly the
                  three updates stacked), attention.out, x_embedder, final_layer.*; lora_A/lora_B
  --dots FILE     dot-format trainers: every '_' of the module path a '.', .lora.down/.lora.up + .alpha

Every layout holds the same update coef * B A per layer, so an engine must produce the same image
from each. Needs torch, diffusers (0.42.1), peft, safetensors (tools/ref/README.md). Examples:

  make_lora.py --model CKPT --rank 4 --alpha 8 --seed 1 --out lora_r4.safetensors --kohya lora_r4_kohya.safetensors
"""
import argparse
import os
import re
import sys
import tempfile

import torch

DEFAULT_TARGETS = (r".*(attention\.to_q|attention\.to_k|attention\.to_v|attention\.to_out\.0|feed_forward\.w1|"
                   r"feed_forward\.w2|feed_forward\.w3|(layers|noise_refiner)\.\d+\.adaLN_modulation\.0|t_embedder\.mlp\.0|t_embedder\.mlp\.2|"
                   r"cap_embedder\.1|all_x_embedder\.2-1|all_final_layer\.2-1\.linear|"
                   r"all_final_layer\.2-1\.adaLN_modulation\.1)$")


def build(model_dir, rank, alpha, seed, std, targets, dtype, meta=False):
    """meta: the transformer built from its config on the meta device (no weights read: the full model
    in f32 would take 25 GB and a minute); the LoRA factors are the same either way."""
    from diffusers import ZImageTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    path = os.path.join(model_dir, "transformer")
    if meta:
        from accelerate import init_empty_weights
        with init_empty_weights():
            tr = ZImageTransformer2DModel.from_config(ZImageTransformer2DModel.load_config(path))
    else:
        tr = ZImageTransformer2DModel.from_pretrained(path, torch_dtype=torch.float32)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=False)
    tr.add_adapter(cfg)
    g = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(tr.named_parameters()):
            if ".lora_A." in name or ".lora_B." in name:
                x = (torch.randn(p.shape, generator=g) * std).to(dtype).float()
                owner = tr.get_submodule(name.rsplit(".", 1)[0])
                setattr(owner, name.rsplit(".", 1)[1], torch.nn.Parameter(x, requires_grad=False))
    sd = {k: v.detach().to(dtype).contiguous() for k, v in get_peft_model_state_dict(tr).items()}
    return sd, cfg


def save_diffusers(path, sd, cfg):
    from diffusers import ZImagePipeline
    d = tempfile.mkdtemp()
    meta = cfg.to_dict()
    ZImagePipeline.save_lora_weights(d, transformer_lora_layers=sd, transformer_lora_adapter_metadata=meta,
                                     weight_name="lora.safetensors", safe_serialization=True)
    os.replace(os.path.join(d, "lora.safetensors"), path)
    os.rmdir(d)
    canonical_header(path)


def canonical_header(path):
    """Rewrite the header JSON with sorted keys (safetensors orders the metadata map differently from run to
    run), so the same LoRA is the same bytes; the data section is kept as it is."""
    import json
    import struct
    d = open(path, "rb").read()
    n = struct.unpack("<Q", d[:8])[0]
    h = json.dumps(json.loads(d[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + d[8 + n:])


def pairs(sd):
    """{module: (A, B)} from the PEFT state dict (keys MODULE.lora_A.weight / .lora_B.weight)."""
    out = {}
    for k, v in sd.items():
        m = re.match(r"(.*)\.lora_([AB])\.weight$", k)
        out.setdefault(m.group(1), {})[m.group(2)] = v
    return {m: (ab["A"], ab["B"]) for m, ab in out.items()}


def save(path, tensors, meta=None):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, path, metadata=meta or {"format": "pt"})
    canonical_header(path)


def kohya(sd, alpha, dtype):
    t = {}
    for m, (a, b) in pairs(sd).items():
        base = "lora_unet_" + m.replace(".", "_")
        t[base + ".lora_down.weight"], t[base + ".lora_up.weight"] = a, b
        t[base + ".alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return t


def dots(sd, alpha, dtype):
    t = {}
    for m, (a, b) in pairs(sd).items():
        base = m.replace("_", ".")
        t[base + ".lora.down.weight"], t[base + ".lora.up.weight"] = a, b
        t[base + ".alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return t


COMFY_NAMES = [(r"\.attention\.to_out\.0$", ".attention.out"), (r"^all_x_embedder\.2-1$", "x_embedder"),
               (r"^all_final_layer\.2-1\.", "final_layer.")]


def comfy(sd, alpha, dtype):
    p = pairs(sd)
    t = {}
    done = set()
    for m, (a, b) in p.items():
        blk = re.match(r"(.*\.attention)\.to_[qkv]$", m)
        if blk and all(f"{blk.group(1)}.to_{x}" in p for x in "qkv"):
            if blk.group(1) in done:
                continue
            done.add(blk.group(1))
            fa = [p[f"{blk.group(1)}.to_{x}"][0] for x in "qkv"]
            fb = [p[f"{blk.group(1)}.to_{x}"][1] for x in "qkv"]
            A = torch.cat(fa, 0)
            B = torch.block_diag(*[x.float() for x in fb]).to(dtype)
            base = f"diffusion_model.{blk.group(1)}.qkv"
            t[base + ".lora_A.weight"], t[base + ".lora_B.weight"] = A, B
            t[base + ".alpha"] = torch.tensor(3.0 * alpha, dtype=dtype)  # rank 3r: the same alpha / rank
            continue
        name = m
        for pat, rep in COMFY_NAMES:
            name = re.sub(pat, rep, name)
        base = "diffusion_model." + name
        t[base + ".lora_A.weight"], t[base + ".lora_B.weight"] = a, b
        t[base + ".alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint folder (transformer/ in diffusers layout)")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=None, help="lora_alpha (default: rank)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.05, help="factors ~ N(0, std^2)")
    ap.add_argument("--targets", default=DEFAULT_TARGETS, help="peft target_modules (a regex)")
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    ap.add_argument("--meta", action="store_true", help="do not read the base weights (the model from its config)")
    ap.add_argument("--out", required=True, help="diffusers/PEFT file (save_lora_weights)")
    ap.add_argument("--kohya")
    ap.add_argument("--comfy")
    ap.add_argument("--dots")
    a = ap.parse_args()
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    alpha = a.alpha if a.alpha is not None else a.rank
    sd, cfg = build(a.model, a.rank, alpha, a.seed, a.std, a.targets, dtype, a.meta)
    save_diffusers(a.out, sd, cfg)
    if a.kohya:
        save(a.kohya, kohya(sd, alpha, dtype))
    if a.comfy:
        save(a.comfy, comfy(sd, alpha, dtype))
    if a.dots:
        save(a.dots, dots(sd, alpha, dtype))
    print(f"{a.out}: {len(pairs(sd))} layers, rank {a.rank}, alpha {alpha}", file=sys.stderr)


if __name__ == "__main__":
    main()
