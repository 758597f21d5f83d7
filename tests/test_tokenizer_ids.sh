#!/usr/bin/env bash
# tests/test_tokenizer_ids.sh — tokenizer exactness offline: `zturbo tokenize` on a fixed corpus
# (gen_corpus.py: 2,000 texts plain and --chat, 500 invalid-UTF-8 lines plain and --chat, every
# 200th line of the all-code-points sweep) must print exactly the ids committed in
# tests/tokenizer/expected/ (made by Hugging Face `tokenizers` 0.23.3 with make_expected.py).
# Needs python3 (stdlib) only; tests/test_tokenizer_exact.sh is the larger live comparison.
set -u
root=${ZT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
bin=${ZT_BIN:-$root/bin}
cd "$root" || exit 2
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
tokjson=tests/data/qwen3-tokenizer/tokenizer.json
exp=tests/tokenizer/expected
work=build/test-tmp/tokenizer-ids
rm -rf "$work" && mkdir -p "$work" || exit 1
python3 tests/tokenizer/gen_corpus.py text 2000 >"$work/text.jsonl" || exit 1
python3 tests/tokenizer/gen_corpus.py bytes 500 >"$work/bytes.txt" || exit 1
python3 tests/tokenizer/gen_corpus.py sweep | awk 'NR % 200 == 1' >"$work/sweep.jsonl" || exit 1
fail=0
run() { # name, corpus, zturbo flags...
    local name=$1 corpus=$2; shift 2
    if ! "$bin/zturbo" tokenize --tokenizer "$tokjson" "$@" <"$corpus" >"$work/$name.out"; then
        echo "FAIL $name: zturbo tokenize failed"; fail=1; return
    fi
    # ours: a JSON array (--jsonl) or space-separated ids per line -> space-separated
    python3 - "$work/$name.out" "$exp/$name.ids.gz" "$name" <<'PY' || fail=1
import gzip, json, sys
ours_path, exp_path, name = sys.argv[1:]
ours = []
for line in open(ours_path, encoding="utf-8"):
    line = line.rstrip("\n")
    ours.append(" ".join(map(str, json.loads(line))) if line.startswith("[") else " ".join(line.split()))
exp = gzip.open(exp_path, "rt", encoding="utf-8").read().split("\n")[:-1]
bad = [i for i in range(max(len(ours), len(exp))) if i >= len(ours) or i >= len(exp) or ours[i] != exp[i]]
for i in bad[:5]:
    print("  line %d: ours %s | expected %s" % (i + 1, (ours[i] if i < len(ours) else "<none>")[:120],
                                                (exp[i] if i < len(exp) else "<none>")[:120]))
print("%s %s: %d/%d lines identical" % ("ok  " if not bad else "FAIL", name, len(exp) - len(bad), len(exp)))
sys.exit(1 if bad else 0)
PY
}
run text "$work/text.jsonl" --jsonl
run text-chat "$work/text.jsonl" --jsonl --chat
run bytes "$work/bytes.txt"
run bytes-chat "$work/bytes.txt" --chat
run sweep "$work/sweep.jsonl" --jsonl
exit $fail
