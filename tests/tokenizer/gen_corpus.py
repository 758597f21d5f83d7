#!/usr/bin/env python3
"""Deterministic corpus for the tokenizer exactness test (stdlib only).

  gen_corpus.py text  [N]   JSON-string lines: N varied texts (default 12000)
  gen_corpus.py sweep       JSON-string lines: every Unicode scalar value, each in a
                            few regex/NFC contexts, 48 code points per line
  gen_corpus.py bytes [N]   raw byte lines (no LF inside): invalid UTF-8 mixed with
                            text, for the U+FFFD replacement rule

Categories of `text`: ASCII prose, code, numbers with long digit runs, CJK, other
scripts (Arabic, Hebrew, Devanagari, Thai, Cyrillic, Greek...), emoji with modifiers,
ZWJ sequences, flags and keycaps, combining marks that NFC reorders/composes
(including Hangul jamo and the marks whose NFC data changed after Unicode 9.0),
whitespace runs with CR/LF/tabs/exotic spaces, upper-case contractions, the added
tokens (complete, partial, adjacent), random code points, long pieces and
control characters. The code point pools are explicit ranges, so the corpus does not
depend on the Unicode version of the Python that runs this script.
"""
import json
import random
import sys

SEED = 20251127

WORDS = ("the a an of and to in is was he she it they we you for on with as at by from this that "
         "photo portrait cat dog horse astronaut moon city night light shadow red blue green golden "
         "woman man child old young river mountain forest ocean sky cloud rain snow street market "
         "painting style detailed highly cinematic lighting bokeh sharp focus 8k render octane unreal "
         "engine watercolor oil sketch anime realistic dramatic soft warm cold neon glow silhouette "
         "I you don't can't won't it's we're they've I'm we'll she'd Let's o'clock rock'n'roll "
         "café naïve résumé façade Zürich São Paulo Ångström ﬁle ﬂower").split()

CODE = [
    "def f(x):\n    return x ** 2 + 1\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}\n",
    "if x != None and y >= 10:\n    print(f\"{x!r} -> {y:08.3f}\")",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name DESC;",
    "const re = /^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)$/i;",
    "<div class=\"hero\"><img src=\"a.png\" alt=\"A cat\"/></div>",
    "x = [i for i in range(100) if i % 3 == 0]  # comment\r\n",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "$ ls -la | grep '^d' && echo \"done\" >> log.txt 2>&1",
    "    \t  mixed_indent = {'a': 1, \"b\": [2, 3], 'c': None}",
    "a+=1;b-=2;c*=3;d/=4;e%=5;f<<=6;g>>=7;h&=8;i|=9;j^=10;",
    "@@ -1,5 +1,7 @@\n-old line\n+new line\n context",
    "{\"key\": \"value\", \"n\": -1.5e+10, \"ok\": true, \"null\": null}",
]

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
           "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
           "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
           "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
           "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>"]
PARTIAL = ["<|im_start", "im_end|>", "<|im_end|", "<|", "|>", "<think", "think>", "</think", "<|IM_START|>",
           "<| im_end |>", "<<|im_end|>>", "<|endoftext|><|endoftext|>", "<tool_call></tool_call>", "< think>"]

WS = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\n ", "\t\t", " \t ", "\x0b", "\x0c",
      "\u00a0", "\u3000", "\u2003", "\u2009", "\u0085", "\u2028", "\u2029", "\u1680", "\u202f", "\u205f",
      "\u200b", "\u180e", "\ufeff", "\x1c", "\x1d", "\x1e", "\x1f", "\r\r\n", "  \r\n  ", "\n\t\n"]

CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'vE", "'m", "'M", "'ll",
                "'LL", "'lL", "'Ll", "'d", "'D", "'\u017f", "'\u017fa", "'\u212a", "'x", "''", "'", "'1",
                "DON'T", "I'M", "WE'LL", "SHE'D", "THEY'RE", "YOU'VE", "IT'S", "O'NEIL", "'sss", "'ss'", "' s"]

