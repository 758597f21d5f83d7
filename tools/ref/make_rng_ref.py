#!/usr/bin/env python3
"""tools/ref/make_rng_ref.py — expected values of torch's CPU randn for
tests/test_rng_torch.c (api/rng_torch.h), written by torch itself:

    g = torch.Generator("cpu").manual_seed(seed)
    torch.randn(shape, generator=g, dtype=torch.float32)

Small counts are written in full (hex bits of each float), the latent
shapes of 256x256 ... 2048x2048 images (square and not) as the md5 of their
little-endian float32 bytes. Needs torch (CPU wheel) only:

    python3 -m venv /tmp/torchcpu && /tmp/torchcpu/bin/pip install torch --index-url <the CPU wheel index>
    /tmp/torchcpu/bin/python tools/ref/make_rng_ref.py -o tests/data/rng_torch_cpu.txt

On x86 torch runs its AVX2 normal kernel (also on AVX-512 machines); the
script refuses to write the file on other kernels (ATEN_CPU_CAPABILITY=default
or a non-x86 build), whose last bits differ (see api/rng_torch.h)."""
import argparse
import hashlib
import platform

import torch

SEEDS = [0, 1, 42, 2**32, 2**63 - 1, 2**64 - 1]
# counts written in full: the n < 16 double path, the tail window, latents of 16x16 and 32x48 pixels
FULL = [1, 2, 3, 15, 16, 17, 31, 33, 100, 16 * 2 * 2, 16 * 6 * 4]
# image sizes (width, height) whose [1, 16, H/8, W/8] latents are hashed
SIZES = [(256, 256), (512, 512), (768, 768), (1024, 1024), (1536, 1536), (2048, 2048),
         (512, 768), (768, 512), (1280, 720), (1024, 576), (832, 1216), (2048, 1024), (256, 2048)]


def randn(seed, shape):
    g = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    cap = torch.backends.cpu.get_cpu_capability()
    if platform.machine() not in ("x86_64", "AMD64") or cap not in ("AVX2", "AVX512"):
        raise SystemExit(f"torch runs the {cap} kernel on {platform.machine()}: the file is for x86's AVX2 normal kernel")
    lines = [
        "# tests/data/rng_torch_cpu.txt — made by tools/ref/make_rng_ref.py; do not edit.",
        f"# torch {torch.__version__} on {platform.machine()} (CPU capability {cap}: the AVX2 normal kernel)",
        "# v SEED N HEX...      torch.randn([N]) with manual_seed(SEED): the float32 bits of every value",
        "# h SEED C H W MD5     md5 of torch.randn([1, C, H, W]) as little-endian float32 bytes",
    ]
    for s in SEEDS:
        for n in FULL:
            bits = randn(s, [n]).numpy().view("<u4")
            lines.append(f"v {s} {n} " + " ".join(f"{int(b):08x}" for b in bits))
    for s in SEEDS:
        for w, h in SIZES:
            x = randn(s, [1, 16, h // 8, w // 8]).numpy().astype("<f4")
            lines.append(f"h {s} 16 {h // 8} {w // 8} {hashlib.md5(x.tobytes()).hexdigest()}")
    with open(a.output, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
