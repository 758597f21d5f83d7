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
  encode      init_image [3,H,W] (the preprocessed image), encode_noise [16,h,w], enc_mean, enc_logvar
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
from ref_pipeline import (Recorder, check_loaded_from_files, load_pipeline, set_precision_flags,  # noqa: E402
                          versions, write_safetensors)


def load_vae(model_dir, dtype, device):
    from diffusers import AutoencoderKL
    vae = AutoencoderKL.from_pretrained(os.path.join(model_dir, "vae"), torch_dtype=dtype)
    check_loaded_from_files(vae, os.path.join(model_dir, "vae"))
    return vae.eval().to(device)


def cpu_randn(gen, shape):
    from diffusers.utils.torch_utils import randn_tensor
    return randn_tensor((1,) + tuple(shape), generator=gen, device=torch.device("cpu"), dtype=torch.float32)[0]


class Randn:
    """Hands the pipelines our random numbers: `randn_tensor` of the VAE module (the posterior sample)
    returns eps, that of the pipeline module (the initial noise) returns noise."""

    def __init__(self, pipe_module, eps, noise):
        import diffusers.models.autoencoders.vae as vae_mod
        self.mods = [(vae_mod, vae_mod.randn_tensor), (pipe_module, pipe_module.randn_tensor)]
        vae_mod.randn_tensor = lambda shape, **kw: eps[None].to(kw.get("device"), kw.get("dtype"))
        pipe_module.randn_tensor = lambda shape, **kw: noise[None].to(kw.get("device"), kw.get("dtype"))

    def restore(self):
        for m, f in self.mods:
            m.randn_tensor = f


