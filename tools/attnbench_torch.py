#!/usr/bin/env python3
"""tools/attnbench_torch.py — torch SDPA on the shapes of tools/attnbench.cu,
printed in the same format (median of CUDA-event timings after warm-up).
q/k/v are the same views as zturbo uses: column blocks of one fused QKV row
for the DiT, separate [s, heads*hd] tensors otherwise; GQA via enable_gqa.

usage: python3 tools/attnbench_torch.py [-c SUBSTRING]"""
import argparse
import math

import torch
import torch.nn.functional as F

CASES = [  # name, sq, sk, heads, kv_heads, hd, causal, fused
    ("dit_1024px_s4224", 4224, 4224, 30, 30, 128, 0, 1),
    ("dit_2048px_s16512", 16512, 16512, 30, 30, 128, 0, 1),
    ("dit_refiner_s128", 128, 128, 30, 30, 128, 0, 1),
    ("qwen_causal_s512", 512, 512, 32, 8, 128, 1, 0),
    ("qwen_causal_s100", 100, 100, 32, 8, 128, 1, 0),
    ("vae_1024px_hd512_s16384", 16384, 16384, 1, 1, 512, 0, 0),
    ("vae_2048px_hd512_s65536", 65536, 65536, 1, 1, 512, 0, 0),
    ("tiny_hd64_s4096_h8", 4096, 4096, 8, 8, 64, 0, 0),
]


def visible_pairs(sq, sk, causal):
    if not causal:
        return sq * sk
    return sum(max(0, min(sk, i + sk - sq + 1)) for i in range(sq))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", default=None)
    args = ap.parse_args()
    dev = torch.device("cuda")
    print(f"attnbench_torch: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    for name, sq, sk, h, kvh, hd, causal, fused in CASES:
        if args.c and args.c not in name:
            continue
        g = torch.Generator(device=dev).manual_seed(1)
        if fused:
            qkv = torch.randn(sq, 3 * h * hd, device=dev, dtype=torch.bfloat16, generator=g) * 1.5
            q = qkv[:, : h * hd].view(sq, h, hd).transpose(0, 1).unsqueeze(0)
            k = qkv[:, h * hd : 2 * h * hd].view(sk, h, hd).transpose(0, 1).unsqueeze(0)
            v = qkv[:, 2 * h * hd :].view(sk, h, hd).transpose(0, 1).unsqueeze(0)
        else:
            q = (torch.randn(sq, h * hd, device=dev, dtype=torch.bfloat16, generator=g) * 1.5).view(sq, h, hd).transpose(0, 1).unsqueeze(0)
            k = (torch.randn(sk, kvh * hd, device=dev, dtype=torch.bfloat16, generator=g) * 1.5).view(sk, kvh, hd).transpose(0, 1).unsqueeze(0)
            v = (torch.randn(sk, kvh * hd, device=dev, dtype=torch.bfloat16, generator=g) * 1.5).view(sk, kvh, hd).transpose(0, 1).unsqueeze(0)
        kw = dict(is_causal=bool(causal), scale=1.0 / math.sqrt(hd))
        if kvh != h:
            kw["enable_gqa"] = True

        def run():
            return F.scaled_dot_product_attention(q, k, v, **kw)

        try:
            run()
            torch.cuda.synchronize()
        except Exception as ex:  # e.g. out of memory for the math backend
            print(f"{name:<26} {'torch_sdpa':<22} failed: {type(ex).__name__}")
            torch.cuda.empty_cache()
            continue
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); run(); e1.record(); torch.cuda.synchronize()
        est = e0.elapsed_time(e1)
        iters = max(3, min(50, int(300.0 / max(est, 1e-3))))
        ts = []
        for _ in range(iters):
            e0.record(); run(); e1.record(); torch.cuda.synchronize()
            ts.append(e0.elapsed_time(e1))
        ts.sort()
        ms = ts[len(ts) // 2]
        flops = 4.0 * hd * h * visible_pairs(sq, sk, causal)
        print(f"{name:<26} {'torch_sdpa':<22} {ms:10.4f} {flops / (ms * 1e-3) / 1e12:9.1f}", flush=True)
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
