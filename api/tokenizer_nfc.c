/* api/tokenizer_nfc.c — Unicode NFC with the Unicode 9.0 data of
 * api/tokenizer_unicode.c (the version Hugging Face `tokenizers` normalizes with).
 *
 * Fast path: a code point without the ZT_UC_NFC class bit is an NFC boundary (ccc 0,
 * unchanged by NFC, nothing on its left can compose across it), so runs of such code
 * points are copied. A run of flagged code points, together with the boundary just
 * before it (which may compose with what follows), is normalized on its own by the
 * textbook algorithm: full canonical decomposition, stable sort of every run of
 * non-starters by ccc, canonical composition. Each piece of work is linear (counting
 * sort for long runs of combining marks), so adversarial input is not quadratic. */
#include <stdlib.h>
#include <string.h>

#include "api/tokenizer.h"

enum {
    HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7,
    HANGUL_LN = 19, HANGUL_VN = 21, HANGUL_TN = 28, HANGUL_SN = 19 * 21 * 28,
};

/* Valid UTF-8 only (the encoder repairs its input first). */
static inline uint32_t utf8_get(const uint8_t *p, size_t *adv) {
    uint8_t b = p[0];
    if (b < 0x80) { *adv = 1; return b; }
    if (b < 0xE0) { *adv = 2; return ((uint32_t)(b & 0x1F) << 6) | (p[1] & 0x3F); }
    if (b < 0xF0) {
        *adv = 3;
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    *adv = 4;
    return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

static inline size_t utf8_put(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

void zt_tok_nfc_scratch_free(zt_tok_nfc_scratch *s) {
    free(s->cp);
    s->cp = NULL;
    s->cap = 0;
}

static int scratch_reserve(zt_tok_nfc_scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n) cap *= 2;
    uint32_t *p = realloc(s->cp, cap * sizeof *p);
    if (!p) return -1;
    s->cp = p;
    s->cap = cap;
    return 0;
}

/* Code points are packed as ccc << 24 | cp (cp < 2^21) while normalizing. */
#define PACK(cp) ((zt_tok_ccc(cp) << 24) | (cp))
#define CP(x) ((x) & 0x1FFFFFu)
#define CCC(x) ((x) >> 24)

/* Stable sort of a run of non-starters by ccc; tmp has room for n entries. */
static void sort_by_ccc(uint32_t *a, size_t n, uint32_t *tmp) {
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = a[i];
            size_t j = i;
            while (j > 0 && CCC(a[j - 1]) > CCC(x)) { a[j] = a[j - 1]; j--; }
            a[j] = x;
        }
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[CCC(a[i]) + 1]++;
    for (int c = 0; c < 256; c++) start[c + 1] += start[c];
    for (size_t i = 0; i < n; i++) tmp[start[CCC(a[i])]++] = a[i];
    memcpy(a, tmp, n * sizeof *a);
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a - HANGUL_L < HANGUL_LN && b - HANGUL_V < HANGUL_VN)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_VN + (b - HANGUL_V)) * HANGUL_TN;
    if (a - HANGUL_S < HANGUL_SN && (a - HANGUL_S) % HANGUL_TN == 0 && b - HANGUL_T - 1 < HANGUL_TN - 1)
        return a + (b - HANGUL_T);
    return zt_tok_compose(a, b);
}

/* Normalize one region in[0, len) (valid UTF-8) into out; returns bytes or -1/-2. */
static long nfc_region(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
                       zt_tok_nfc_scratch *s) {
    /* Pass 1: decomposed length, to size the scratch (decomposition + sort buffer). */
    size_t n = 0, adv;
    for (size_t i = 0; i < len; i += adv) {
        uint32_t cp = utf8_get(in + i, &adv);
        unsigned k = 1;
        if (cp - HANGUL_S < HANGUL_SN) k = (cp - HANGUL_S) % HANGUL_TN ? 3 : 2;
        else if (!zt_tok_decomp(cp, &k)) k = 1;
        n += k;
    }
    if (scratch_reserve(s, 2 * n)) return -1;
    uint32_t *buf = s->cp, *tmp = s->cp + n;
    /* Pass 2: full canonical decomposition. */
    size_t m = 0;
    for (size_t i = 0; i < len; i += adv) {
        uint32_t cp = utf8_get(in + i, &adv);
        unsigned k;
        const uint32_t *d;
        if (cp - HANGUL_S < HANGUL_SN) {
            uint32_t si = cp - HANGUL_S;
            buf[m++] = HANGUL_L + si / (HANGUL_VN * HANGUL_TN);
            buf[m++] = HANGUL_V + (si % (HANGUL_VN * HANGUL_TN)) / HANGUL_TN;
            if (si % HANGUL_TN) buf[m++] = HANGUL_T + si % HANGUL_TN;
        } else if ((d = zt_tok_decomp(cp, &k)) != NULL) {
            for (unsigned j = 0; j < k; j++) buf[m++] = PACK(d[j]);
        } else {
            buf[m++] = PACK(cp);
        }
    }
    /* Canonical ordering. */
    for (size_t i = 0; i < m;) {
        if (CCC(buf[i]) == 0) { i++; continue; }
        size_t j = i;
        while (j < m && CCC(buf[j]) != 0) j++;
        sort_by_ccc(buf + i, j - i, tmp);
        i = j;
    }
    /* Canonical composition, in place (w <= k). */
    size_t w = 0;
    long starter = -1;
    int last_ccc = -1; /* ccc of the last code point kept after the starter; -1: none */
    for (size_t k = 0; k < m; k++) {
        uint32_t cp = CP(buf[k]);
        int cc = (int)CCC(buf[k]);
        if (starter >= 0 && (last_ccc < 0 || last_ccc < cc)) {
            uint32_t c = compose_pair(buf[starter], cp);
            if (c) { buf[starter] = c; continue; }
        }
        if (cc == 0) { starter = (long)w; last_ccc = -1; }
        else last_ccc = cc;
        buf[w++] = cp;
    }
    size_t o = 0;
    for (size_t k = 0; k < w; k++) {
        if (o + 4 > out_cap) return -2;
        o += utf8_put(buf[k], out + o);
    }
    return (long)o;
}

long zt_tok_nfc(const uint8_t *in, size_t len, uint8_t *out, zt_tok_nfc_scratch *s) {
    size_t out_cap = 3 * len + 4;
    size_t i = 0, o = 0;
    size_t prev_in = 0, prev_out = 0; /* the boundary code point just copied */
    int have_prev = 0;
    while (i < len) {
        if (in[i] < 0x80) { /* ASCII: always a boundary */
            prev_in = i; prev_out = o; have_prev = 1;
            out[o++] = in[i++];
            continue;
        }
        size_t adv;
        uint32_t cp = utf8_get(in + i, &adv);
        if (!(zt_tok_uclass(cp) & ZT_UC_NFC)) {
            prev_in = i; prev_out = o; have_prev = 1;
            memcpy(out + o, in + i, adv);
            o += adv;
            i += adv;
            continue;
        }
        size_t start = have_prev ? prev_in : i;
        if (have_prev) o = prev_out;
        size_t j = i + adv;
        while (j < len) {
            if (in[j] < 0x80) break;
            uint32_t c2 = utf8_get(in + j, &adv);
            if (!(zt_tok_uclass(c2) & ZT_UC_NFC)) break;
            j += adv;
        }
        long r = nfc_region(in + start, j - start, out + o, out_cap - o, s);
        if (r < 0) return r;
        o += (size_t)r;
        have_prev = 0;
        i = j;
    }
    return (long)o;
}