# Code point pools: (first, last) inclusive.
SCRIPTS = {
    "latin": [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)],
    "greek": [(0x370, 0x3FF), (0x1F00, 0x1FFF)],
    "cyrillic": [(0x400, 0x4FF)],
    "armenian_hebrew": [(0x531, 0x58A), (0x591, 0x5F4)],
    "arabic": [(0x600, 0x6FF), (0x750, 0x77F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFC)],
    "indic": [(0x900, 0x97F), (0x980, 0x9FF), (0xA00, 0xA7F), (0xB80, 0xBFF), (0xC00, 0xCFF), (0xD00, 0xD7F)],
    "thai_lao_tibetan": [(0xE00, 0xE7F), (0xE80, 0xEFF), (0xF00, 0xFFF)],
    "georgian_ethiopic": [(0x10A0, 0x10FF), (0x1200, 0x137F)],
    "cjk": [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x3040, 0x30FF), (0x3000, 0x303F), (0xFF00, 0xFFEF),
            (0x20000, 0x2A6DF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)],
    "hangul": [(0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F)],
    "symbols": [(0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x23FF), (0x2500, 0x27BF),
                (0x2E00, 0x2E7F), (0x1D400, 0x1D7FF), (0x2150, 0x218F), (0xB0, 0xBF)],
    "emoji": [(0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF),
              (0x2600, 0x26FF), (0x1FA70, 0x1FAFF)],
    "combining": [(0x300, 0x36F), (0x483, 0x489), (0x591, 0x5BD), (0x610, 0x61A), (0x64B, 0x65F),
                  (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F), (0x93C, 0x94D)],
    "numbers": [(0x30, 0x39), (0x660, 0x669), (0x6F0, 0x6F9), (0x966, 0x96F), (0xFF10, 0xFF19), (0xB2, 0xB3),
                (0xB9, 0xB9), (0xBC, 0xBE), (0x2150, 0x2189), (0x2460, 0x249B), (0x1D7CE, 0x1D7FF),
                (0x3007, 0x3007), (0x10107, 0x10133), (0x1F100, 0x1F10C)],
    "newer": [(0x1C80, 0x1C8A), (0xA7C0, 0xA7DC), (0x10D40, 0x10D8F), (0x11F00, 0x11F59), (0x2EBF0, 0x2EE5D),
              (0x31350, 0x323AF), (0x1E4D0, 0x1E4F9), (0x1E5D0, 0x1E5FF), (0x16D40, 0x16D79),
              (0x1CCD6, 0x1CCF9), (0x0897, 0x089F), (0x08CA, 0x08D3), (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFA),
              (0x11938, 0x11943), (0x113B8, 0x113D0)],
    "private_unassigned": [(0xE000, 0xE0FF), (0xF0000, 0xF00FF), (0x50000, 0x500FF), (0xE0000, 0xE007F),
                           (0xFDD0, 0xFDEF), (0xFFFE, 0xFFFF), (0x10FFF0, 0x10FFFF), (0x2FFFE, 0x2FFFF)],
}

# Sequences whose NFC differs from the input, or that NFC must leave alone.
NFC_CASES = ["e\u0301", "E\u0301", "a\u0301\u0323", "a\u0323\u0301", "o\u0302\u0303", "u\u0308\u0304",
             "\u212b", "\u2126", "\u212a", "\u0958", "\u0344", "\u1f82", "\u03b1\u0313\u0300\u0345",
             "\u1100\u1161", "\u1100\u1161\u11a8", "\uac00\u11a8", "\uac01\u11a8", "\u1100\u1161\u11a8\u11a8",
             "\u0b47\u0b3e", "\u0b47\u0b57", "\u0cc6\u0cc2\u0cd5", "\u0dd9\u0dcf\u0dca", "\u1025\u102e",
             "e\u034f\u0301", "e\u0301\u034f\u0301", "\u00e9\u0323", "\u1ec7", "\u1e63\u0307", "s\u0323\u0307",
             "s\u0307\u0323", "\u0041\u030a", "\u00c5\u0301", "q\u0307\u0323", "\u05e9\u05bc\u05c1", "\ufb2c",
             "\u0915\u093c", "\u0929", "\u09c7\u09be", "\u0bc6\u0bbe", "\u0d46\u0d3e", "\u1b05\u1b35",
             "\U000110a5\U000110ba", "\U00011131\U00011127", "\U0001d15e", "\U0001d160", "\U0001d1bb",
             "a\u07fd\u0301", "a\u0301\u07fd", "a\u0899\u0301", "a\u0c3c\u0301", "a\u1abf\u0316\u0301",
             "\U00011935\U00011930", "\U00011938", "\U0001611e\U0001611e", "\U0001611e\U00016129",
             "\u0627\u0653", "\u0627\u0654", "\u0648\u0654", "\u064a\u0654", "\u06d5\u0654", "\u0301a", "\u0301",
             "\u0345\u0301\u0300", "\u1100", "\u1161", "\u11a8", "\uac00", "\ud7a3", "\u3131\u314f"]