def run_pipeline(a, dtype, base=None):
    """img2img / inpaint through diffusers' own pipeline classes (base: a ZImagePipeline already loaded,
    whose components are reused; None: load --model)."""
    import diffusers.pipelines.z_image.pipeline_z_image_img2img as m_i2i
    import diffusers.pipelines.z_image.pipeline_z_image_inpaint as m_inp
    from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline
    from diffusers.utils import load_image

    if base is None:
        base = load_pipeline(a.model, dtype, a.device)
        check_loaded_from_files(base.vae, os.path.join(a.model, "vae"))  # the encoder too
    cls, mod = (ZImageImg2ImgPipeline, m_i2i) if a.mode == "img2img" else (ZImageInpaintPipeline, m_inp)
    pipe = cls(**base.components)
    pipe.set_progress_bar_config(disable=True)
    image = load_image(a.image)
    mask = load_image(a.mask) if a.mode == "inpaint" else None
    # the output size the pipeline will take (the image's, rounded down to 16, unless given)
    H, W = pipe.image_processor.preprocess(image, a.height, a.width).shape[-2:]
    factor = pipe.vae_scale_factor
    C = pipe.transformer.config.in_channels
    gen = torch.Generator("cpu").manual_seed(a.seed)
    eps = cpu_randn(gen, (C, H // factor, W // factor))  # as the pipelines: the posterior sample first,
    noise = cpu_randn(gen, (C, H // factor, W // factor))  # then the initial noise
    rec = Recorder(pipe)
    got = {}
    sched_scale = pipe.scheduler.scale_noise

    def scale_noise(sample, timestep, noise_):
        out = sched_scale(sample, timestep, noise_)
        if "init_latents" not in got:  # the first call: img2img's start
            got["image_latents"] = sample[0].detach().float().cpu().clone()
            got["init_latents"] = out[0].detach().float().cpu().clone()
        return out
    pipe.scheduler.scale_noise = scale_noise
    if a.mode == "inpaint":
        pml = pipe.prepare_mask_latents

        def prepare_mask_latents(*args, **kw):
            m, mil = pml(*args, **kw)
            got["mask_latent"] = m[0, 0].detach().float().cpu().clone()
            return m, mil
        pipe.prepare_mask_latents = prepare_mask_latents
    rnd = Randn(mod, eps, noise)
    kw = dict(prompt=a.prompt, image=image, num_inference_steps=a.steps, guidance_scale=0.0, height=a.height,
              width=a.width, generator=torch.Generator("cpu").manual_seed(a.seed), output_type="pil",
              callback_on_step_end=rec.step_end, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"])
    if a.strength is not None:
        kw["strength"] = a.strength
    if mask is not None:
        kw["mask_image"] = mask
    try:
        with torch.no_grad():
            out = pipe(**kw)
    finally:
        rnd.restore()
        rec.remove()
        del pipe.scheduler.scale_noise  # the scheduler may serve the next run
    img = np.asarray(out.images[0])
    t = {"ids": rec.ids.to(torch.int64), "cap_feats": rec.cap_feats, "noise": noise, "encode_noise": eps,
         "sigmas": pipe.scheduler.sigmas.detach().float().cpu(), "timesteps": pipe.scheduler.timesteps.float().cpu(),
         "t_model": torch.stack(rec.t_model), "dit_out_0": rec.dit_out_0, "decoded": rec.decoded,
         "image": torch.from_numpy(img.copy())}
    for i, x in enumerate(rec.latents):
        t[f"latents_{i + 1}"] = x
    t.update(got)
    meta = {"mode": a.mode, "prompt": a.prompt, "image_file": os.path.basename(a.image), "height": H, "width": W,
            "steps": a.steps, "strength": kw.get("strength", "default"), "seed": a.seed, "precision": a.precision,
            "device": a.device, "evaluations": len(rec.latents), "versions": json.dumps(versions())}
    if mask is not None:
        meta["mask_file"] = os.path.basename(a.mask)
    write_safetensors(a.output, {k: v.cpu().contiguous() for k, v in t.items()}, meta)
    print(f"wrote {a.output}: {len(rec.latents)} evaluations, " + ", ".join(sorted(t)))


def load_controlnet(path, dtype, device):
    from diffusers import ZImageControlNetModel
    controlnet = ZImageControlNetModel.from_pretrained(path, torch_dtype=dtype)
    check_loaded_from_files(controlnet, path)
    return controlnet.eval().to(device)


def run_control(a, dtype, base=None, controlnet=None):
    """ControlNet / ControlNet inpainting through diffusers' ZImageControlNetPipeline /
    ZImageControlNetInpaintPipeline with the ZImageControlNetModel folder --control-model (base,
    controlnet: already loaded, reused; None: loaded here)."""
    from diffusers import ZImageControlNetInpaintPipeline, ZImageControlNetPipeline
    from diffusers.utils import load_image

    if base is None:
        base = load_pipeline(a.model, dtype, a.device)
        check_loaded_from_files(base.vae, os.path.join(a.model, "vae"))  # the encoder too
    if controlnet is None:
        controlnet = load_controlnet(a.control_model, dtype, a.device)
    inpaint = a.mode == "control_inpaint"
    cls = ZImageControlNetInpaintPipeline if inpaint else ZImageControlNetPipeline
    pipe = cls(**base.components, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    H, W = a.height or 1024, a.width or 1024  # the pipelines' defaults
    factor = pipe.vae_scale_factor
    C = pipe.transformer.config.in_channels
    # the one draw of these pipelines (the encodings take the posterior's mode): the initial noise
    noise = cpu_randn(torch.Generator("cpu").manual_seed(a.seed), (C, H // factor, W // factor))
    rec = Recorder(pipe)
    got = {}

    def cn_hook(mod, args, kwargs, out):
        if "control_latents" not in got:
            ctx = kwargs.get("control_context", args[3] if len(args) > 3 else None)
            got["control_latents"] = ctx[0][:, 0].detach().float().cpu().clone()  # [C_in, 1, h, w] -> [C_in, h, w]
            first = min(out)
            got["hints_0"] = out[first][0].detach().float().cpu().clone()  # the first place's hint, scaled
    h = pipe.controlnet.register_forward_hook(cn_hook, with_kwargs=True)
    kw = dict(prompt=a.prompt, control_image=load_image(a.control), num_inference_steps=a.steps, guidance_scale=0.0,
              height=H, width=W, latents=noise[None].to(a.device), controlnet_conditioning_scale=a.control_scale,
              output_type="pil", callback_on_step_end=rec.step_end,
              callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"])
    if inpaint:
        kw["image"] = load_image(a.image)
        kw["mask_image"] = load_image(a.mask)
    try:
        with torch.no_grad():
            out = pipe(**kw)
    finally:
        h.remove()
        rec.remove()
    img = np.asarray(out.images[0])
    t = {"ids": rec.ids.to(torch.int64), "cap_feats": rec.cap_feats, "noise": noise,
         "sigmas": pipe.scheduler.sigmas.detach().float().cpu(), "timesteps": pipe.scheduler.timesteps.float().cpu(),
         "t_model": torch.stack(rec.t_model), "dit_out_0": rec.dit_out_0, "decoded": rec.decoded,
         "image": torch.from_numpy(img.copy())}
    for i, x in enumerate(rec.latents):
        t[f"latents_{i + 1}"] = x
    t.update(got)
    cfg = dict(pipe.controlnet.config)
    meta = {"mode": a.mode, "prompt": a.prompt, "control_file": os.path.basename(a.control), "height": H, "width": W,
            "steps": a.steps, "control_scale": a.control_scale, "seed": a.seed, "precision": a.precision,
            "device": a.device, "evaluations": len(rec.latents), "versions": json.dumps(versions()),
            "controlnet": json.dumps({k: cfg[k] for k in ("control_layers_places", "control_refiner_layers_places",
                                                          "control_in_dim", "add_control_noise_refiner")})}
    if inpaint:
        meta["image_file"] = os.path.basename(a.image)
        meta["mask_file"] = os.path.basename(a.mask)
    write_safetensors(a.output, {k: v.cpu().contiguous() for k, v in t.items()}, meta)
    print(f"wrote {a.output}: {len(rec.latents)} evaluations, " + ", ".join(sorted(t)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["encode", "img2img", "inpaint", "control", "control_inpaint"])
    ap.add_argument("--prompt", default="a cat")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--strength", type=float, default=None, help="img2img/inpaint (default: the pipeline's)")
    ap.add_argument("--mask", help="inpaint: the mask image file")
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", help="the input image file (PNG/JPEG); not for control")
    ap.add_argument("--control", help="control, control_inpaint: the control image file")
    ap.add_argument("--control-model", help="control, control_inpaint: a ZImageControlNetModel folder")
    ap.add_argument("--control-scale", type=float, default=0.75, help="controlnet_conditioning_scale (0.75)")
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
    if a.mode in ("control", "control_inpaint"):
        if not a.control or not a.control_model or (a.mode == "control_inpaint" and not (a.image and a.mask)):
            ap.error("control needs --control and --control-model; control_inpaint also --image and --mask")
        return run_control(a, dtype)
    if not a.image:
        ap.error(f"{a.mode} needs --image")
    if a.mode in ("img2img", "inpaint"):
        return run_pipeline(a, dtype)
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
    out = {"init_image": image[0]}
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
