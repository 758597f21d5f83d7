#!/usr/bin/env python3
"""Generate api/tokenizer_unicode.c: the Unicode data the Qwen3 tokenizer needs,
in the exact Unicode versions the reference (Hugging Face `tokenizers` 0.23) uses.

Why two versions (both measured against the reference, see tests/tokenizer/README.md):
  * The pre-tokenizer regex runs in Oniguruma 6.9.10 (crate onig_sys), whose
    \\p{L}, \\p{N} and \\s follow Unicode 16.0: General_Category L*/N* and the
    White_Space property.
  * The NFC normalizer is the crate unicode-normalization-alignments 0.1.12, whose
    tables are Unicode 9.0: code points assigned later have ccc 0, no decomposition
    and take part in no composition.
Neither Debian's utf8proc 2.8 (Unicode 15.0) nor pcre2 10.42 (Unicode 14.0) matches.

Source of the data: the PyPI package unicodedata2==16.0.0 (Unicode 16.0 UCD). The
Unicode 9.0 view of normalization is the 16.0 data restricted to code points that
already had their normalization properties in 9.0: by the Unicode normalization
stability policy, decomposition mappings, canonical combining classes and composition
exclusions of assigned characters never change, so the only difference is the list
POST9 below (assigned after 9.0 with a non-trivial ccc or decomposition), obtained by
comparing unicodedata2 9.0.0 with 16.0.0 code point by code point.

Usage:  python3 -m pip install --target DIR unicodedata2==16.0.0
        PYTHONPATH=DIR python3 tests/tokenizer/gen_unicode_tables.py > api/tokenizer_unicode.c
"""
import sys

import unicodedata2 as ud

if ud.unidata_version != "16.0.0":
    sys.exit("need unicodedata2 16.0.0, have %s" % ud.unidata_version)

# Code points whose ccc or canonical decomposition is non-trivial in Unicode 16.0 and
# which were assigned after Unicode 9.0 (ranges inclusive).
POST9_RANGES = [
    (0x7FD, 0x7FD), (0x897, 0x89F), (0x8CA, 0x8D3), (0x9FE, 0x9FE), (0xC3C, 0xC3C),
    (0xD3B, 0xD3C), (0xEBA, 0xEBA), (0x1715, 0x1715), (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFA),
    (0x32FF, 0x32FF), (0xA7F2, 0xA7F4), (0xA82C, 0xA82C), (0xAB69, 0xAB69),
    (0x105C9, 0x105C9), (0x105E4, 0x105E4), (0x10781, 0x10785), (0x10787, 0x107B0),
    (0x107B2, 0x107BA), (0x10D24, 0x10D27), (0x10D69, 0x10D6D), (0x10EAB, 0x10EAC),
    (0x10EFD, 0x10EFF), (0x10F46, 0x10F50), (0x10F82, 0x10F85), (0x11070, 0x11070),
    (0x1133B, 0x1133B), (0x11383, 0x11383), (0x11385, 0x11385), (0x1138E, 0x1138E),
    (0x11391, 0x11391), (0x113C5, 0x113C5), (0x113C7, 0x113C8), (0x113CE, 0x113D0),
    (0x1145E, 0x1145E), (0x11839, 0x1183A), (0x11938, 0x11938), (0x1193D, 0x1193E),
    (0x11943, 0x11943), (0x119E0, 0x119E0), (0x11A34, 0x11A34), (0x11A47, 0x11A47),
    (0x11A99, 0x11A99), (0x11D42, 0x11D42), (0x11D44, 0x11D45), (0x11D97, 0x11D97),
    (0x11F41, 0x11F42), (0x16121, 0x16128), (0x1612F, 0x1612F), (0x16D68, 0x16D6A),
    (0x16FF0, 0x16FF1), (0x1CCD6, 0x1CCF9), (0x1E030, 0x1E06D), (0x1E08F, 0x1E08F),
    (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF), (0x1E4EC, 0x1E4EF),
    (0x1E5EE, 0x1E5EF), (0x1F16C, 0x1F16C), (0x1FBF0, 0x1FBF9),
]
POST9 = set()
for lo, hi in POST9_RANGES:
    POST9.update(range(lo, hi + 1))

