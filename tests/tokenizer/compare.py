#!/usr/bin/env python3
"""Compare `zturbo tokenize` output with Hugging Face `tokenizers` (the oracle).

  compare.py TOKENIZER_JSON CORPUS OURS [--bytes] [--chat] [--label NAME]

CORPUS: JSON-string lines (gen_corpus.py text/sweep) or, with --bytes, raw byte lines
decoded here with errors="replace" (one U+FFFD per maximal invalid subsequence, the
rule of Rust's from_utf8_lossy that the C tokenizer follows).
OURS: one line per corpus line, the JSON array (`--jsonl`) or space-separated ids.
--chat: the oracle encodes "<|im_start|>user\\n" + text + "<|im_end|>\\n<|im_start|>assistant\\n"
and keeps the first 512 ids (what `--chat` must print).
Prints "LABEL: N/N identical" and the first mismatches; exit 1 on any mismatch.
"""
import json
import sys

import tokenizers


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    label = "corpus"
    if "--label" in sys.argv:
        label = sys.argv[sys.argv.index("--label") + 1]
        args.remove(label)
    tok_path, corpus_path, ours_path = args
    tok = tokenizers.Tokenizer.from_file(tok_path)
    if "--bytes" in flags:
        raw = open(corpus_path, "rb").read().split(b"\n")
        if raw and raw[-1] == b"":
            raw.pop()
        texts = [b.decode("utf-8", errors="replace") for b in raw]
    else:
        texts = [json.loads(line) for line in open(corpus_path, encoding="utf-8")]
    chat = "--chat" in flags
    if chat:
        texts = ["<|im_start|>user\n" + t + "<|im_end|>\n<|im_start|>assistant\n" for t in texts]
    expect = [e.ids[:512] if chat else e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    ours = []
    for line in open(ours_path, encoding="utf-8"):
        line = line.rstrip("\n")
        ours.append(json.loads(line) if line.startswith("[") else [int(x) for x in line.split()])
    bad = 0
    if len(ours) != len(expect):
        print("%s: %d output lines for %d inputs" % (label, len(ours), len(expect)))
        bad = max(1, abs(len(ours) - len(expect)))
    for i, (o, e) in enumerate(zip(ours, expect)):
        if o != e:
            bad += 1
            if bad <= 10:
                k = next((j for j in range(min(len(o), len(e))) if o[j] != e[j]), min(len(o), len(e)))
                print("MISMATCH line %d: text %s" % (i + 1, ascii(texts[i][:200])))
                print("  first difference at id %d: ours %s, reference %s" % (k, o[k:k + 8], e[k:k + 8]))
                print("  reference pieces near there: %s" % ascii([tok.id_to_token(x) for x in e[max(0, k - 2):k + 6]]))
    n = len(expect)
    print("%s: %d/%d identical (tokenizers %s)" % (label, n - bad if bad <= n else 0, n, tokenizers.__version__))
    sys.exit(1 if bad else 0)


main()
