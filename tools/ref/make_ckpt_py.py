#!/usr/bin/env python3
"""Write a random-weight Z-Image-Turbo checkpoint with diffusers/transformers `save_pretrained`.

This is the Python twin of `bin/mkmodel` (the C tool that tests use): it exists so the
oracle can be developed before mkmodel lands, and so mkmodel's folder layout can be diffed
against what the reference libraries themselves write. Weights are NOT the same as
mkmodel's for the same seed (different generators); only the layout/configs are comparable.

    tools/ref/make_ckpt_py.py --config tiny --seed 1 --dtype bf16 -o /tmp/tiny-py
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER_DIR = os.path.join(REPO, "tests", "data", "qwen3-tokenizer")

CONFIGS = {
    "tiny": dict(
        dit=dict(dim=256, n_heads=2, n_kv_heads=2, n_layers=2, n_refiner_layers=2, cap_feat_dim=32),
        qwen=dict(hidden_size=32, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=128),
        vae_blocks=[32, 64, 64, 64], vae_layers=1,
    ),
    "full": dict(
        dit=dict(dim=3840, n_heads=30, n_kv_heads=30, n_layers=30, n_refiner_layers=2, cap_feat_dim=2560),
        qwen=dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                  num_key_value_heads=8, head_dim=128),
        vae_blocks=[128, 256, 512, 512], vae_layers=2,
    ),
}


def randomize(module, gen):
    """Non-degenerate random weights: matrices ~ N(0, 1/fan_in), norm gains ~ 1 + 0.1 N, biases/pad tokens ~ 0.02 N.
    (Default inits zero some tensors, e.g. pad tokens, which would hide bugs.)"""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                v = torch.randn(p.shape, generator=gen) / math.sqrt(fan_in)
            elif "norm" in name and name.endswith("weight"):
                v = 1.0 + 0.1 * torch.randn(p.shape, generator=gen)
            else:
                v = 0.02 * torch.randn(p.shape, generator=gen)
            if name.endswith("pad_token"):
                v = torch.randn(p.shape, generator=gen)
            p.copy_(v.to(p.dtype))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="bf16",
                    help="dtype of the transformer/VAE/text encoder files")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()

    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    c = CONFIGS[a.config]
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    gen = torch.Generator("cpu").manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    dit = ZImageTransformer2DModel(all_patch_size=[2], all_f_patch_size=[1], in_channels=16, norm_eps=1e-5,
                                   qk_norm=True, rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48],
                                   axes_lens=[1536, 512, 512], **c["dit"])
    randomize(dit, gen)
    dit.to(dt).save_pretrained(os.path.join(a.out, "transformer"))

    # Qwen3ForCausalLM with tied embeddings: keys are "model.*", no lm_head in the file (as Qwen3-4B).
    qcfg = Qwen3Config(vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True,
                       max_position_embeddings=40960, hidden_act="silu", attention_bias=False,
                       bos_token_id=151643, eos_token_id=151645, **c["qwen"])
    qcfg.rope_parameters = {"rope_type": "default", "rope_theta": 1e6} if hasattr(qcfg, "rope_parameters") else None
    te = Qwen3ForCausalLM(qcfg)
    randomize(te.model, gen)
    te.tie_weights()
    te.to(dt).save_pretrained(os.path.join(a.out, "text_encoder"))

    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=c["vae_blocks"],
                        layers_per_block=c["vae_layers"], act_fn="silu", latent_channels=16, norm_num_groups=32,
                        sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159, force_upcast=True,
                        use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True)
    randomize(vae, gen)
    vae.to(dt).save_pretrained(os.path.join(a.out, "vae"))

    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False) \
        .save_pretrained(os.path.join(a.out, "scheduler"))

    tokdir = os.path.join(a.out, "tokenizer")
    os.makedirs(tokdir, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOKENIZER_DIR, f), tokdir)

    with open(os.path.join(a.out, "model_index.json"), "w") as f:
        json.dump({"_class_name": "ZImagePipeline", "_diffusers_version": "0.36.0.dev0",
                   "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                   "text_encoder": ["transformers", "Qwen3Model"],
                   "tokenizer": ["transformers", "Qwen2Tokenizer"],
                   "transformer": ["diffusers", "ZImageTransformer2DModel"],
                   "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
