#!/usr/bin/env bash
# tests/test_rng_cli.sh — `zturbo generate --rng` on the tiny checkpoint (CPU):
# the default generator is torch-cpu and the initial latent it draws (the
# --dump "noise") is torch's: its md5 is the one torch wrote into
# tests/data/rng_torch_cpu.txt (tools/ref/make_rng_ref.py) for that seed and
# latent shape, at a square and a non-square size; `--rng zturbo` gives
# another image; the PNG "parameters" and JSON chunk name the RNG; a JSON
# line's "rng" equals the flag; bad values are usage / line errors.
set -u
. "$ZT_ROOT/tests/lib.sh"
zt_tmp rng-cli
zt_tiny 3 bf16 snap
G=(generate -m snap --device cpu --steps 1 -q -p "a red fox")
# the md5 of the dump's "noise" against torch's line "h SEED 16 H W MD5"
noise_is_torch() { # dump, seed, h, w
    python3 - "$1" "$2" "$3" "$4" "$ZT_ROOT/tests/data/rng_torch_cpu.txt" <<'PY'
import hashlib, json, struct, sys
path, seed, h, w, ref = sys.argv[1:]
d = open(path, "rb").read()
n = struct.unpack("<Q", d[:8])[0]
hd = json.loads(d[8:8 + n])
t = hd["noise"]
b, e = t["data_offsets"]
got = hashlib.md5(d[8 + n + b:8 + n + e]).hexdigest()
want = [l.split()[5] for l in open(ref) if l.split()[:5] == ["h", seed, "16", h, w]]
assert len(want) == 1, f"no torch line for seed {seed} [16, {h}, {w}]"
assert t["shape"] == [16, int(h), int(w)] and got == want[0], (t["shape"], got, want[0])
assert hd["__metadata__"]["rng"] == "torch-cpu" and hd["__metadata__"]["seed"] == seed, hd["__metadata__"]
PY
}
"$Z" "${G[@]}" --seed 42 --width 256 --height 256 -o a.png --dump a.st
check "default rng: the 256x256 latent of seed 42 is torch's" noise_is_torch a.st 42 32 32
"$Z" "${G[@]}" --seed 9223372036854775807 --width 1280 --height 720 --rng torch-cpu -o b.png --dump b.st
check "--rng torch-cpu: the 1280x720 latent of seed 2^63-1 is torch's" noise_is_torch b.st 9223372036854775807 90 160
"$Z" "${G[@]}" --seed 42 --width 256 --height 256 --rng zturbo -o c.png
check "--rng zturbo draws another image" bash -c "! cmp -s a.png c.png"
check "the PNG names the RNG" python3 - a.png c.png <<'PY'
import json, struct, sys
def texts(p):
    d = open(p, "rb").read(); i, c = 8, {}
    while i < len(d):
        n, t = struct.unpack(">I4s", d[i:i + 8]); body = d[i + 8:i + 8 + n]; i += 12 + n
        if t == b"tEXt": k, v = body.split(b"\0", 1); c[k.decode()] = v.decode("latin-1")
    return c
a, c = texts(sys.argv[1]), texts(sys.argv[2])
assert "Seed: 42, RNG: torch-cpu, Size: 256x256" in a["parameters"], a["parameters"]
assert "Seed: 42, RNG: zturbo, Size: 256x256" in c["parameters"], c["parameters"]
assert json.loads(a["zturbo"])["rng"] == "torch-cpu" and json.loads(c["zturbo"])["rng"] == "zturbo"
PY
printf '%s\n' '{"prompt": "a red fox", "seed": 42, "rng": "zturbo"}' '{"prompt": "a red fox", "seed": 42}' \
    '{"prompt": "a red fox", "rng": "cuda"}' > p.jsonl
"$Z" generate -m snap --device cpu --steps 1 -q --prompts-jsonl p.jsonl --width 256 --height 256 -o p.png 2> p.err; rc=$?
check "a JSON line's rng = the flag, the default = torch-cpu" bash -c "cmp -s p-0.png c.png && cmp -s p-1.png a.png"
check "a bad \"rng\" is a line error (exit 1, the line named)" bash -c "test $rc -eq 1 && grep -q 'p.jsonl:3: \"rng\" must be' p.err"
out=$("$Z" "${G[@]}" --rng philox -o x.png 2>&1); rc=$?
check "--rng philox: usage error naming the choices" bash -c "test $rc -eq 2 && [[ '$out' == *torch-cpu* ]] && test ! -e x.png"
out=$("$Z" generate -m snap --device cpu --print-config -p x -o x.png)
check "--print-config shows rng torch-cpu" bash -c "grep -Eq '^rng +torch-cpu' <<< '$out'"
zt_summary