# PropList.txt White_Space (unchanged since Unicode 6.3).
WHITE_SPACE = set(range(0x9, 0xE)) | {0x20, 0x85, 0xA0, 0x1680} | set(range(0x2000, 0x200B)) \
    | {0x2028, 0x2029, 0x202F, 0x205F, 0x3000}

NCP = 0x110000
HANGUL_S0, HANGUL_SN = 0xAC00, 11172
HANGUL_V = range(0x1161, 0x1176)
HANGUL_T = range(0x11A8, 0x11C3)

CLASS_L, CLASS_N, CLASS_WS, CLASS_NFC = 1, 2, 4, 8


def is_char(cp):
    return not (0xD800 <= cp < 0xE000)


def ccc9(cp):
    return 0 if cp in POST9 or not is_char(cp) else ud.combining(chr(cp))


def canon9(cp):
    """Unicode 9.0 canonical decomposition mapping (one level), [] if none/compat."""
    if cp in POST9 or not is_char(cp):
        return []
    d = ud.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return []
    return [int(x, 16) for x in d.split()]


def full9(cp):
    m = canon9(cp)
    if not m:
        return [cp]
    out = []
    for x in m:
        out.extend(full9(x))
    return out


# Primary composites: two-code-point canonical mappings not excluded from composition
# (an excluded one does not survive NFC on its own).
pairs = {}
for cp in range(NCP):
    m = canon9(cp)
    if len(m) == 2 and ud.normalize("NFC", chr(cp)) == chr(cp):
        pairs[(m[0], m[1])] = cp
seconds = {b for (_, b) in pairs} | set(HANGUL_V) | set(HANGUL_T)


def nfc_stable_boundary(cp):
    """True when cp passes through NFC unchanged whatever surrounds it on the left and
    nothing on its left can combine across it: ccc 0, NFC(cp) == cp, not the second
    of a composition, and its decomposition does not start with such a second."""
    if not is_char(cp):
        return True
    if ccc9(cp) != 0 or cp in seconds:
        return False
    if HANGUL_S0 <= cp < HANGUL_S0 + HANGUL_SN:
        return True
    if cp not in POST9 and ud.normalize("NFC", chr(cp)) != chr(cp):
        return False
    return full9(cp)[0] not in seconds


classes = bytearray(NCP)
for cp in range(NCP):
    v = 0
    if is_char(cp):
        cat = ud.category(chr(cp))
        if cat[0] == "L":
            v |= CLASS_L
        elif cat[0] == "N":
            v |= CLASS_N
    if cp in WHITE_SPACE:
        v |= CLASS_WS
    if not nfc_stable_boundary(cp):
        v |= CLASS_NFC
    classes[cp] = v

