#!/usr/bin/env python3
"""Reference (oracle) run of the Z-Image-Turbo pipeline with diffusers + transformers.

Loads a checkpoint directory in the Hugging Face snapshot layout (transformer/, vae/,
text_encoder/, tokenizer/, scheduler/), runs diffusers' own ZImagePipeline the way Turbo is
used (guidance 0, N = 8 steps by default, the pipeline's default sigmas), and writes every
intermediate to one safetensors file (see FORMAT below). The pipeline code is not re-written:
the script hands the pipeline its components, the initial noise (`latents=`) and, for explicit
token ids only, the caption features (`prompt_embeds=`), and records what flows through it with
module hooks and the step-end callback.

FORMAT of the output file (all tensors batch-free, C order):
  ids        I64 [L]          token ids of the formatted prompt actually fed (valid tokens only)
  cap_feats  F32 [L, hidden]  text encoder hidden_states[-2] of the valid tokens (bf16 run: exact upcast)
  noise      F32 [16, H/8, W/8] initial latents (sigma 0 = 1)
  sigmas     F32 [N+1]        scheduler sigmas, terminal 0 included
  timesteps  F32 [N]          scheduler timesteps (sigma * 1000)
  t_model    F32 [N]          the `t` actually passed to the transformer at each step ((1000 - t)/1000)
  dit_out_0  F32 [16, H/8, W/8] raw transformer output of step 0 (before the pipeline negates it)
  latents_1 .. latents_N  F32 [16, H/8, W/8]  latents after each Euler step
  decoded    F32 [3, H, W]    VAE decoder output, before the [-1,1] -> uint8 mapping
  image      U8  [H, W, 3]    final RGB image as the pipeline returns it (PIL -> numpy)
  __metadata__: prompt, size, steps, precision, device, library versions.

Initial noise: --noise FILE, or --seed N drawn as the pipeline draws it (randn_tensor with
torch.Generator(--noise-device).manual_seed(N)) and passed as `latents=`; with --pipeline-generator the
generator itself is passed (`generator=`, no latents) and the latents the pipeline's own prepare_latents
returns are recorded as "noise" (what zturbo's --rng torch-cpu must reproduce bit for bit).

Noise file (--noise): a safetensors file with one F32 tensor "noise" [16, H/8, W/8] (a leading
batch dim of 1 is accepted), or raw little-endian F32 of exactly 16*(H/8)*(W/8) values.

Examples:
  ref_pipeline.py --model CKPT --prompt "a cat" --height 64 --width 64 --seed 0 \
                  --precision f32 --device cpu -o /tmp/cat.safetensors
  ref_pipeline.py --model CKPT --prompt "a cat" --height 1024 --width 1024 --precision bf16 \
                  --device cuda --timing [--offload group]
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch

# Spec §6.3 table, N = 8 (official scheduler, verified on CUDA); the oracle must reproduce these bits.
SPEC_SIGMAS_N8 = ["3f800000", "3f745d17", "3f666666", "3f555555", "3f400000", "3f249249", "3f000000",
                  "3e99999a", "00000000"]
SPEC_T_MODEL_N8 = ["00000000", "3d3a2e98", "3dcccccd", "3e2aaaad", "3e800000", "3eb6db6f", "3f000000",
                   "3f333334"]


def f32_hex(x):
    return struct.pack(">f", float(x)).hex()


def versions():
    import diffusers
    import transformers
    import safetensors
    return {"torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0]}


ST_DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.uint8: "U8", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, metadata=None):
    """Byte-deterministic safetensors writer: header keys sorted, tensors in name order, header padded with
    spaces to 8 bytes. (safetensors.torch.save_file orders the metadata map randomly from run to run.)"""
    names = sorted(tensors)
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    for k in names:
        x = tensors[k].detach().cpu().contiguous()
        raw = x.view(torch.uint8).numpy().tobytes() if x.dtype == torch.bfloat16 else x.numpy().tobytes()
        header[k] = {"dtype": ST_DTYPES[x.dtype], "shape": list(x.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def set_precision_flags(precision, device):
    if precision.startswith("fp16"):
        # f16 GEMMs accumulate in f32 (as zturbo's): no reduced-precision split-K reductions; its f32
        # parts (F32OutLinear, the f32 VAE) without TF32.
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    if precision in ("f32", "fp16"):
        # The golden reference: true F32 everywhere, no TF32 in matmuls or cuDNN convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    if device == "cpu":
        torch.use_deterministic_algorithms(True)


def file_tensor_names(folder):
    """Tensor names stored in every *.safetensors file of a component folder (headers only)."""
    names = set()
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with open(os.path.join(folder, f), "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                names.update(k for k in json.loads(fh.read(n)) if k != "__metadata__")
    return names


def check_loaded_from_files(module, folder, needed=lambda k: True):
    """Refuse to run if a parameter the run uses was not in the files (the libraries would silently
    random-initialise it). Text-encoder files may carry the "model." prefix of Qwen3ForCausalLM."""
    names = file_tensor_names(folder)
    missing = [k for k in module.state_dict() if needed(k) and k not in names and "model." + k not in names]
    if missing:
        sys.exit(f"{folder}: {len(missing)} tensors the model needs are not in the files, e.g. {missing[:4]}")


def load_pipeline(model_dir, dtype, device, offload=None, te_attn=None, vae_dtype=None):
    """Components loaded separately (as the task asks), assembled into diffusers' ZImagePipeline."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import AutoTokenizer, Qwen3Model

    sub = lambda s: os.path.join(model_dir, s)
    transformer = ZImageTransformer2DModel.from_pretrained(sub("transformer"), torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(sub("vae"), torch_dtype=vae_dtype or dtype)
    te_kw = {"attn_implementation": te_attn} if te_attn else {}
    text_encoder = Qwen3Model.from_pretrained(sub("text_encoder"), dtype=dtype, **te_kw)
    tokenizer = AutoTokenizer.from_pretrained(sub("tokenizer"))
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(sub("scheduler"))
    check_loaded_from_files(transformer, sub("transformer"))
    check_loaded_from_files(text_encoder, sub("text_encoder"))
    # only the decoder side of the VAE is used (a checkpoint may omit the encoder)
    check_loaded_from_files(vae, sub("vae"), lambda k: k.startswith(("decoder.", "post_quant_conv.")))
    for m in (transformer, vae, text_encoder):
        m.eval()
    text_encoder.to(device)
    vae.to(device)
    if offload == "group":
        # diffusers' block-level group offload with stream prefetch: weights stay in (pinned) host
        # memory, one block group is onloaded ahead of use on a side stream.
        transformer.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                         offload_type="block_level", num_blocks_per_group=1,
                                         use_stream=(device == "cuda"))
    else:
        transformer.to(device)
    pipe = ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------ the fp16 path's guards

