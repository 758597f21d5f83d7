#!/usr/bin/env bash
# tests/tokenizer/bench.sh [PYTHON] — throughput of `zturbo tokenize` vs Hugging Face
# `tokenizers` on the same 1 MB texts, same machine, one thread each (plus HF's
# multi-threaded encode_batch over lines), and load time of tokenizer.json.
# PYTHON must import `tokenizers` (default: the venv of tests/test_tokenizer_exact.sh).
# Not a CI test: timings only.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=${1:-build/tokenizer-venv/bin/python}
tok=tests/data/qwen3-tokenizer/tokenizer.json
work=build/tokenizer-bench
mkdir -p "$work"
# 1 MB of English prose (words of the corpus generator, prompt-like) and 1 MB of the
# varied exactness corpus (all scripts, emoji, code, whitespace...).
python3 - "$work" <<'EOF'
import json, random, sys
work = sys.argv[1]
sys.argv = ["gen_corpus.py"]
src = open("tests/tokenizer/gen_corpus.py", encoding="utf-8").read().replace("\nmain()\n", "\n")
g = {"__name__": "bench"}
exec(compile(src, "gen_corpus.py", "exec"), g)
rng = random.Random(1)
prose = []
size = 0
while size < 1 << 20:
    s = g["prose"](rng) + rng.choice([". ", ".\n", "\n\n", ", "])
    prose.append(s)
    size += len(s.encode())
open(work + "/prose.txt", "w", encoding="utf-8", newline="").write("".join(prose))
mixed = []
size = 0
for s in g["gen_text"](100000):
    mixed.append(s)
    size += len(s.encode())
    if size >= 1 << 20:
        break
open(work + "/mixed.txt", "w", encoding="utf-8", newline="").write("\n".join(mixed))
EOF
for f in prose mixed; do
    echo "== $f.txt ($(wc -c <"$work/$f.txt") bytes)"
    for i in 1 2 3; do "$root/bin/zturbo" tokenize --tokenizer "$tok" --raw --time <"$work/$f.txt" >/dev/null; done 2>&1 |
        sed 's/^/ours (C, 1 thread):  /'
    "$py" - "$tok" "$work/$f.txt" <<'EOF'
import sys, time
import tokenizers
t0 = time.perf_counter(); tok = tokenizers.Tokenizer.from_file(sys.argv[1]); t_load = time.perf_counter() - t0
text = open(sys.argv[2], encoding="utf-8", newline="").read()
nbytes = len(text.encode())
best = None
for _ in range(3):
    t0 = time.perf_counter(); ids = tok.encode(text, add_special_tokens=False).ids; dt = time.perf_counter() - t0
    best = dt if best is None or dt < best else best
print("HF %s encode(1 text): load %.1f ms; %d bytes -> %d ids in %.1f ms (%.2f M ids/s, %.1f MB/s)"
      % (tokenizers.__version__, t_load * 1e3, nbytes, len(ids), best * 1e3, len(ids) / best / 1e6, nbytes / best / 1e6))
lines = text.split("\n")
t0 = time.perf_counter(); enc = tok.encode_batch(lines, add_special_tokens=False); dt = time.perf_counter() - t0
n = sum(len(e.ids) for e in enc)
print("HF encode_batch(%d lines, all cores): %d ids in %.1f ms (%.2f M ids/s)" % (len(lines), n, dt * 1e3, n / dt / 1e6))
EOF
done
