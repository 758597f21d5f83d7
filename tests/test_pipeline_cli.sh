#!/usr/bin/env bash
# tests/test_pipeline_cli.sh — `zturbo generate` end to end on the mkmodel tiny
# checkpoint (CPU backend): the prompt goes through the tokenizer to the same
# image as its ids; the PNG has the size asked for and carries
# the A1111 "parameters" and the JSON "zturbo" text chunks; the same seed gives
# the same pixels; --noise and --dump work; bad values are rejected with the
# allowed range and exit code 2, a missing model with exit code 1, and no
# output file is left behind by a failed run.
set -u
root=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
bin=${ZT_BIN:-$root/bin}
tmp=$root/build/test-tmp/pipeline_cli
rm -rf "$tmp" && mkdir -p "$tmp"
fail=0
check() { # description, command...
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
"$bin/mkmodel" --config tiny --seed 1 --dtype bf16 -o "$tmp/ckpt" >/dev/null || { echo "mkmodel failed"; exit 1; }
ids=151644,872,198,64,8251,151645,198,151644,77091,198
gen() { "$bin/zturbo" generate -q -m "$tmp/ckpt" --device cpu --ids $ids -p "a cat" "$@"; }

gen -o "$tmp/a.png" --width 64 --height 48 --seed 7 --dump "$tmp/a.st"
check "generate exits 0" test $? -eq 0
gen -o "$tmp/b.png" --width 64 --height 48 --seed 7
check "same seed, same file" cmp -s "$tmp/a.png" "$tmp/b.png"
gen -o "$tmp/c.png" --width 64 --height 48 --seed 8
check "another seed, another image" bash -c "! cmp -s '$tmp/a.png' '$tmp/c.png'"
gen -o "$tmp/d.png" --width 64 --height 48 --noise "$tmp/a.st"   # the dump holds "noise"
check "--noise from a dump reproduces the seeded image" python3 - "$tmp/a.png" "$tmp/d.png" <<'PY'
import struct, sys, zlib
def png(path):
    d = open(path, "rb").read()
    assert d[:8] == b"\x89PNG\r\n\x1a\n"
    i, chunks, idat = 8, {}, b""
    while i < len(d):
        n, t = struct.unpack(">I4s", d[i:i + 8]); body = d[i + 8:i + 8 + n]; i += 12 + n
        if t == b"IHDR": chunks["size"] = struct.unpack(">II", body[:8])
        elif t == b"IDAT": idat += body
        elif t == b"tEXt": k, v = body.split(b"\0", 1); chunks[k.decode()] = v.decode("latin-1")
        elif t == b"iTXt": k, rest = body.split(b"\0", 1); chunks[k.decode()] = rest[2:].split(b"\0", 2)[2].decode()
    return chunks, zlib.decompress(idat)
a, pa = png(sys.argv[1]); b, pb = png(sys.argv[2])
sys.exit(0 if pa == pb else 1)
PY
"$bin/zturbo" generate -q -m "$tmp/ckpt" --device cpu -p "a cat" -o "$tmp/e.png" --width 64 --height 48 --seed 7
check "the prompt through the tokenizer gives the --ids image" cmp -s "$tmp/a.png" "$tmp/e.png"
check "PNG size and text chunks" python3 - "$tmp/a.png" <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read()
i, c = 8, {}
while i < len(d):
    n, t = struct.unpack(">I4s", d[i:i + 8]); body = d[i + 8:i + 8 + n]; i += 12 + n
    if t == b"IHDR": c["size"] = struct.unpack(">II", body[:8])
    if t == b"tEXt": k, v = body.split(b"\0", 1); c[k.decode()] = v.decode("latin-1")
assert c["size"] == (64, 48), c["size"]
assert c["parameters"] == "a cat\nSteps: 8, Sampler: Euler, CFG scale: 0, Seed: 7, RNG: torch-cpu, Size: 64x48, Model: Z-Image-Turbo", c["parameters"]
j = json.loads(c["zturbo"])
assert j["seed"] == 7 and j["rng"] == "torch-cpu" and j["width"] == 64 and j["height"] == 48 and j["steps"] == 8 and j["tokens"] == 10, j
PY
check "dump holds the oracle's tensors" python3 - "$tmp/a.st" <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read()
h = json.loads(d[8:8 + struct.unpack("<Q", d[:8])[0]])
need = ["ids", "cap_feats", "noise", "sigmas", "timesteps", "t_model", "dit_out_0", "decoded", "image"] + \
       [f"latents_{i}" for i in range(1, 9)]
missing = [k for k in need if k not in h]
assert not missing, missing
assert h["noise"]["shape"] == [16, 6, 8] and h["decoded"]["shape"] == [3, 48, 64] and h["image"]["dtype"] == "U8"
PY

bad() { # description, expected exit code, expected text, args...
    local what=$1 code=$2 text=$3; shift 3
    local out rc
    out=$("$bin/zturbo" generate "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq "$code" ] && [[ "$out" == *"$text"* ]] && [ "$(echo "$out" | wc -l)" -eq 1 ]; then echo "ok   $what"
    else echo "FAIL $what: exit $rc, message: $out"; fail=1; fi
}
base=(-q -m "$tmp/ckpt" --device cpu --ids $ids -o "$tmp/bad.png")
bad "width not a multiple of 16" 2 "multiple of 16" "${base[@]}" --width 100
bad "width too large" 2 "16..2048" "${base[@]}" --width 4096
bad "steps 0" 2 "1..100" "${base[@]}" --steps 0
bad "steps not a number" 2 "1..100" "${base[@]}" --steps 8x
bad "unknown precision" 2 "bf16, f32 or fp16" "${base[@]}" --precision fp8
bad "unknown device" 2 "cpu or cuda" "${base[@]}" --device tpu
bad "seed and noise together" 2 "exclude" "${base[@]}" --seed 1 --noise "$tmp/a.st"
bad "noise of the wrong shape" 1 "expected F32 [16, 8, 8]" "${base[@]}" --width 64 --height 64 --noise "$tmp/a.st"
bad "token id outside the vocabulary" 2 "outside the vocabulary" -q -m "$tmp/ckpt" --device cpu --ids 1,999999 -o "$tmp/bad.png" --width 64 --height 64
bad "missing tokenizer file" 1 "nope.json" -q -m "$tmp/ckpt" --device cpu -p "a cat" --tokenizer "$tmp/nope.json" -o "$tmp/bad.png"
bad "missing model" 1 "nonexistent" -q -m "$tmp/nonexistent" --device cpu --ids $ids -o "$tmp/bad.png"
check "no output from failed runs" test ! -e "$tmp/bad.png"
check "no temporary files left" bash -c "! ls '$tmp' | grep -q '\.tmp\.'"
exit $fail
