#!/usr/bin/env python3
"""Compare the tensors two safetensors files have in common.

    compare.py A.safetensors B.safetensors [--tol 1e-3] [--tol-for 'latents_*=5e-3' ...]
               [--only PATTERN ...] [--skip PATTERN ...]

B is the reference: for each common tensor it prints the relative L2 error ||A - B|| / ||B||
(the absolute L2 error when ||B|| = 0), the max absolute error and max |B|. A tensor fails when
its relative error exceeds its tolerance: --tol, or the first --tol-for PATTERN=VALUE whose
shell pattern matches the name. Integer tensors other than U8 (token ids) must match exactly
unless a --tol-for pattern names them. Different shapes fail. Exit 0 all pass, 1 any fail,
2 bad input. Plain Python 3 (no torch, no numpy needed; numpy is used for speed when present).
"""
import argparse
import fnmatch
import json
import math
import struct
import sys

try:
    import numpy as np
except ImportError:  # CI images may have no numpy: fall back to plain Python
    np = None

# safetensors dtype -> (struct code, element size)
DTYPES = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": ("H", 2), "I64": ("q", 8), "I32": ("i", 4),
          "I16": ("h", 2), "I8": ("b", 1), "U64": ("Q", 8), "U32": ("I", 4), "U16": ("H", 2), "U8": ("B", 1),
          "BOOL": ("?", 1)}


class Tensor:
    def __init__(self, dtype, shape, values):
        self.dtype, self.shape, self.values = dtype, tuple(shape), values  # values: flat list or numpy f64


def decode(dt, raw):
    code, size = DTYPES[dt]
    n = len(raw) // size
    if np is not None:
        if dt == "BF16":
            return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        npcode = {"d": "<f8", "f": "<f4", "e": "<f2", "H": "<u2", "q": "<i8", "i": "<i4", "h": "<i2", "b": "i1",
                  "Q": "<u8", "I": "<u4", "B": "u1", "?": "?"}[code]
        return np.frombuffer(raw, npcode).astype(np.float64)
    vals = struct.unpack(f"<{n}{code}", raw)
    if dt == "BF16":
        vals = struct.unpack(f"<{n}f", struct.pack(f"<{n}I", *(v << 16 for v in vals)))
    return [float(v) for v in vals]


def load(path):
    """Minimal safetensors reader: {name: Tensor}."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(data)}")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        if e - b != math.prod(shape) * DTYPES[dt][1] or base + e > len(data) or b > e:
            raise ValueError(f"{path}: tensor {name}: offsets [{b}, {e}) do not match shape {shape} {dt}")
        out[name] = Tensor(dt, shape, decode(dt, data[base + b:base + e]))
    return out


def stats(xa, xb):
    """(||a-b||, ||b||, max|a-b|, max|b|, count a!=b, all finite)."""
    if np is not None:
        d = xa - xb
        fin = bool(np.all(np.isfinite(xa)) and np.all(np.isfinite(xb)))
        if not fin or d.size == 0:
            return 0.0, 0.0, 0.0, 0.0, 0, fin
        return (float(np.linalg.norm(d)), float(np.linalg.norm(xb)), float(np.abs(d).max()),
                float(np.abs(xb).max()), int((d != 0).sum()), True)
    if not all(math.isfinite(v) for v in xa) or not all(math.isfinite(v) for v in xb):
        return 0.0, 0.0, 0.0, 0.0, 0, False
    d = [u - v for u, v in zip(xa, xb)]
    return (math.sqrt(math.fsum(v * v for v in d)), math.sqrt(math.fsum(v * v for v in xb)),
            max(map(abs, d), default=0.0), max(map(abs, xb), default=0.0), sum(v != 0 for v in d), True)


def is_exact_kind(dt):
    return dt[0] in "IU" and dt != "U8" or dt == "BOOL"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b", help="reference")
    ap.add_argument("--tol", type=float, default=1e-3, help="max relative L2 error (default 1e-3)")
    ap.add_argument("--tol-for", action="append", default=[], metavar="PATTERN=VALUE",
                    help="per-tensor tolerance, shell pattern on the name; first match wins")
    ap.add_argument("--only", action="append", default=[], metavar="PATTERN", help="compare only these names")
    ap.add_argument("--skip", action="append", default=[], metavar="PATTERN", help="ignore these names")
    a = ap.parse_args()

    rules = []
    for r in a.tol_for:
        pat, sep, val = r.rpartition("=")
        if not sep or not pat:
            print(f"--tol-for {r!r}: expected PATTERN=VALUE", file=sys.stderr)
            return 2
        rules.append((pat, float(val)))
    try:
        A, B = load(a.a), load(a.b)
    except (OSError, ValueError, KeyError) as e:
        print(e, file=sys.stderr)
        return 2

    def wanted(name):
        if a.only and not any(fnmatch.fnmatchcase(name, p) for p in a.only):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in a.skip)

    only_a = sorted(k for k in A if k not in B and wanted(k))
    only_b = sorted(k for k in B if k not in A and wanted(k))
    common = sorted((k for k in A if k in B and wanted(k)),
                    key=lambda k: (k.rstrip("0123456789"), int(k[len(k.rstrip("0123456789")):] or -1)))
    if not common:
        print("no common tensors to compare", file=sys.stderr)
        return 2
    fails = 0
    print(f"{'tensor':<14} {'shape':<16} {'rel_l2':>11} {'max_abs':>11} {'max|ref|':>11} {'tol':>9}  result")
    for k in common:
        ta, tb = A[k], B[k]
        tol = next((v for p, v in rules if fnmatch.fnmatchcase(k, p)), None)
        exact = tol is None and is_exact_kind(tb.dtype)
        if tol is None:
            tol = 0.0 if exact else a.tol
        shape = "x".join(map(str, tb.shape)) or "scalar"
        if ta.shape != tb.shape:
            fails += 1
            print(f"{k:<14} {shape:<16} shape mismatch: A {list(ta.shape)} vs B {list(tb.shape)}  FAIL")
            continue
        nd, nb, mx, ref, ndiff, finite = stats(ta.values, tb.values)
        if not finite:
            fails += 1
            print(f"{k:<14} {shape:<16} non-finite values  FAIL")
            continue
        rel = nd / nb if nb > 0 else nd
        ok = (mx == 0.0) if exact else (rel <= tol)
        fails += not ok
        extra = f" ({ndiff} differ)" if exact and not ok else ""
        print(f"{k:<14} {shape:<16} {rel:11.3e} {mx:11.3e} {ref:11.3e} {'exact' if exact else f'{tol:9.1e}':>9}  "
              f"{'ok' if ok else 'FAIL'}{extra}")
    if only_a:
        print(f"only in A: {' '.join(only_a)}")
    if only_b:
        print(f"only in B: {' '.join(only_b)}")
    print(f"{len(common) - fails}/{len(common)} within tolerance")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