EMOJI_SEQ = ["\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F44D\U0001F3FD",
             "\U0001F3F3\ufe0f\u200d\U0001F308", "\U0001F1EF\U0001F1F5", "\U0001F1FA\U0001F1F8\U0001F1E9\U0001F1EA",
             "1\ufe0f\u20e3", "#\ufe0f\u20e3", "\u2764\ufe0f", "\u26a1\ufe0f", "\U0001F9D1\U0001F3FF\u200d\U0001F680",
             "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "\u263a\ufe0e",
             "\U0001F469\u200d\u2764\ufe0f\u200d\U0001F48B\u200d\U0001F468", "\U0001F600" * 5, "\u200d", "\ufe0f"]

ARABIC = ["مرحبا بالعالم", "القطة الجميلة تجلس على النافذة", "سلامٌ عَلَيْكُمْ", "١٢٣٤٥٦٧٨٩٠", "ﻻ ﷲ ﷺ"]
OTHER = ["Привет, мир! Ёжик в тумане.", "Γειά σου Κόσμε· ἀρχή", "שלום עולם", "नमस्ते दुनिया १२३",
         "สวัสดีชาวโลก ๑๒๓", "こんにちは、世界！カタカナｶﾀｶﾅ", "안녕하세요 세계", "ሰላም ልዑል", "Բարեւ աշխարհ",
         "გამარჯობა", "Xin chào thế giới", "Ça va? Größe straße ǅ ǈ ǋ ǲ", "İstanbul ıi", "ﬁﬂﬀ ﬃ ﬄ ﬅ ﬆ",
         "𝐀𝐁𝐂 𝟎𝟏𝟐 ℌℑℜ", "Ⅻ ⅻ ↁ 〇 〡〢", "½ ¾ ⅓ ² ³ ¹ ⁴ ₅", "①②③ ⑴⑵ ⒈⒉", "一二三四五六七八九十百千万亿"]


def pick_cp(rng, pool):
    lo, hi = rng.choice(SCRIPTS[pool])
    cp = rng.randint(lo, hi)
    if 0xD800 <= cp < 0xE000:
        cp = 0xFFFD
    return chr(cp)


def rand_run(rng, pool, n):
    return "".join(pick_cp(rng, pool) for _ in range(n))


def prose(rng):
    words = []
    for _ in range(rng.randint(1, 40)):
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.1:
            w = w.upper()
        elif r < 0.25:
            w = w.capitalize()
        words.append(w)
        if rng.random() < 0.15:
            words.append(rng.choice([",", ".", "!", "?", ";", ":", " -", "—", "...", "\"", "(", ")"]))
    return rng.choice([" ", " ", " ", "  "]).join(words) if rng.random() < 0.3 else " ".join(words)


def numbers(rng):
    parts = []
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        if r < 0.3:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 60))))
        elif r < 0.45:
            parts.append("%d.%0*d" % (rng.randint(0, 99999), rng.randint(1, 9), rng.randint(0, 999)))
        elif r < 0.55:
            parts.append("{:,}".format(rng.randint(0, 10 ** 12)))
        elif r < 0.65:
            parts.append(rng.choice(["4k", "8K", "1920x1080", "3.14e-10", "-0.5", "+1", "v2.1.0", "0x1F", "#ff00aa",
                                     "100%", "$1,234.56", "€9,99", "¥1000", "2025-11-27T03:00:00Z", "12:30pm"]))
        else:
            parts.append(rand_run(rng, "numbers", rng.randint(1, 12)))
        parts.append(rng.choice([" ", "", ", ", "-", "/", "\n", "x"]))
    return "".join(parts)


