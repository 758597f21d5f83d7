/* kernels/wdecode_group.h — the arithmetic of decoding one group of 8
 * consecutive words of a coded tile (storage/wcode.h) with byte permutes
 * and no per-word branches: shared by the CUDA decoder's variants
 * (kernels/cuda_wdecode.cu) and a serial CPU model of them
 * (tests/test_wdecode_group.c), which checks it against the CPU decoder on
 * every machine.
 *
 * A group's 8 level-1 codes (16 bits) become 8 nibbles; a permute (PRMT,
 * __byte_perm) with those nibbles as selectors looks 4 exponents up in the
 * level-1 codebook at once. The group's level-1 escapes take consecutive
 * level-2 codes (3 bits each, <= 24 bits fetched with one funnel shift),
 * spread to nibbles the same way and looked up in the level-2 codebook;
 * code 7 marks a raw exponent, merged from the group's consecutive raw
 * bytes. An escape's rank within the group (how many escapes precede it)
 * is a prefix sum of one-bit flags per nibble, which one multiplication by
 * 0x11111110 computes for all 8 positions; a permute by those ranks puts
 * each escape's exponent at its word. Finally sign|mantissa bytes and
 * exponents interleave into bf16 words: 6 operations per 4 words.
 *
 * Clamps (the same as the CPU decoder's, storage/wcode.c): escape k of a
 * tile has a level-2 code only when k < b1 (else 0), a raw byte only when
 * its raw index is < b2 (else 0): `valid` counts below. Permute selectors
 * here never have bit 3 of a nibble set (no sign replication). */
#ifndef ZT_KERNELS_WDECODE_GROUP_H
#define ZT_KERNELS_WDECODE_GROUP_H

#include <stdint.h>

#include "storage/wcode.h"

#if defined(__CUDACC__)
#define WDG_FN __host__ __device__ static __forceinline__
#else
#define WDG_FN static inline
#endif

/* Bytes of (b:a) picked by the low 4 nibbles of s (values 0..7). */
WDG_FN uint32_t wdg_prmt(uint32_t a, uint32_t b, uint32_t s) {
#if defined(__CUDA_ARCH__)
    return __byte_perm(a, b, s);
#else
    const uint64_t v = (uint64_t)b << 32 | a;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        const uint32_t sel = (s >> (4 * i)) & 0xfu;
        uint32_t byte = (uint32_t)(v >> (8 * (sel & 7u))) & 0xffu;
        if (sel & 8u) byte = (byte & 0x80u) ? 0xffu : 0u; /* PRMT's sign mode: never used here */
        r |= byte << (8 * i);
    }
    return r;
#endif
}

WDG_FN uint32_t wdg_popc(uint32_t x) {
#if defined(__CUDA_ARCH__)
    return (uint32_t)__popc(x);
#else
    return (uint32_t)__builtin_popcount(x);
#endif
}

/* (hi:lo) >> (sh & 31), low 32 bits */
WDG_FN uint32_t wdg_fshr(uint32_t lo, uint32_t hi, uint32_t sh) {
#if defined(__CUDA_ARCH__)
    return __funnelshift_r(lo, hi, sh);
#else
    return (uint32_t)(((uint64_t)hi << 32 | lo) >> (sh & 31u));
#endif
}

/* 8 two-bit fields (bits 2i) -> nibble i */
WDG_FN uint32_t wdg_spread2(uint32_t c) {
    c &= 0xffffu;
    c = (c | c << 8) & 0x00ff00ffu;
    c = (c | c << 4) & 0x0f0f0f0fu;
    c = (c | c << 2) & 0x33333333u;
    return c;
}

/* 8 three-bit fields (bits 3i) -> nibble i */
WDG_FN uint32_t wdg_spread3(uint32_t q) {
    q = (q & 0x000fffu) | (q & 0xfff000u) << 4;
    q = (q & 0x003f003fu) | (q & 0x0fc00fc0u) << 2;
    q = (q & 0x07070707u) | (q & 0x38383838u) << 1;
    return q;
}

/* A chunk's codebook as permute tables: l1 = exponents of level-1 codes
 * 0..2 (byte 3: 0, a code-3 placeholder), l2a:l2b = those of level-2 codes
 * 0..6 (byte 7: 0, the raw placeholder). From the chunk's first 12 bytes,
 * little-endian words w0 w1 w2 (cb[0..9] then zeros). */
typedef struct {
    uint32_t l1, l2a, l2b;
} wdg_book;