class F32OutLinear(torch.nn.Module):
    """A Linear with fp16 weights whose output stays float32: the same products (f16 x f16 is exact
    in f32) accumulated in f32, without the final rounding to f16 (zturbo's fp16 GEMMs into f32)."""

    def __init__(self, lin, scale=1.0):
        super().__init__()
        self.lin, self.scale = lin, scale

    def forward(self, x):
        b = self.lin.bias.float() if self.lin.bias is not None else None
        y = torch.nn.functional.linear(x.to(self.lin.weight.dtype).float(), self.lin.weight.float())
        if self.scale != 1.0:
            y = y * self.scale
        return y + b if b is not None else y


class ToDtype(torch.nn.Module):
    """Runs a module, then casts its output(s) to dtype (or float32 for "f32")."""

    def __init__(self, mod, dtype):
        super().__init__()
        self.mod, self.dtype = mod, dtype

    def forward(self, *args, **kwargs):
        out = self.mod(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.to(self.dtype) for o in out)
        return out.to(self.dtype)


def clamp_fp16(x):
    """ComfyUI's clamp_fp16 (also SD.Next, SimpleTuner): NaN -> 0, +-Inf -> +-65504."""
    return torch.nan_to_num(x, nan=0.0, posinf=65504.0, neginf=-65504.0)


SWIGLU_SCALE = 32.0  # kernels/ops.h ZT_F16_SWIGLU_SCALE


def swiglu_guarded(gate, up):
    """zturbo's guarded f16 SwiGLU: silu(gate) * (up / 32) (ComfyUI's fp16 path divides w3 x by 32),
    clamped; the down-projection multiplies by 32 again in f32 (F32OutLinear scale)."""
    return clamp_fp16(torch.nn.functional.silu(gate) * (up / SWIGLU_SCALE))


