#!/usr/bin/env python3
"""tools/kbench_torch.py - the ops of tools/kbench.cu through PyTorch, at the
same shapes, timed the same way (warm-up, median of per-call CUDA-event
timings of calls queued back to back, inputs rotated over several sets when one set fits in L2), printing
rows in the same format so both go into one table:

    | impl | op | shape | median us | achieved | % of ceiling |

Bytes and FLOPs are the same minimal counts kbench uses; PyTorch often runs
several kernels where zturbo fuses (noted in the shape column).

usage: python3 tools/kbench_torch.py [filter]
"""
import os
import sys

import torch
import torch.nn.functional as F

S, D, H, HD, FF = 4224, 3840, 30, 128, 10240
FILTER = sys.argv[1] if len(sys.argv) > 1 else None
dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
bf = torch.bfloat16
L2 = torch.cuda.get_device_properties(0).L2_cache_size
PEAK = COPY = None


def wanted(op):
    return FILTER is None or FILTER in op


def rnd(*shape, dtype=bf, scale=1.0, offset=0.0, memory_format=None):
    t = torch.randn(*shape, device=dev, dtype=torch.float32).mul_(scale).add_(offset).to(dtype)
    if memory_format is not None:
        t = t.contiguous(memory_format=memory_format)
    return t


def sets_for(nbytes):
    return max(1, min(8, int(3 * L2 / max(nbytes, 1)) + 1))