WDG_FN wdg_book wdg_book_of(uint32_t w0, uint32_t w1, uint32_t w2) {
    wdg_book b;
    b.l1 = w0 & 0x00ffffffu;
    b.l2a = wdg_prmt(w0, w1, 0x6543u);
    b.l2b = wdg_prmt(w1, w2, 0x5543u) & 0x00ffffffu;
    return b;
}

/* Level-1 codes (16 bits) -> x: nibble i = code of word i; returns the
 * escape flags (bit 0 of nibble i: code 3); popc of them = the escapes. */
WDG_FN uint32_t wdg_escapes(uint32_t codes, uint32_t *x) {
    const uint32_t n = wdg_spread2(codes);
    *x = n;
    return n & (n >> 1) & 0x11111111u;
}

/* The group's level-2 codes: 3-bit fields from bit `bit` of (hi:lo), the
 * first `valid` (<= 8) kept, spread to nibbles. */
WDG_FN uint32_t wdg_level2_fields(uint32_t lo, uint32_t hi, uint32_t bit, uint32_t valid) {
    return wdg_spread3(wdg_fshr(lo, hi, bit) & ((1u << (3u * valid)) - 1u));
}

/* Flags (bit 0 of nibble r) of level-2 codes equal to 7: raw exponents. */
WDG_FN uint32_t wdg_sevens(uint32_t q) { return q & (q >> 1) & (q >> 2) & 0x11111111u; }

/* Exponents of the group's escapes by rank: bytes 0..3 in *e0, 4..7 in *e1
 * (a raw one 0 until wdg_merge_raw). */
WDG_FN void wdg_level2(const wdg_book *b, uint32_t q, uint32_t *e0, uint32_t *e1) {
    *e0 = wdg_prmt(b->l2a, b->l2b, q);
    *e1 = wdg_prmt(b->l2a, b->l2b, q >> 16);
}

/* The group's raw bytes (r0:r1, byte j = raw exponent j of the group, 0
 * past `valid`) into the escapes whose level-2 code is 7 (flags s7). */
WDG_FN void wdg_merge_raw(uint32_t s7, uint32_t r0, uint32_t r1, uint32_t *e0, uint32_t *e1) {
    const uint32_t rank = s7 * 0x11111110u; /* nibble i: sevens before escape i */
    const uint32_t x0 = wdg_prmt(r0, r1, rank), x1 = wdg_prmt(r0, r1, rank >> 16);
    *e0 = wdg_prmt(*e0, x0, 0x3210u | (s7 & 0xffffu) << 2);
    *e1 = wdg_prmt(*e1, x1, 0x3210u | (s7 >> 16) << 2);
}

/* Keep bytes [0, valid) of (r0:r1), valid <= 8. */
WDG_FN void wdg_raw_keep(uint32_t *r0, uint32_t *r1, uint32_t valid) {
    if (valid < 4) {
        *r0 &= (1u << (8u * valid)) - 1u;
        *r1 = 0;
    } else if (valid < 8) {
        *r1 &= (1u << (8u * (valid - 4u))) - 1u;
    }
}

/* Sign|mantissa bytes s (4 words) and exponents e -> 4 bf16 words in
 * (*o0, *o1): high byte sign<<7 | e>>1, low byte (e&1)<<7 | mantissa. */
WDG_FN void wdg_words4(uint32_t s, uint32_t e, uint32_t *o0, uint32_t *o1) {
    const uint32_t hi = (s & 0x80808080u) | ((e >> 1) & 0x7f7f7f7fu);
    const uint32_t lo = (s & 0x7f7f7f7fu) | ((e << 7) & 0x80808080u);
    *o0 = wdg_prmt(lo, hi, 0x5140u);
    *o1 = wdg_prmt(lo, hi, 0x7362u);
}

/* The group's 8 words: x / en from wdg_escapes, e0:e1 the escapes'
 * exponents by rank, s0 / s1 sign|mantissa of words 0..3 / 4..7. */