def patch_fp16_guards(pipe, guarded=True):
    """zturbo's fp16 path (models/precision.h) patched into diffusers' Z-Image transformer and
    transformers' Qwen3, so that the fp16 oracle rounds where the engine rounds:
      * residual streams in float32: the DiT's token stream (x_embedder and cap_embedder outputs,
        blocks) and Qwen3's hidden state (embeddings upcast);
      * sub-layer outputs in float32: the attention out-projection and the feed-forward
        down-projection (DiT to_out / w2, Qwen3 o_proj / down_proj), so they cannot overflow;
      * the SiLU gate silu(w1 x) * (w3 x), the third known overflow point, computed as
        silu(w1 x) * (w3 x / 32) and clamped by clamp_fp16; the down-projection multiplies by 32;
      * norms with a float32 input round their output to f16 before the weight (the norm's
        weight dtype), the DiT's final LayerNorm output rounded to f16 before its scale;
      * Qwen3's RoPE cos/sin rounded to f16 (what the model dtype gives unpatched).
    guarded=False patches nothing: plain fp16 (diffusers as is, everything f16)."""
    if not guarded:
        return
    import diffusers.models.transformers.transformer_z_image as zi
    from transformers.models.qwen3 import modeling_qwen3 as q3
    half = torch.float16
    tr = pipe.transformer
    for k in list(tr.all_x_embedder.keys()):
        tr.all_x_embedder[k] = F32OutLinear(tr.all_x_embedder[k])
    tr.cap_embedder[1] = F32OutLinear(tr.cap_embedder[1])
    for blk in list(tr.noise_refiner) + list(tr.context_refiner) + list(tr.layers):
        blk.attention.to_out[0] = F32OutLinear(blk.attention.to_out[0])
        blk.feed_forward.w2 = F32OutLinear(blk.feed_forward.w2, SWIGLU_SCALE)
    for k in list(tr.all_final_layer.keys()):
        fl = tr.all_final_layer[k]
        fl.norm_final = ToDtype(fl.norm_final, half)
    zi.FeedForward._forward_silu_gating = lambda self, x1, x3: swiglu_guarded(x1, x3)

    te = pipe.text_encoder
    te.embed_tokens = ToDtype(te.embed_tokens, torch.float32)
    te.rotary_emb = ToDtype(te.rotary_emb, half)
    for ly in te.layers:
        ly.self_attn.o_proj = F32OutLinear(ly.self_attn.o_proj)
        ly.mlp.down_proj = F32OutLinear(ly.mlp.down_proj, SWIGLU_SCALE)

    def mlp_forward(self, x):
        return self.down_proj(swiglu_guarded(self.gate_proj(x), self.up_proj(x)))

    def rms_forward(self, x):  # f32 input: the normalised value rounded to the weight's dtype first
        xf = x.to(torch.float32)
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * xf.to(self.weight.dtype)

    q3.Qwen3MLP.forward = mlp_forward
    q3.Qwen3RMSNorm.forward = rms_forward


def apply_loras(pipe, specs, round_bf16):
    """diffusers' own LoRA path: load_lora_weights per file (its converter handles kohya / ComfyUI /
    ai-toolkit layouts), set_adapters with the strengths, fuse_lora into the transformer weights (in the
    weights' dtype), unload the adapter layers. round_bf16 (f32 runs): round the fused weights to bf16
    afterwards, as an engine that stores bf16 weights merges them once (the CI goldens)."""
    names, weights = [], []
    for i, spec in enumerate(specs):
        path, scale = spec, 1.0
        if ":" in spec:
            head, tail = spec.rsplit(":", 1)
            try:
                path, scale = head, float(tail)
            except ValueError:
                pass
        names.append(f"lora{i}")
        weights.append(scale)
        pipe.load_lora_weights(path, adapter_name=names[-1])
    pipe.set_adapters(names, adapter_weights=weights)
    pipe.fuse_lora(components=["transformer"], adapter_names=names, lora_scale=1.0)
    pipe.unload_lora_weights()
    if round_bf16:
        with torch.no_grad():
            for prm in pipe.transformer.parameters():
                prm.copy_(prm.to(torch.bfloat16).to(prm.dtype))