def script_text(rng):
    r = rng.random()
    if r < 0.25:
        return rng.choice(ARABIC + OTHER) + rng.choice(["", " ", "\n"]) + rng.choice(ARABIC + OTHER)
    pools = ["latin", "greek", "cyrillic", "armenian_hebrew", "arabic", "indic", "thai_lao_tibetan",
             "georgian_ethiopic", "cjk", "hangul"]
    out = []
    for _ in range(rng.randint(1, 6)):
        out.append(rand_run(rng, rng.choice(pools), rng.randint(1, 25)))
        out.append(rng.choice([" ", "", "，", "。", ", ", "\n", "、", "！", "?", " 123 "]))
    return "".join(out)


def cjk(rng):
    out = []
    for _ in range(rng.randint(1, 10)):
        r = rng.random()
        if r < 0.5:
            out.append(rand_run(rng, "cjk", rng.randint(1, 30)))
        elif r < 0.7:
            out.append(rand_run(rng, "hangul", rng.randint(1, 10)))
        else:
            out.append(rng.choice(["，", "。", "、", "「", "」", "（", "）", "：", "！", "？", " ", "4K", "abc", "１２３"]))
    return "".join(out)


def emoji(rng):
    out = []
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        if r < 0.4:
            out.append(rng.choice(EMOJI_SEQ))
        elif r < 0.7:
            out.append(rand_run(rng, "emoji", rng.randint(1, 4)))
        else:
            out.append(rng.choice([" ", "a", "Hello ", "!", "\u200d", "\ufe0f", "\U0001F3FB", "\n", "1"]))
    return "".join(out)


def nfc_text(rng):
    out = []
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        if r < 0.5:
            out.append(rng.choice(NFC_CASES))
        elif r < 0.8:
            base = rng.choice("aeiouAEIOUnsczgkhwyqx\u0391\u03b1\u0415\u0438\u05d0\u0627\u0915\u1100\uac00 '1")
            out.append(base + rand_run(rng, "combining", rng.randint(1, 6)))
        else:
            out.append(rng.choice([" ", "word", "\n", ".", "x"]))
    return "".join(out)


def whitespace(rng):
    out = []
    for _ in range(rng.randint(1, 20)):
        r = rng.random()
        if r < 0.5:
            out.append("".join(rng.choice(WS) for _ in range(rng.randint(1, 5))))
        elif r < 0.8:
            out.append(rng.choice(WORDS))
        else:
            out.append(rng.choice(["1", "!", "...", "\u4e00", "'s", "é", "-", "(", "\U0001F600", "<|im_end|>"]))
    return "".join(out)


def contractions(rng):
    out = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.5:
            out.append(rng.choice(CONTRACTIONS))
        elif r < 0.8:
            out.append(rng.choice(WORDS).upper())
        else:
            out.append(rng.choice([" ", "", "\n", "'", "''", "\u2019", "`", "1", "\u00e9"]))
    return "".join(out)


def special(rng):
    out = []
    for _ in range(rng.randint(1, 10)):
        r = rng.random()
        if r < 0.45:
            out.append(rng.choice(SPECIAL))
        elif r < 0.6:
            out.append(rng.choice(PARTIAL))
        elif r < 0.9:
            out.append(rng.choice([prose, numbers, whitespace, cjk])(rng)[:40])
        else:
            out.append(rng.choice([" ", "\n", "", "user\n", "assistant\n", "  "]))
    return "".join(out)