# Two-level class table, blocks of 128 code points.
BLOCK = 128
blocks, index = {}, []
for b in range(NCP // BLOCK):
    key = bytes(classes[b * BLOCK:(b + 1) * BLOCK])
    if key not in blocks:
        blocks[key] = len(blocks)
    index.append(blocks[key])
block_list = sorted(blocks, key=blocks.get)

# ccc ranges (Unicode 9.0).
ccc_ranges = []
for cp in range(NCP):
    c = ccc9(cp)
    if c == 0:
        continue
    if ccc_ranges and ccc_ranges[-1][1] == cp - 1 and ccc_ranges[-1][2] == c:
        ccc_ranges[-1][1] = cp
    else:
        ccc_ranges.append([cp, cp, c])

# Full canonical decompositions (Hangul excluded: algorithmic).
decomp = []
decomp_data = []
for cp in range(NCP):
    if HANGUL_S0 <= cp < HANGUL_S0 + HANGUL_SN or not canon9(cp):
        continue
    f = full9(cp)
    assert 1 <= len(f) <= 4
    decomp.append((cp, len(decomp_data), len(f)))
    decomp_data.extend(f)

comp = sorted((a, b, c) for (a, b), c in pairs.items())


print("/* api/tokenizer_unicode.c — GENERATED by tests/tokenizer/gen_unicode_tables.py")
print(" * from unicodedata2 %s; do not edit. See that script for the provenance:" % ud.unidata_version)
print(" * classes L/N/White_Space follow Unicode 16.0 (Oniguruma in tokenizers 0.23),")
print(" * NFC data follows Unicode 9.0 (unicode-normalization-alignments 0.1.12). */")
print('#include "api/tokenizer.h"')
print()
print("/* Class bits per code point: 1 = \\p{L}, 2 = \\p{N}, 4 = White_Space,")
print(" * 8 = not an NFC boundary (needs the full normalization path). */")
print("#define BLK %d" % BLOCK)
ityp = "uint8_t" if len(block_list) <= 256 else "uint16_t"
print("static const %s k_class_index[%d] = {" % (ityp, len(index)))
for i in range(0, len(index), 24):
    print("    " + ",".join("%d" % v for v in index[i:i + 24]) + ",")
print("};")
print("static const uint8_t k_class_blocks[%d][BLK] = {" % len(block_list))
for blk in block_list:
    print("    {" + ",".join("%d" % v for v in blk) + "},")
print("};")
print()
print("unsigned zt_tok_uclass(uint32_t cp) {")
print("    if (cp >= 0x110000u) return 0;")
print("    return k_class_blocks[k_class_index[cp / BLK]][cp % BLK];")
print("}")
print()
print("/* Canonical combining classes: [first, last, ccc], sorted. */")
print("static const uint32_t k_ccc[%d][3] = {" % len(ccc_ranges))
for i in range(0, len(ccc_ranges), 6):
    print("    " + " ".join("{0x%X,0x%X,%d}," % tuple(r) for r in ccc_ranges[i:i + 6]))
print("};")
print()
print("unsigned zt_tok_ccc(uint32_t cp) {")
print("    size_t lo = 0, hi = sizeof k_ccc / sizeof k_ccc[0];")
print("    while (lo < hi) {")
print("        size_t mid = (lo + hi) / 2;")
print("        if (cp < k_ccc[mid][0]) hi = mid;")
print("        else if (cp > k_ccc[mid][1]) lo = mid + 1;")
print("        else return k_ccc[mid][2];")
print("    }")
print("    return 0;")
print("}")
print()
print("/* Full canonical decompositions (Hangul syllables are algorithmic):")
print(" * [code point, offset in k_decomp_data, length]. */")
print("static const uint32_t k_decomp[%d][3] = {" % len(decomp))
for i in range(0, len(decomp), 6):
    print("    " + " ".join("{0x%X,%d,%d}," % r for r in decomp[i:i + 6]))
print("};")
print("static const uint32_t k_decomp_data[%d] = {" % len(decomp_data))
for i in range(0, len(decomp_data), 10):
    print("    " + ", ".join("0x%X" % v for v in decomp_data[i:i + 10]) + ",")
print("};")
print()
print("const uint32_t *zt_tok_decomp(uint32_t cp, unsigned *n) {")
print("    size_t lo = 0, hi = sizeof k_decomp / sizeof k_decomp[0];")
print("    while (lo < hi) {")
print("        size_t mid = (lo + hi) / 2;")
print("        if (cp < k_decomp[mid][0]) hi = mid;")
print("        else if (cp > k_decomp[mid][0]) lo = mid + 1;")
print("        else { *n = k_decomp[mid][2]; return k_decomp_data + k_decomp[mid][1]; }")
print("    }")
print("    *n = 0;")
print("    return NULL;")
print("}")
print()
print("/* Primary composites (Hangul excluded): [first, second, composite], sorted. */")
print("static const uint32_t k_comp[%d][3] = {" % len(comp))
for i in range(0, len(comp), 6):
    print("    " + " ".join("{0x%X,0x%X,0x%X}," % r for r in comp[i:i + 6]))
print("};")
print()
print("uint32_t zt_tok_compose(uint32_t a, uint32_t b) {")
print("    size_t lo = 0, hi = sizeof k_comp / sizeof k_comp[0];")
print("    while (lo < hi) {")
print("        size_t mid = (lo + hi) / 2;")
print("        if (a < k_comp[mid][0] || (a == k_comp[mid][0] && b < k_comp[mid][1])) hi = mid;")
print("        else if (a > k_comp[mid][0] || b > k_comp[mid][1]) lo = mid + 1;")
print("        else return k_comp[mid][2];")
print("    }")
print("    return 0;")
print("}")
print("", file=sys.stderr)
print("blocks %d, ccc ranges %d, decompositions %d (%d code points), compositions %d"
      % (len(block_list), len(ccc_ranges), len(decomp), len(decomp_data), len(comp)), file=sys.stderr)
