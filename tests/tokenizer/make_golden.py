#!/usr/bin/env python3
"""Write tests/tokenizer/chat_golden.jsonl: the chat-formatted text and the token ids of
the six prompts of spec §5.4, produced by the oracles:
  * the text: the Qwen3 chat template of tokenizer_config.json rendered by jinja2 the way
    transformers' apply_chat_template does (trim_blocks, lstrip_blocks, one user message,
    add_generation_prompt=True, enable_thinking=True);
  * the ids: Hugging Face `tokenizers` on that text (add_special_tokens=False; the
    ByteLevel post-processor adds nothing either way), first 512 kept.
The ids are also checked against those printed in the spec.

Usage (needs `tokenizers` and `jinja2`):
  python3 tests/tokenizer/make_golden.py tests/data/qwen3-tokenizer > tests/tokenizer/chat_golden.jsonl
"""
import json
import sys

import jinja2
import jinja2.sandbox
import tokenizers

PROMPTS = [
    "a cat",
    "A photo of an astronaut riding a horse on the moon, 4k, highly detailed.",
    "一只可爱的小猫坐在窗台上，阳光明媚。",
    "",
    "Price: $1234.56 -- it's 'quoted'  \n\n  tabs\there    end   ",
    # inference.py's default prompt (spec §5.4 example 6, recovered by decoding its 101 ids)
    "Young Chinese woman in red Hanfu, intricate embroidery. Impeccable makeup, red floral forehead "
    "pattern. Elaborate high bun, golden phoenix headdress, red flowers, beads. Holds round folding fan "
    "with lady, trees, bird. Neon lightning-bolt lamp (\u26a1\ufe0f), bright yellow glow, above extended "
    "left palm. Soft-lit outdoor night background, silhouetted tiered pagoda (\u897f\u5b89\u5927\u96c1"
    "\u5854), blurred colorful distant lights.",
]

SPEC_IDS = {
    0: [151644, 872, 198, 64, 8251, 151645, 198, 151644, 77091, 198],
    1: [151644, 872, 198, 32, 6548, 315, 458, 46633, 19837, 264, 15223, 389, 279, 17788, 11, 220, 19, 74, 11,
        7548, 11682, 13, 151645, 198, 151644, 77091, 198],
    2: [151644, 872, 198, 102292, 102783, 104006, 100472, 104427, 100237, 108141, 3837, 104166, 117716, 1773,
        151645, 198, 151644, 77091, 198],
    3: [151644, 872, 198, 151645, 198, 151644, 77091, 198],
    4: [151644, 872, 198, 6972, 25, 400, 16, 17, 18, 19, 13, 20, 21, 1177, 432, 594, 364, 63725, 6, 18611, 220,
        22398, 197, 6739, 262, 835, 262, 151645, 198, 151644, 77091, 198],
}


def main():
    d = sys.argv[1]
    tok = tokenizers.Tokenizer.from_file(d + "/tokenizer.json")
    template = json.load(open(d + "/tokenizer_config.json", encoding="utf-8"))["chat_template"]
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    tmpl = env.from_string(template)
    for i, p in enumerate(PROMPTS):
        text = tmpl.render(messages=[{"role": "user", "content": p}], add_generation_prompt=True,
                           enable_thinking=True)
        assert text == "<|im_start|>user\n" + p + "<|im_end|>\n<|im_start|>assistant\n", repr(text)
        ids = tok.encode(text, add_special_tokens=False).ids[:512]
        if i in SPEC_IDS:
            assert ids == SPEC_IDS[i], (i, ids)
        if i == 5:
            assert len(ids) == 101, len(ids)
        print(json.dumps({"prompt": p, "text": text, "ids": ids}, ensure_ascii=True))
    print("tokenizers %s, jinja2 %s" % (tokenizers.__version__, jinja2.__version__), file=sys.stderr)


main()