def code(rng):
    out = [rng.choice(CODE) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        out.insert(rng.randint(0, len(out)), rng.choice(["    ", "\t", "\r\n", "\n\n\n", "  \n"]))
    return "".join(out)


def random_cps(rng):
    pools = list(SCRIPTS)
    return "".join(rand_run(rng, rng.choice(pools), rng.randint(1, 6)) + rng.choice(["", " ", "\n", "a", "1"])
                   for _ in range(rng.randint(1, 10)))


def control(rng):
    chars = [chr(c) for c in list(range(0, 0x20)) + list(range(0x7F, 0xA0))] + ["\u00ad", "\u200e", "\u2066", "\ufffd"]
    return "".join(rng.choice(chars + [" ", "a", "1", "."]) for _ in range(rng.randint(1, 30)))


def long_piece(rng):
    unit = rng.choice(["a", "ab", "Zz", "1", "12345", " ", "\t", "\n", "!", "!?", "é", "\u4e00", "\U0001F600",
                       "\u0301", "e\u0301", "'s", "<|", "ĠĠ", "\u00a0", "\r\n", " \n"])
    return unit * rng.randint(100, 6000) + rng.choice(["", " end", "x", "\n"])


GENERATORS = [(prose, 18), (code, 8), (numbers, 9), (cjk, 9), (script_text, 10), (emoji, 8), (nfc_text, 10),
              (whitespace, 9), (contractions, 7), (special, 8), (random_cps, 8), (control, 3)]


def gen_text(n):
    rng = random.Random(SEED)
    fixed = ["", " ", "\n", "a", "'", "'s", "<|im_start|>", "\u0301", "\u00e9", "é", "\r\n", "  ", "\t\t\n \n"]
    fixed += PARTIAL + SPECIAL + CONTRACTIONS + NFC_CASES + EMOJI_SEQ + ARABIC + OTHER + WS + CODE
    for s in fixed:
        yield s
    total = sum(w for _, w in GENERATORS)
    for i in range(max(0, n - len(fixed))):
        if i % 400 == 0:
            yield long_piece(rng)
            continue
        r = rng.randrange(total)
        for g, w in GENERATORS:
            if r < w:
                yield g(rng)
                break
            r -= w


def gen_sweep():
    """Every scalar value c in contexts that exercise each regex alternative and NFC."""
    line = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        line.append("a%s %s%s1'%s\t%s\n%s!x %s\u0301 " % (c, c, c, c, c, c, c))
        if len(line) == 48:
            yield "|".join(line)
            line = []
    if line:
        yield "|".join(line)


def gen_bytes(n):
    rng = random.Random(SEED + 1)
    bad = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xe0\x80\x80", b"\xe0\xa0", b"\xed\xa0\x80",
           b"\xed\xbf\xbf", b"\xef\xbf", b"\xf0\x80\x80\x80", b"\xf0\x90\x80", b"\xf4\x90\x80\x80", b"\xf5\x80",
           b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff", b"\xe2\x82", b"\xe2\x28\xa1", b"\xf0\x9f\x98", b"\xc3\x28",
           b"\xa0\xa1", b"\xe1\x80\x41", b"\xf1\x80\x80\x41"]
    good = ["a", " ", "cat", "é", "\u4e00", "\U0001F600", "'s", "<|im_end|>", "1", "\t", "\r", "e\u0301", "  "]
    for b in bad:
        yield b
    for _ in range(n - len(bad)):
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.35:
                parts.append(rng.choice(bad))
            elif r < 0.5:
                parts.append(bytes(rng.choice([x for x in range(256) if x != 10]) for _ in range(rng.randint(1, 6))))
            else:
                parts.append(rng.choice(good).encode())
        yield b"".join(parts)


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "text"
    out = sys.stdout
    if what == "text":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
        for s in gen_text(n):
            out.write(json.dumps(s, ensure_ascii=True) + "\n")
    elif what == "sweep":
        for s in gen_sweep():
            out.write(json.dumps(s, ensure_ascii=True) + "\n")
    elif what == "bytes":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
        w = sys.stdout.buffer
        for b in gen_bytes(n):
            assert b"\n" not in b
            w.write(b + b"\n")
    else:
        sys.exit("usage: gen_corpus.py text [N] | sweep | bytes [N]")


main()
