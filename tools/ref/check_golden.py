#!/usr/bin/env python3
"""Check oracle/golden files (ref_pipeline.py output) against the spec, in plain Python (no torch, no numpy).

    check_golden.py FILE.safetensors ...

For each file, independently of diffusers:
  * shapes agree with the metadata (height, width, steps) and with each other;
  * sigmas for N = 8 are the spec §6.3 bit patterns; timesteps = fl32(1000 * sigma);
  * t_model = fl32((1000 - timestep) / 1000), either true division (CPU) or the multiply by
    fl32(1/1000) that CUDA does (spec §6.4);
  * the first Euler step: latents_1 = fl32(noise + fl32(dt_0 * -dit_out_0)) exactly (spec §6.5);
  * for f32 runs the image is round_half_even(fl32(clamp(decoded*0.5 + 0.5, 0, 1) * 255)) (spec §7.6);
  * token ids of prompts listed in spec §5.4 equal the spec's ids.
Exit 0 when all files pass, 1 otherwise.
"""
import json
import math
import struct
import sys

SPEC_SIGMAS_N8 = ["3f800000", "3f745d17", "3f666666", "3f555555", "3f400000", "3f249249", "3f000000",
                  "3e99999a", "00000000"]
SPEC_IDS = {  # spec §5.4 (independent tokenizer implementations)
    "a cat": [151644, 872, 198, 64, 8251, 151645, 198, 151644, 77091, 198],
    "": [151644, 872, 198, 151645, 198, 151644, 77091, 198],
}
CODES = {"F32": ("f", 4), "I64": ("q", 8), "U8": ("B", 1)}


def fl32(x):
    """Round a double to the nearest float32. A +, -, * or / of two float32 values done in double and
    rounded once this way is correctly rounded (53 >= 2*24 + 2)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def hexf(x):
    return struct.pack(">f", x).hex()


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        code, size = CODES[v["dtype"]]
        b, e = v["data_offsets"]
        cnt = (e - b) // size
        out[k] = (v["shape"], list(struct.unpack(f"<{cnt}{code}", data[8 + n + b:8 + n + e])))
    return meta, out


def check(path):
    errs = []
    meta, t = load(path)
    H, W, N = int(meta["height"]), int(meta["width"]), int(meta["steps"])
    lat = [16, H // 8, W // 8]
    L = t["ids"][0][0]
    want = {"ids": [L], "noise": lat, "sigmas": [N + 1], "timesteps": [N], "t_model": [N], "dit_out_0": lat,
            "decoded": [3, H, W], "image": [H, W, 3]}
    want.update({f"latents_{i}": lat for i in range(1, N + 1)})
    for k, shape in want.items():
        if k not in t:
            errs.append(f"missing tensor {k}")
        elif t[k][0] != shape:
            errs.append(f"{k}: shape {t[k][0]}, expected {shape}")
    if "cap_feats" not in t or t["cap_feats"][0][0] != L:
        errs.append("cap_feats: missing or row count != len(ids)")
    if errs:
        return errs

    sig, ts, tm = t["sigmas"][1], t["timesteps"][1], t["t_model"][1]
    if N == 8 and [hexf(s) for s in sig] != SPEC_SIGMAS_N8:
        errs.append(f"sigmas {[hexf(s) for s in sig]} != spec §6.3 {SPEC_SIGMAS_N8}")
    if sig[N] != 0.0:
        errs.append("terminal sigma is not 0")
    for i in range(N):
        if ts[i] != fl32(sig[i] * 1000.0):
            errs.append(f"timesteps[{i}] = {ts[i]!r} != fl32(1000 sigma) = {fl32(sig[i] * 1000.0)!r}")
        num = fl32(1000.0 - ts[i])
        if tm[i] not in (fl32(num / 1000.0), fl32(num * fl32(1.0 / 1000.0))):
            errs.append(f"t_model[{i}] = {hexf(tm[i])} is neither (1000-t)/1000 nor (1000-t)*fl32(1/1000)")

    dt0 = fl32(sig[1] - sig[0])
    noise, v, l1 = t["noise"][1], t["dit_out_0"][1], t["latents_1"][1]
    bad = sum(1 for x, o, y in zip(noise, v, l1) if fl32(x + fl32(dt0 * -o)) != y)
    if bad:
        errs.append(f"latents_1 != fl32(noise + fl32(dt0 * -dit_out_0)) at {bad} of {len(l1)} elements")

    if meta.get("precision") == "f32":
        dec, img = t["decoded"][1], t["image"][1]
        hw = H * W
        bad = 0
        for c in range(3):
            for p in range(hw):
                x = min(max(fl32(fl32(dec[c * hw + p] * 0.5) + 0.5), 0.0), 1.0)
                if round(fl32(x * 255.0)) != img[p * 3 + c]:
                    bad += 1
        if bad:
            errs.append(f"image != round(clamp(decoded/2 + 0.5) * 255) at {bad} of {3 * hw} values")

    if meta.get("ids_given") == "false" and meta.get("prompt") in SPEC_IDS:
        if t["ids"][1] != SPEC_IDS[meta["prompt"]]:
            errs.append(f"ids {t['ids'][1]} != spec §5.4 {SPEC_IDS[meta['prompt']]}")
    for k, (shape, vals) in t.items():
        if any(not math.isfinite(x) for x in vals):
            errs.append(f"{k}: non-finite values")
    return errs


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    fails = 0
    for p in sys.argv[1:]:
        try:
            errs = check(p)
        except (OSError, ValueError, KeyError) as e:
            errs = [f"unreadable: {e}"]
        fails += bool(errs)
        print(f"{'FAIL' if errs else 'ok  '} {p}")
        for e in errs:
            print(f"     {e}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