def read_noise(path, shape):
    """shape = (16, Hl, Wl). Returns a F32 CPU tensor of that shape."""
    n = int(np.prod(shape))
    with open(path, "rb") as f:
        head = f.read(8)
    size = os.path.getsize(path)
    if size == 4 * n:
        arr = np.fromfile(path, dtype="<f4").reshape(shape)
        return torch.from_numpy(arr.copy())
    from safetensors.torch import load_file
    if len(head) == 8 and 8 + struct.unpack("<Q", head)[0] <= size:
        t = load_file(path)
        if "noise" not in t:
            sys.exit(f"{path}: no tensor named 'noise' (has {sorted(t)})")
        x = t["noise"]
        if x.dtype != torch.float32:
            sys.exit(f"{path}: 'noise' is {x.dtype}, expected float32")
        if tuple(x.shape) == (1,) + tuple(shape):
            x = x[0]
        if tuple(x.shape) != tuple(shape):
            sys.exit(f"{path}: 'noise' has shape {list(x.shape)}, expected {list(shape)}")
        return x.contiguous()
    sys.exit(f"{path}: neither a safetensors file nor {4 * n} bytes of raw f32 for shape {list(shape)}")


def make_noise(seed, shape, noise_device, device):
    """What ZImagePipeline.prepare_latents does when no latents are given (diffusers' randn_tensor)."""
    from diffusers.utils.torch_utils import randn_tensor
    gen = torch.Generator(noise_device).manual_seed(seed)
    x = randn_tensor((1,) + tuple(shape), generator=gen, device=torch.device(device), dtype=torch.float32)
    return x[0].cpu()