def time_ms(fn):
    """Median of per-call event timings (ms): calls queued back to back with an
    event pair around each, as tools/kbench.cu; KBENCH_SERIAL=1 syncs after each."""
    serial = os.environ.get("KBENCH_SERIAL") == "1"
    for i in range(3):
        fn(i)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn(3)
    b.record()
    b.synchronize()
    first = a.elapsed_time(b)
    reps = min(max(int(300.0 / max(first, 1e-3)), 15), 200)
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for r in range(reps):
        ev[r][0].record()
        fn(r)
        ev[r][1].record()
        if serial:
            ev[r][1].synchronize()
    ev[-1][1].synchronize()
    ts = sorted(x.elapsed_time(y) for x, y in ev)
    return ts[reps // 2]


def row_flops(op, shape, flops, ms):
    tf = flops / (ms * 1e-3) / 1e12
    print(f"| torch | {op} | {shape} | {ms * 1e3:.1f} | {tf:.1f} TFLOP/s | {100 * tf / PEAK:.0f}% |", flush=True)


def row_bytes(op, shape, nbytes, ms):
    gbs = nbytes / (ms * 1e-3) / 1e9
    print(f"| torch | {op} | {shape} | {ms * 1e3:.1f} | {gbs:.0f} GB/s | {100 * gbs / COPY:.0f}% |", flush=True)


def ceilings():
    global PEAK, COPY
    n = 1 << 29  # bf16 elements: 1 GiB
    a, b = rnd(n), torch.empty(n, device=dev, dtype=bf)
    ms = time_ms(lambda r: b.copy_(a))
    COPY = 2.0 * 2 * n / (ms * 1e-3) / 1e9
    print(f"| torch | ceiling: copy | 1 GiB D2D, read+write | {ms * 1e3:.1f} | {COPY:.0f} GB/s | 100% |")
    del a, b
    m = 8192
    x, w = rnd(m, m), rnd(m, m, scale=0.02)
    ms = time_ms(lambda r: torch.matmul(x, w))
    PEAK = 2.0 * m ** 3 / (ms * 1e-3) / 1e12
    print(f"| torch | ceiling: gemm | m8192 n8192 k8192 bf16 | {ms * 1e3:.1f} | {PEAK:.1f} TFLOP/s | 100% |")
    del x, w
    torch.cuda.empty_cache()


def bench_gemm(m, k, n):
    if not wanted("gemm"):
        return
    x, w = rnd(m, k), rnd(n, k, scale=1 / 64)
    ms = time_ms(lambda r: F.linear(x, w))
    row_flops("gemm", f"m{m} k{k} n{n} bf16->bf16", 2.0 * m * n * k, ms)


def bench_dit():
    act = S * D
    b2 = 2.0 * act * 2
    if wanted("rmsnorm"):
        k = sets_for(b2)
        xs = [rnd(S, D) for _ in range(k)]
        w, sc = rnd(D, scale=0.5, offset=1), rnd(D, scale=0.5, offset=1)
        ms = time_ms(lambda r: F.rms_norm(xs[r % k], (D,), w, 1e-5) * sc)
        row_bytes("rmsnorm", "4224x3840 bf16, weight+scale (2 kernels)", b2, ms)
    if wanted("qknorm"):
        k = sets_for(b2)
        qkv = [rnd(S, 3 * D) for _ in range(k)]
        w = rnd(HD, scale=0.5, offset=1)
        ms = time_ms(lambda r: F.rms_norm(qkv[r % k][:, :D].view(S, H, HD), (HD,), w, 1e-5))
        row_bytes("qknorm", "4224x30x128 in QKV row, out of place", b2, ms)
    if wanted("rmsnorm_gate_add"):
        b3 = 3.0 * act * 2
        k = sets_for(b3)
        xs, rs = [rnd(S, D) for _ in range(k)], [rnd(S, D) for _ in range(k)]
        w, g = rnd(D, scale=0.5, offset=1), rnd(D, scale=0.5)
        ms = time_ms(lambda r: rs[r % k].add_(g * F.rms_norm(xs[r % k], (D,), w, 1e-5)))
        row_bytes("rmsnorm_gate_add", "4224x3840 bf16, gate (3 kernels)", b3, ms)
    if wanted("layernorm"):
        k = sets_for(b2)
        xs = [rnd(S, D) for _ in range(k)]
        sc = rnd(D, scale=0.5, offset=1)
        ms = time_ms(lambda r: F.layer_norm(xs[r % k], (D,), eps=1e-6) * sc)
        row_bytes("layernorm", "4224x3840 bf16, scale (2 kernels)", b2, ms)
    if wanted("rope_pairs"):
        nbytes = 2.0 * act * 2 + S * HD * 4
        k = sets_for(nbytes)
        qkv = [rnd(S, 3 * D) for _ in range(k)]
        ang = torch.rand(S, HD // 2, device=dev) * 100
        freqs = torch.polar(torch.ones_like(ang), ang)  # complex64 [S, 64]

        def rope(r):
            q = qkv[r % k][:, :D].view(S, H, HD)
            xc = torch.view_as_complex(q.float().reshape(S, H, HD // 2, 2))
            return torch.view_as_real(xc * freqs.unsqueeze(1)).flatten(2).type_as(q)

        ms = time_ms(rope)
        row_bytes("rope_pairs", "4224x30x128 in QKV row (diffusers complex mul)", nbytes, ms)
    if wanted("swiglu"):
        nbytes = S * 3.0 * FF * 2
        k = sets_for(nbytes)
        ins = [rnd(S, 2 * FF, scale=3) for _ in range(k)]
        ms = time_ms(lambda r: F.silu(ins[r % k][:, :FF]) * ins[r % k][:, FF:])
        row_bytes("swiglu", "4224x10240 bf16 (2 kernels)", nbytes, ms)
    if wanted("add"):
        b3 = 3.0 * act * 2
        k = sets_for(b3)
        a_, b_ = [rnd(act) for _ in range(k)], [rnd(act) for _ in range(k)]
        ms = time_ms(lambda r: a_[r % k] + b_[r % k])
        row_bytes("add", "4224x3840 bf16", b3, ms)
    if wanted("silu"):
        k = sets_for(b2)
        a_ = [rnd(act) for _ in range(k)]
        ms = time_ms(lambda r: F.silu(a_[r % k]))
        row_bytes("silu", "4224x3840 bf16", b2, ms)
    if wanted("convert"):
        k = sets_for(6.0 * act)
        a_ = [rnd(act, dtype=torch.float32) for _ in range(k)]
        ms = time_ms(lambda r: a_[r % k].to(bf))
        row_bytes("convert", "4224x3840 f32->bf16", 6.0 * act, ms)
    if wanted("euler_step"):
        n = 16 * 128 * 128
        x, v = rnd(n, dtype=torch.float32), rnd(n, dtype=torch.float32)
        ms = time_ms(lambda r: x.add_(v, alpha=1e-3))
        row_bytes("euler_step", "16x128x128 f32", 12.0 * n, ms)
    if wanted("attention"):
        q, kk, v = rnd(1, H, S, HD), rnd(1, H, S, HD), rnd(1, H, S, HD)
        ms = time_ms(lambda r: F.scaled_dot_product_attention(q, kk, v))
        row_flops("attention", "SDPA 4224x4224, 30 heads x 128, bf16", 4.0 * S * S * HD * H, ms)
    torch.cuda.empty_cache()


CL = torch.channels_last


def bench_groupnorm(px, c):
    if not wanted("groupnorm"):
        return
    n = px * px * c
    nbytes = 2.0 * n * 2
    k = sets_for(nbytes)
    xs = [rnd(1, c, px, px, memory_format=CL) for _ in range(k)]
    g, b = rnd(c, scale=0.5, offset=1), rnd(c, scale=0.5)
    ms = time_ms(lambda r: F.silu(F.group_norm(xs[r % k], 32, g, b, 1e-6)))
    row_bytes("groupnorm", f"{px}x{px} c{c} g32 bf16 +silu (channels_last)", nbytes, ms)
    del xs
    torch.cuda.empty_cache()


def bench_conv(px, cin, cout, ks, resid):
    if not wanted("conv"):
        return
    x = rnd(1, cin, px, px, memory_format=CL)
    w = rnd(cout, cin, ks, ks, scale=0.05, memory_format=CL)
    b = rnd(cout, scale=0.1)
    res = rnd(1, cout, px, px, memory_format=CL) if resid else None
    if resid:
        fn = lambda r: F.conv2d(x, w, b, padding=ks // 2) + res  # noqa: E731
    else:
        fn = lambda r: F.conv2d(x, w, b, padding=ks // 2)  # noqa: E731
    ms = time_ms(fn)
    row_flops("conv2d", f"{px}x{px} {cin}->{cout} k{ks} bf16{' +resid' if resid else ''} (cuDNN, channels_last)",
              2.0 * px * px * cout * ks * ks * cin, ms)
    del x, w, res
    torch.cuda.empty_cache()


def bench_vae_misc():
    if wanted("upsample2x"):
        px, c = 512, 256
        x = rnd(1, c, px, px, memory_format=CL)
        ms = time_ms(lambda r: F.interpolate(x, scale_factor=2, mode="nearest"))
        row_bytes("upsample2x", "512x512 c256 -> 1024x1024 bf16", 5.0 * px * px * c * 2, ms)
    if wanted("to_rgb8"):
        x = rnd(1, 3, 1024, 1024)
        n = 3 * 1024 * 1024
        ms = time_ms(lambda r: ((x / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8))
        row_bytes("to_rgb8", "1024x1024x3 bf16", 3.0 * n, ms)


def main():
    p = torch.cuda.get_device_properties(0)
    print(f"kbench_torch: torch {torch.__version__}, {p.name}, {p.multi_processor_count} SMs, L2 {L2 / 1e6:.0f} MB\n")
    print("| impl | op | shape | median us | achieved | % of ceiling |\n|---|---|---|---|---|---|")
    ceilings()
    bench_gemm(S, D, D)
    bench_gemm(S, D, 3 * D)
    bench_gemm(S, D, 2 * FF)
    bench_gemm(S, FF, D)
    bench_dit()
    for px, c in ((1024, 128), (1024, 256), (512, 256), (512, 512), (256, 512), (128, 512)):
        bench_groupnorm(px, c)
    for args in ((128, 16, 512, 3, 0), (128, 512, 512, 3, 0), (256, 512, 512, 3, 0), (512, 512, 256, 3, 0),
                 (512, 256, 256, 3, 1), (1024, 256, 256, 3, 0), (1024, 256, 128, 3, 0), (1024, 128, 128, 3, 0),
                 (1024, 128, 128, 3, 1), (1024, 256, 128, 1, 0), (1024, 128, 3, 3, 0)):
        bench_conv(*args)
    bench_vae_misc()


if __name__ == "__main__":
    with torch.no_grad():
        main()
