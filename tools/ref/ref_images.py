#!/usr/bin/env python3
"""Reference (oracle) runs of the Z-Image pipelines that take images: the VAE encoder, img2img,
inpainting, ControlNet and ControlNet-inpaint, with diffusers' own classes (ZImageImg2ImgPipeline,
ZImageInpaintPipeline, ZImageControlNetPipeline, ZImageControlNetInpaintPipeline,
ZImageControlNetModel, AutoencoderKL). Writes every intermediate to one safetensors file, in the
format of tools/ref/ref_pipeline.py plus the tensors below, so that tools/ref/compare.py and the
C tests compare the engine tensor by tensor.

The pipelines are not re-written. Input images are read exactly as a diffusers user reads them
(`diffusers.utils.load_image(path)`), the pipeline preprocesses them itself. What is controlled
from outside: the random numbers. The pipelines draw, from one generator, the posterior sample of
the encoded image (`latent_dist.sample`, img2img/inpaint) and the initial noise; this script
draws both with a CPU generator seeded with --seed (or reads them from --noise: tensors `noise`
and `encode_noise`) and hands them in by replacing `randn_tensor` in the VAE and pipeline modules,
so the engine can be fed the same values (`zturbo generate --noise FILE`).

MODES and extra tensors (all batch-free F32 unless noted):
  encode      image [3,H,W] (the preprocessed image), encode_noise [16,h,w], enc_mean, enc_logvar
              [16,h,w] (raw posterior), image_latents ((sample - shift) * scale),
              image_latents_argmax ((mean - shift) * scale)
  img2img     image, encode_noise, image_latents, noise, init_latents (after scale_noise),
              + the ref_pipeline tensors (ids, cap_feats, sigmas, timesteps, t_model, dit_out_0,
              latents_k for the steps that run, decoded, image_out U8)
  inpaint     as img2img + mask [H,W] (processed), mask_latent [h,w]
  control     control [3,H,W] (processed), control_latents [C_in,h,w] (argmax, zero-padded to
              control_in_dim), hints_0 [S, dim] of the first step (controlnet output at its first
              layer place, scaled), + the pipeline tensors
  control_inpaint  as control, with the image and mask parts of the 33-channel context
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_pipeline import check_loaded_from_files, set_precision_flags, versions, write_safetensors  # noqa: E402


def load_vae(model_dir, dtype, device):
    from diffusers import AutoencoderKL
    vae = AutoencoderKL.from_pretrained(os.path.join(model_dir, "vae"), torch_dtype=dtype)
    check_loaded_from_files(vae, os.path.join(model_dir, "vae"))
    return vae.eval().to(device)


def cpu_randn(gen, shape):
    from diffusers.utils.torch_utils import randn_tensor
    return randn_tensor((1,) + tuple(shape), generator=gen, device=torch.device("cpu"), dtype=torch.float32)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["encode"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True, help="the input image file (PNG/JPEG)")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    set_precision_flags(a.precision, a.device)
    dtype = torch.float32 if a.precision == "f32" else torch.bfloat16
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.utils import load_image

    vae = load_vae(a.model, dtype, a.device)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    proc = VaeImageProcessor(vae_scale_factor=factor * 2)  # what the Z-Image pipelines use
    image = proc.preprocess(load_image(a.image), a.height, a.width).to(torch.float32)
    H, W = image.shape[-2:]
    C = vae.config.latent_channels
    gen = torch.Generator("cpu").manual_seed(a.seed)
    eps = cpu_randn(gen, (C, H // factor, W // factor))
    out = {"image": image[0]}
    with torch.no_grad():
        dist = vae.encode(image.to(a.device, dtype)).latent_dist
        # the pipelines: retrieve_latents(..., generator) -> latent_dist.sample(generator) (img2img,
        # inpaint) or .mode() (ControlNet), then (x - shift_factor) * scaling_factor
        import diffusers.models.autoencoders.vae as vae_mod
        orig = vae_mod.randn_tensor
        vae_mod.randn_tensor = lambda shape, **kw: eps[None].to(kw.get("device"), kw.get("dtype"))
        try:
            sample = dist.sample(gen)
        finally:
            vae_mod.randn_tensor = orig
        mode = dist.mode()
        sh, sc = vae.config.shift_factor, vae.config.scaling_factor
        out["encode_noise"] = eps
        out["enc_mean"] = dist.mean[0].float()
        out["enc_logvar"] = dist.logvar[0].float()
        out["image_latents"] = ((sample - sh) * sc)[0].float()
        out["image_latents_argmax"] = ((mode - sh) * sc)[0].float()
    meta = {"mode": a.mode, "image": os.path.basename(a.image), "height": H, "width": W, "seed": a.seed,
            "precision": a.precision, "device": a.device, "versions": json.dumps(versions())}
    write_safetensors(a.output, {k: v.cpu().contiguous() for k, v in out.items()}, meta)
    print(f"wrote {a.output}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in sorted(out.items())))


if __name__ == "__main__":
    main()