WDG_FN void wdg_assemble(const wdg_book *b, uint32_t x, uint32_t en, uint32_t e0, uint32_t e1, uint32_t s0,
                         uint32_t s1, uint32_t out[4]) {
    const uint32_t rank = en * 0x11111110u; /* nibble i: escapes before word i */
    const uint32_t esc0 = wdg_prmt(e0, e1, rank), esc1 = wdg_prmt(e0, e1, rank >> 16);
    const uint32_t c0 = wdg_prmt(b->l1, 0, x), c1 = wdg_prmt(b->l1, 0, x >> 16);
    const uint32_t x0 = wdg_prmt(c0, esc0, 0x3210u | (en & 0xffffu) << 2);
    const uint32_t x1 = wdg_prmt(c1, esc1, 0x3210u | (en >> 16) << 2);
    wdg_words4(s0, x0, &out[0], &out[1]);
    wdg_words4(s1, x1, &out[2], &out[3]);
}

/* ---- a tile's place and escape ranges (the kernel's clamps, exactly the
 * CPU decoder's chunk_open / tile_range) ---- */

/* u32 words of a tile's level-2 codes staged by a decoder: 4096 escapes at
 * any bit offset, + 1 for the two-word reads. */
#define WDG_ESC_WORDS (ZT_WCODE_TILE * 3 / 32 + 2)

/* Bytes of level-2 codes a chunk with e1 level-1 escapes has (aligned). */
WDG_FN uint64_t wdg_esc_bytes(uint32_t e1) {
    return (4ull * ((3ull * e1 + 31) / 32 + 1) + ZT_WCODE_ALIGN - 1) / ZT_WCODE_ALIGN * ZT_WCODE_ALIGN;
}

/* Bytes of a chunk of `tiles` tiles before its level-2 codes. */
WDG_FN uint64_t wdg_chunk_need(uint32_t tiles) {
    return ZT_WCODE_CHUNK_HEAD + (uint64_t)tiles * (ZT_WCODE_TILE + ZT_WCODE_TILE / 4);
}

/* The usable bytes of the chunk at image offsets [cs, ce) inside a piece
 * [piece_base, piece_base + piece_len): 0 when it does not start inside the
 * piece on the alignment or cannot hold its codes (its words decode to 0). */
WDG_FN uint64_t wdg_chunk_len(uint64_t cs, uint64_t ce, uint64_t piece_base, uint64_t piece_len, uint32_t tiles) {
    if (cs < piece_base || cs - piece_base > piece_len || ce < cs || (cs - piece_base) % ZT_WCODE_ALIGN) return 0;
    const uint64_t room = piece_len - (cs - piece_base), len = ce - cs < room ? ce - cs : room;
    return len < wdg_chunk_need(tiles) ? 0 : len;
}

/* A tile's escape ranges: level-1 escapes [a1, b1), raw [a2, b2), from its
 * table entries (ta1, ta2) and the next tile's (tb1, tb2), clamped to the
 * chunk's counts *e1 / *e2 (which become 0 when the chunk cannot have them
 * or they do not fit its `len` bytes) and to one tile's worth. */
typedef struct {
    uint32_t a1, b1, a2, b2;
    uint32_t e1, e2; /* the chunk's counts as used */
} wdg_ranges;

WDG_FN wdg_ranges wdg_tile_ranges(uint32_t tiles, uint64_t len, uint32_t e1, uint32_t e2, uint32_t ta1, uint32_t ta2,
                                  uint32_t tb1, uint32_t tb2) {
    wdg_ranges r;
    if ((uint64_t)e1 > (uint64_t)tiles * ZT_WCODE_TILE || e2 > e1 ||
        wdg_chunk_need(tiles) + wdg_esc_bytes(e1) + ((uint64_t)e2 + ZT_WCODE_ALIGN - 1) / ZT_WCODE_ALIGN * ZT_WCODE_ALIGN > len)
        e1 = e2 = 0;
    r.e1 = e1;
    r.e2 = e2;
    r.a1 = ta1 < e1 ? ta1 : e1;
    uint32_t t = tb1 < e1 ? tb1 : e1;
    t = t > r.a1 ? t : r.a1;
    r.b1 = t - r.a1 > ZT_WCODE_TILE ? r.a1 + ZT_WCODE_TILE : t;
    r.a2 = ta2 < e2 ? ta2 : e2;
    t = tb2 < e2 ? tb2 : e2;
    t = t > r.a2 ? t : r.a2;
    r.b2 = t - r.a2 > ZT_WCODE_TILE ? r.a2 + ZT_WCODE_TILE : t;
    return r;
}

/* How many of a group's n escapes, the first numbered k, lie below the
 * clamp b (k >= b: none). */
WDG_FN uint32_t wdg_valid(uint32_t k, uint32_t n, uint32_t b) {
    const uint32_t left = k < b ? b - k : 0;
    return left < n ? left : n;
}

#endif