def encode_ids(pipe, ids, device, max_sequence_length=512):
    """Caption features for explicit token ids. RE-IMPLEMENTS ZImagePipeline._encode_prompt after its
    tokenizer call (which only accepts text): right-pad with the pad token to max_sequence_length,
    boolean attention mask, hidden_states[-2], keep the valid rows."""
    ids = ids[:max_sequence_length]
    pad = pipe.tokenizer.pad_token_id
    input_ids = torch.full((1, max_sequence_length), pad, dtype=torch.long)
    input_ids[0, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    mask = torch.zeros((1, max_sequence_length), dtype=torch.bool)
    mask[0, :len(ids)] = True
    input_ids, mask = input_ids.to(device), mask.to(device)
    with torch.no_grad():
        hs = pipe.text_encoder(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[-2]
    return hs[0][mask[0]], input_ids[0][mask[0]].cpu()


class Recorder:
    """Hooks on the pipeline's modules + the step-end callback; nothing here changes the computation."""

    def __init__(self, pipe):
        self.ids = None
        self.cap_feats = None
        self.t_model = []
        self.dit_out_0 = None
        self.latents = []
        self.decoded = None
        self.handles = [
            pipe.text_encoder.register_forward_pre_hook(self._te_pre, with_kwargs=True),
            pipe.transformer.register_forward_hook(self._dit, with_kwargs=True),
            pipe.vae.decoder.register_forward_hook(self._vae),
        ]

    def _te_pre(self, mod, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        self.ids = ids[0][mask[0].bool()].detach().cpu().clone()

    def _dit(self, mod, args, kwargs, out):
        t = kwargs.get("t", args[1] if len(args) > 1 else None)
        self.t_model.append(t.detach().float().cpu().reshape(-1)[0].clone())
        if self.dit_out_0 is None:
            x = out[0] if isinstance(out, tuple) else out.sample
            self.dit_out_0 = x[0].detach().float().cpu()[:, 0].clone()  # [16, 1, Hl, Wl] -> [16, Hl, Wl]

    def _vae(self, mod, args, out):
        self.decoded = out.detach().float().cpu()[0].clone()

    def step_end(self, pipe, i, t, kw):
        self.latents.append(kw["latents"].detach().float().cpu()[0].clone())
        if i == 0 and "prompt_embeds" in kw:
            self.cap_feats = kw["prompt_embeds"][0].detach().float().cpu().clone()
        return {}

    def remove(self):
        for h in self.handles:
            h.remove()


def run_reference(pipe, a, device, noise):
    rec = Recorder(pipe)
    kwargs = dict(height=a.height, width=a.width, num_inference_steps=a.steps, guidance_scale=0.0,
                  output_type="pil", max_sequence_length=a.max_seq_len,
                  callback_on_step_end=rec.step_end, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"])
    drawn = []
    if noise is None:  # --pipeline-generator: the pipeline draws the latents itself; record what it drew
        kwargs["generator"] = torch.Generator(a.noise_device).manual_seed(a.seed)
        prepare = pipe.prepare_latents

        def recording_prepare(*args, **kw):
            x = prepare(*args, **kw)
            drawn.append(x[0].detach().float().cpu().clone())
            return x
        pipe.prepare_latents = recording_prepare
    else:
        kwargs["latents"] = noise[None].to(device)
    if a.ids is not None:
        cap, ids = encode_ids(pipe, a.ids, device, a.max_seq_len)
        rec.ids = ids
        out = pipe(prompt=None, prompt_embeds=[cap], **kwargs)
    else:
        out = pipe(prompt=a.prompt, **kwargs)
    rec.remove()
    if noise is None:
        pipe.prepare_latents = prepare
        assert len(drawn) == 1, len(drawn)
        noise = drawn[0]
    image = np.asarray(out.images[0])  # PIL RGB -> [H, W, 3] uint8
    assert image.dtype == np.uint8 and image.shape == (a.height, a.width, 3), image.shape
    assert len(rec.latents) == a.steps and len(rec.t_model) == a.steps

    t = {
        "ids": rec.ids.to(torch.int64),
        "cap_feats": rec.cap_feats,
        "noise": noise.float(),
        "sigmas": pipe.scheduler.sigmas.detach().float().cpu(),
        "timesteps": pipe.scheduler.timesteps.detach().float().cpu(),
        "t_model": torch.stack(rec.t_model),
        "dit_out_0": rec.dit_out_0,
        "decoded": rec.decoded,
        "image": torch.from_numpy(image.copy()),
    }
    for i, x in enumerate(rec.latents):
        t[f"latents_{i + 1}"] = x
    return {k: v.contiguous() for k, v in t.items()}


def check_schedule(t, steps):
    if steps != 8:
        return
    got = [f32_hex(x) for x in t["sigmas"].tolist()]
    if got != SPEC_SIGMAS_N8:
        print(f"WARNING: sigmas differ from spec §6.3: {got}", file=sys.stderr)
    got = [f32_hex(x) for x in t["t_model"].tolist()]
    if got != SPEC_T_MODEL_N8:
        diff = [(i, g, s) for i, (g, s) in enumerate(zip(got, SPEC_T_MODEL_N8)) if g != s]
        print(f"note: t_model differs from spec §6.4 (CUDA reciprocal-multiply bits) at (step, got, spec) {diff}",
              file=sys.stderr)


# ----------------------------------------------------------------------------------------------- timing

def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    sync(device)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def mem_snapshot(device):
    if device != "cuda":
        return {}
    free, total = torch.cuda.mem_get_info()
    m = {"max_allocated_MiB": torch.cuda.max_memory_allocated() / 2**20,
         "max_reserved_MiB": torch.cuda.max_memory_reserved() / 2**20,
         "device_used_MiB": (total - free) / 2**20}
    try:  # NVML sees the whole process (context, cuBLAS workspaces), not only the caching allocator
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        m["nvml_used_MiB"] = pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20
    except Exception:
        pass
    return {k: round(v, 1) for k, v in m.items()}


def reset_peak(device):
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def run_timing(pipe, a, device, noise, load_s):
    from diffusers import ZImagePipeline  # noqa: F401  (pipeline already built)
    res = {"what": "ref_pipeline timing", "device": device, "precision": a.precision, "offload": a.offload,
           "height": a.height, "width": a.width, "steps": a.steps, "repeat": a.repeat, "load_s": round(load_s, 3)}
    if device == "cuda":
        res["gpu"] = torch.cuda.get_device_name()
    res.update(versions())

    with torch.no_grad():
        # text encoder (the pipeline's own encode_prompt: tokenizer + Qwen3 padded to 512)
        reset_peak(device)
        enc = lambda: pipe.encode_prompt(a.prompt, device=torch.device(device), do_classifier_free_guidance=False,
                                         max_sequence_length=a.max_seq_len)
        s, _ = timed(enc, device, a.repeat)
        cap = enc()[0]
        res["text_encoder_s"] = round(s, 4)
        res["caption_tokens"] = int(cap[0].shape[0])
        res["mem_text_encoder"] = mem_snapshot(device)

        # one DiT evaluation, called exactly as the pipeline calls it at step 0
        reset_peak(device)
        x = [noise[None].to(device).to(pipe.transformer.dtype).unsqueeze(2)[0]]
        tt = torch.zeros(1, device=device)
        dit = lambda: pipe.transformer(x, tt, cap, return_dict=False)
        s, ts = timed(dit, device, a.repeat, warmup=2)
        res["dit_eval_s"] = round(s, 4)
        res["dit_eval_all_s"] = [round(v, 4) for v in ts]
        res["mem_dit"] = mem_snapshot(device)

        # VAE decode of the (random) latent, as the pipeline does it
        reset_peak(device)
        z = noise[None].to(device).to(pipe.vae.dtype) / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
        s, _ = timed(lambda: pipe.vae.decode(z, return_dict=False)[0], device, a.repeat)
        res["vae_decode_s"] = round(s, 4)
        res["mem_vae"] = mem_snapshot(device)

    # end to end: prompt -> PIL image (noise from the generator, as a user would call it)
    reset_peak(device)
    gen = lambda: pipe(prompt=a.prompt, height=a.height, width=a.width, num_inference_steps=a.steps,
                       guidance_scale=0.0, latents=noise[None].to(device), output_type="pil",
                       max_sequence_length=a.max_seq_len)
    s, ts = timed(gen, device, max(1, a.repeat_e2e), warmup=1)
    res["end_to_end_s"] = round(s, 4)
    res["end_to_end_all_s"] = [round(v, 4) for v in ts]
    res["mem_end_to_end"] = mem_snapshot(device)
    print(json.dumps(res))


# ----------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint directory (HF snapshot layout)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--prompt", help="prompt text (chat template applied by the pipeline)")
    g.add_argument("--ids", help="comma-separated token ids of the already formatted prompt (bypasses the tokenizer)")
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--max-seq-len", type=int, default=512)
    n = ap.add_mutually_exclusive_group()
    n.add_argument("--noise", help="initial noise file (safetensors 'noise' F32 [16,H/8,W/8] or raw LE f32)")
    n.add_argument("--seed", type=int, help="generate the noise with torch.Generator(--noise-device).manual_seed")
    ap.add_argument("--noise-device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--pipeline-generator", action="store_true",
                    help="with --seed: pass the generator to the pipeline (no latents) and record the latents it draws")
    ap.add_argument("--save-noise", help="also write the noise alone to this safetensors file")
    ap.add_argument("--precision", choices=["f32", "bf16", "fp16", "fp16-plain"], default="f32",
                    help="fp16: the text encoder and the transformer in float16 with zturbo's fp16 guards patched in "
                         "(patch_fp16_guards), the VAE in float32 (--vae-precision); fp16-plain: float16 unpatched")
    ap.add_argument("--vae-precision", choices=["f32", "bf16", "fp16"],
                    help="VAE dtype (default: the --precision's; f32 for fp16)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    ap.add_argument("--attention-backend", help="transformer.set_attention_backend(NAME), e.g. flash, _native_flash")
    ap.add_argument("--te-attn", choices=["sdpa", "eager"],
                    help="the text encoder's attention (transformers attn_implementation); with --attention-backend "
                         "this runs the oracle a second way, to measure its own bf16 spread")
    ap.add_argument("--lora", action="append", default=[],
                    help="FILE[:SCALE], repeatable: load_lora_weights + set_adapters + fuse_lora (diffusers' LoRA path)")
    ap.add_argument("--lora-round-bf16", action="store_true",
                    help="with --lora in f32: round the fused transformer weights to bf16 (as zturbo merges them)")
    ap.add_argument("-o", "--out", help="output safetensors file (all intermediates)")
    ap.add_argument("--png", help="one plain pipeline call, the image saved as this PNG (a user's run, "
                    "for process-start-to-PNG timing next to ours)")
    ap.add_argument("--timing", action="store_true", help="time the parts and print one JSON line")
    ap.add_argument("--offload", choices=["none", "group"], default="none",
                    help="group: transformer.enable_group_offload(block_level, 1 block/group, use_stream)")
    ap.add_argument("--repeat", type=int, default=5, help="timing: runs per measurement (median)")
    ap.add_argument("--repeat-e2e", type=int, default=3, help="timing: end-to-end runs (median)")
    a = ap.parse_args()

    if a.prompt is None and a.ids is None:
        a.prompt = "a cat"
    if a.ids is not None:
        a.ids = [int(v) for v in a.ids.replace(" ", "").split(",") if v]
        if a.timing:
            sys.exit("--timing needs --prompt")
    if a.height % 16 or a.width % 16:
        sys.exit("height and width must be multiples of 16")
    if not a.out and not a.timing and not a.png:
        sys.exit("need -o OUT.safetensors (or --timing or --png)")
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device")
    if a.threads:
        torch.set_num_threads(a.threads)
    set_precision_flags(a.precision, a.device)
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp16-plain": torch.float16}
    dtype = dtypes[a.precision]
    vae_dtype = dtypes[a.vae_precision] if a.vae_precision else (torch.float32 if dtype == torch.float16 else dtype)
    shape = (16, a.height // 8, a.width // 8)
    if a.pipeline_generator and (a.seed is None or a.timing or a.png or a.save_noise):
        sys.exit("--pipeline-generator needs --seed and -o (not --timing, --png or --save-noise)")
    if a.noise:
        noise = read_noise(a.noise, shape)
    elif a.pipeline_generator:
        noise = None
    else:
        noise = make_noise(a.seed if a.seed is not None else 0, shape, a.noise_device, a.device)
    if a.save_noise:
        write_safetensors(a.save_noise, {"noise": noise})

    t0 = time.perf_counter()
    pipe = load_pipeline(a.model, dtype, a.device, a.offload if a.offload != "none" else None, a.te_attn, vae_dtype)
    if a.precision == "fp16":
        patch_fp16_guards(pipe)
    if a.attention_backend:
        pipe.transformer.set_attention_backend(a.attention_backend)
    if a.lora:
        t1 = time.perf_counter()
        apply_loras(pipe, a.lora, a.lora_round_bf16)
        print(json.dumps({"what": "ref_pipeline lora", "files": a.lora, "fuse_s": round(time.perf_counter() - t1, 3)}),
              file=sys.stderr)
    load_s = time.perf_counter() - t0

    if a.out:
        with torch.no_grad():
            t = run_reference(pipe, a, a.device, noise)
        check_schedule(t, a.steps)
        meta = {"prompt": a.prompt if a.prompt is not None else "", "ids_given": str(a.ids is not None).lower(),
                "height": str(a.height), "width": str(a.width), "steps": str(a.steps),
                "precision": a.precision, "vae_precision": str(vae_dtype).replace("torch.", ""),
                "device": a.device, "noise": a.noise and "file" or
                f"seed {a.seed if a.seed is not None else 0} on {a.noise_device}" +
                (" (the pipeline's generator)" if a.pipeline_generator else ""),
                "versions": json.dumps(versions(), sort_keys=True)}
        if a.lora:
            meta["loras"] = json.dumps([os.path.basename(x) for x in a.lora]) + \
                (" (fused weights rounded to bf16)" if a.lora_round_bf16 else "")
        if a.device == "cpu":  # CPU results depend (at the ulp level) on the thread count and the ISA path
            meta["cpu"] = f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
        write_safetensors(a.out, t, meta)
        print(f"{a.out}: {len(t)} tensors, L={t['ids'].numel()}, image {a.height}x{a.width}", file=sys.stderr)
    if a.png:
        with torch.no_grad():
            img = pipe(prompt=a.prompt, height=a.height, width=a.width, num_inference_steps=a.steps,
                       guidance_scale=0.0, latents=noise[None].to(a.device), output_type="pil",
                       max_sequence_length=a.max_seq_len).images[0]
        img.save(a.png)
        print(json.dumps({"what": "ref_pipeline png", "png": a.png, "offload": a.offload, "load_s": round(load_s, 3)}))
    if a.timing:
        run_timing(pipe, a, a.device, noise, load_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
