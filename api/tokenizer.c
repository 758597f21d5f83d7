/* api/tokenizer.c — load tokenizer.json and encode text exactly like Hugging Face
 * `tokenizers` (see api/tokenizer.h for the file subset and the algorithm).
 *
 * Loading: the 11 MB file is scanned by a small JSON reader written for it (jansson
 * builds a DOM of 300k nodes in ~0.4 s; this reader parses vocab and merges straight
 * into the tables); the small sections (added tokens, normalizer, pre-tokenizer,
 * model options) are handed to jansson as byte spans.
 * Tables: token bytes in one arena, a hash of token bytes -> id (load time only), a
 * hash of (left id, right id) -> (merge rank, merged id) that BPE probes.
 * Encoding: UTF-8 repair, added-token split, NFC, the pre-tokenizer regex hand-coded
 * as a scanner over Unicode classes, byte-level BPE with a binary heap of candidate
 * merges ordered by (rank, position), as the reference's word merge loop. */
#include "api/tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/zt_input.h"

#define MAX_ID (1 << 24) /* ids beyond this are refused (tables are indexed by id) */
#define QWEN2_PATTERN                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct {
    uint64_t key; /* left id << 32 | right id; 0 = empty slot (id pair (0,0) stored +1) */
    uint32_t rank;
    int32_t id;
} merge_slot;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
} added_token;

struct zt_tokenizer {
    int32_t n_ids;       /* every id < n_ids */
    uint32_t *tok_off;   /* [n_ids] offset in tok_bytes, UINT32_MAX: unused id */
    uint32_t *tok_len;   /* [n_ids] */
    uint8_t *tok_bytes;  /* arena of token bytes (model tokens, then added tokens) */
    uint64_t *vocab_slot; /* [vocab_mask + 1] hash high 32 bits << 32 | (model id + 1); 0 = empty */
    uint32_t vocab_mask;
    merge_slot *merges; /* [merge_mask + 1] */
    uint32_t merge_mask;
    int32_t byte_id[256]; /* id of each single byte token */
    int normalize_nfc;
    int ignore_merges;
    added_token *added; /* sorted by first byte, then longest first */
    size_t n_added;
    uint16_t added_first[257]; /* added[added_first[b] .. added_first[b+1]) start with b */
};

/* ------------------------------------------------------------------------- */
/* Byte-level alphabet (GPT-2): bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF map to the same
 * code point, the other 68 bytes in increasing order to U+0100...U+0143. */

static void bytelevel_inverse(int16_t inv[0x144]) {
    int n = 0;
    for (int c = 0; c < 0x144; c++) inv[c] = -1;
    for (int b = 0; b < 256; b++) {
        int direct = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        inv[direct ? b : 0x100 + n++] = (int16_t)b;
    }
}

/* Decode a UTF-8 string of byte-level characters into raw bytes, in place.
 * Returns the byte length, or -1 when a character is not in the alphabet. */
static long bytelevel_decode(const int16_t inv[0x144], uint8_t *s, size_t n) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint32_t cp;
        if (b < 0x80) {
            cp = b;
            i += 1;
        } else if (b >= 0xC2 && b <= 0xDF && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* every character of the alphabet is 1 or 2 UTF-8 bytes */
        }
        if (cp >= 0x144 || inv[cp] < 0) return -1;
        s[o++] = (uint8_t)inv[cp];
    }
    return (long)o;
}

/* ------------------------------------------------------------------------- */
/* Hashes. */

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static inline uint64_t mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* Slot of token bytes p[0, n) in the vocab hash: its id, or -1 with *slot the free
 * slot where it would go. The high hash bits kept in the slot skip most byte compares. */
static int32_t vocab_probe(const zt_tokenizer *t, const uint8_t *p, size_t n, uint32_t *slot) {
    uint64_t h = hash_bytes(p, n);
    uint32_t i = (uint32_t)h & t->vocab_mask, tag = (uint32_t)(h >> 32);
    for (;;) {
        uint64_t v = t->vocab_slot[i];
        if (!v) {
            if (slot) *slot = i;
            return -1;
        }
        int32_t id = (int32_t)(uint32_t)v - 1;
        if ((uint32_t)(v >> 32) == tag && t->tok_len[id] == n && !memcmp(t->tok_bytes + t->tok_off[id], p, n))
            return id;
        i = (i + 1) & t->vocab_mask;
    }
}

static int32_t vocab_find(const zt_tokenizer *t, const uint8_t *p, size_t n) { return vocab_probe(t, p, n, NULL); }

static inline const merge_slot *merge_find(const zt_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t i = (uint32_t)mix64(key) & t->merge_mask;
    for (;;) {
        const merge_slot *s = &t->merges[i];
        if (s->key == key) return s;
        if (!s->key) return NULL;
        i = (i + 1) & t->merge_mask;
    }
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* ------------------------------------------------------------------------- */
/* JSON reader over the file bytes. */

typedef struct {
    const char *base, *p, *end;
    const char *name;
    zt_err *e;
} jr;

typedef struct {
    uint8_t *p;
    size_t n, cap;
} jbuf;

static int jr_fail(jr *r, const char *what) {
    return zt_err_set(r->e, ZT_ERR_FORMAT, "%s: malformed JSON at byte %zu: %s", r->name,
                      (size_t)(r->p - r->base), what);
}

static int jr_peek(jr *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static int jr_expect(jr *r, char c) {
    if (jr_peek(r) != (unsigned char)c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return jr_fail(r, what);
    }
    r->p++;
    return 0;
}

static int jbuf_add(jbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int jr_hex4(jr *r, uint32_t *v) {
    if (r->end - r->p < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)r->p[i]);
        if (h < 0) return -1;
        x = x << 4 | (uint32_t)h;
    }
    r->p += 4;
    *v = x;
    return 0;
}

/* Parse a JSON string into b (decoded bytes; not NUL-terminated). Raw bytes are
 * copied as they are: callers that need valid UTF-8 check it. */
static int jr_string(jr *r, jbuf *b) {
    if (jr_expect(r, '"')) return ZT_ERR_FORMAT;
    b->n = 0;
    for (;;) {
        const char *s = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20) r->p++;
        if (r->p > s && jbuf_add(b, s, (size_t)(r->p - s)))
            return zt_err_set(r->e, ZT_ERR_NOMEM, "%s: out of memory", r->name);
        if (r->p >= r->end) return jr_fail(r, "unterminated string");
        char c = *r->p;
        if (c == '"') { r->p++; return 0; }
        if ((unsigned char)c < 0x20) return jr_fail(r, "control character in string");
        r->p++;
        if (r->p >= r->end) return jr_fail(r, "unterminated string");
        char esc = *r->p++, out[4];
        size_t n = 1;
        switch (esc) {
        case '"': case '\\': case '/': out[0] = esc; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (jr_hex4(r, &cp)) return jr_fail(r, "bad \\u escape");
            if (cp >= 0xDC00 && cp < 0xE000) return jr_fail(r, "lone low surrogate");
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') return jr_fail(r, "lone high surrogate");
                r->p += 2;
                if (jr_hex4(r, &lo) || lo < 0xDC00 || lo >= 0xE000) return jr_fail(r, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) out[0] = (char)cp;
            else if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
            else if (cp < 0x10000) {
                out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
            } else {
                out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
            }
            break;
        }
        default: r->p--; return jr_fail(r, "bad escape");
        }
        if (jbuf_add(b, out, n)) return zt_err_set(r->e, ZT_ERR_NOMEM, "%s: out of memory", r->name);
    }
}

static int jr_skip_string(jr *r) {
    if (jr_expect(r, '"')) return ZT_ERR_FORMAT;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"') return 0;
        if (c < 0x20) { r->p--; return jr_fail(r, "control character in string"); }
        if (c == '\\') {
            if (r->p >= r->end) break;
            r->p++;
        }
    }
    return jr_fail(r, "unterminated string");
}

static int jr_skip(jr *r, int depth) {
    if (depth > 64) return jr_fail(r, "nesting deeper than 64");
    int c = jr_peek(r);
    if (c == '"') return jr_skip_string(r);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        r->p++;
        if (jr_peek(r) == close) { r->p++; return 0; }
        for (;;) {
            if (c == '{') {
                if (jr_skip_string(r) || jr_expect(r, ':')) return ZT_ERR_FORMAT;
            }
            if (jr_skip(r, depth + 1)) return ZT_ERR_FORMAT;
            int d = jr_peek(r);
            if (d == ',') { r->p++; continue; }
            if (d == (unsigned char)close) { r->p++; return 0; }
            return jr_fail(r, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(r->end - r->p) >= n && !memcmp(r->p, lits[i], n)) { r->p += n; return 0; }
    }
    const char *s = r->p;
    int digits = 0;
    while (r->p < r->end && *r->p && strchr("+-0123456789.eE", *r->p)) {
        digits += *r->p >= '0' && *r->p <= '9';
        r->p++;
    }
    if (!digits) { r->p = s; return jr_fail(r, "expected a value"); }
    return 0;
}

static int jr_uint(jr *r, int64_t max, int64_t *v) {
    jr_peek(r);
    int64_t x = 0;
    const char *s = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        x = x * 10 + (*r->p - '0');
        if (x > max) return jr_fail(r, "integer out of range");
        r->p++;
    }
    if (r->p == s) return jr_fail(r, "expected a non-negative integer");
    if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E')) return jr_fail(r, "expected an integer");
    *v = x;
    return 0;
}

typedef struct {
    const char *p;
    size_t n;
} span;

/* Iterate an object: calls fn(key, value reader) for every member; fn must consume
 * the value. */
typedef int (*member_fn)(jr *r, const jbuf *key, void *ctx);
static int jr_object(jr *r, member_fn fn, void *ctx, jbuf *kb) {
    if (jr_expect(r, '{')) return ZT_ERR_FORMAT;
    if (jr_peek(r) == '}') { r->p++; return 0; }
    for (;;) {
        int rc = jr_string(r, kb);
        if (rc) return rc;
        if (jr_expect(r, ':')) return ZT_ERR_FORMAT;
        jr_peek(r);
        if ((rc = fn(r, kb, ctx))) return rc;
        int d = jr_peek(r);
        if (d == ',') { r->p++; continue; }
        if (d == '}') { r->p++; return 0; }
        return jr_fail(r, "expected ',' or '}'");
    }
}

static int key_is(const jbuf *k, const char *s) {
    size_t n = strlen(s);
    return k->n == n && !memcmp(k->p, s, n);
}

static int jr_span(jr *r, span *sp) {
    const char *s = r->p;
    int rc = jr_skip(r, 0);
    if (rc) return rc;
    sp->p = s;
    sp->n = (size_t)(r->p - s);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Load. */

typedef struct {
    zt_tokenizer *t;
    jr *r;
    const char *name;
    zt_err *e;
    jbuf key, s1, s2;
    /* vocab entries while parsing */
    int32_t *ent_id;
    uint32_t *ent_off, *ent_len;
    size_t n_ent, cap_ent;
    jbuf arena;
    int16_t inv[0x144]; /* byte-level character -> byte */
    int have_vocab;
    span merges, added, normalizer, pre, post, model;
    span m_type, m_dropout, m_unk, m_prefix, m_suffix, m_byte_fallback, m_ignore_merges;
    int seen_model;
} loader;

static int ld_nomem(loader *L) { return zt_err_set(L->e, ZT_ERR_NOMEM, "%s: out of memory", L->name); }

static void printable(const uint8_t *p, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '"' && p[i] != '\\') out[o++] = (char)p[i];
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
    }
    out[o] = 0;
}

static int vocab_member(jr *r, const jbuf *key, void *ctx) {
    loader *L = ctx;
    if (L->n_ent == L->cap_ent) {
        size_t cap = L->cap_ent ? 2 * L->cap_ent : 1 << 18;
        int32_t *a = realloc(L->ent_id, cap * sizeof *a);
        if (a) L->ent_id = a;
        uint32_t *b = realloc(L->ent_off, cap * sizeof *b);
        if (b) L->ent_off = b;
        uint32_t *c = realloc(L->ent_len, cap * sizeof *c);
        if (c) L->ent_len = c;
        if (!a || !b || !c) return ld_nomem(L);
        L->cap_ent = cap;
    }
    jbuf *k = (jbuf *)key;
    char shown[64];
    long n = bytelevel_decode(L->inv, k->p, k->n);
    if (n <= 0) {
        printable(k->p, k->n < 24 ? k->n : 24, shown, sizeof shown);
        return zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: model.vocab: token \"%s\" is not a byte-level token", L->name,
                          shown);
    }
    int64_t id = 0;
    if (jr_uint(r, MAX_ID - 1, &id)) return ZT_ERR_FORMAT;
    if (L->arena.n + (size_t)n > UINT32_MAX / 2) return zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: vocab too large", L->name);
    L->ent_id[L->n_ent] = (int32_t)id;
    L->ent_off[L->n_ent] = (uint32_t)L->arena.n;
    L->ent_len[L->n_ent] = (uint32_t)n;
    L->n_ent++;
    if (jbuf_add(&L->arena, k->p, (size_t)n)) return ld_nomem(L);
    return 0;
}

static int model_member(jr *r, const jbuf *key, void *ctx) {
    loader *L = ctx;
    if (key_is(key, "vocab")) {
        if (L->have_vocab) return jr_fail(r, "duplicate key model.vocab");
        L->have_vocab = 1;
        return jr_object(r, vocab_member, L, &L->s1);
    }
    span *sp = NULL;
    if (key_is(key, "merges")) sp = &L->merges;
    else if (key_is(key, "type")) sp = &L->m_type;
    else if (key_is(key, "dropout")) sp = &L->m_dropout;
    else if (key_is(key, "unk_token")) sp = &L->m_unk;
    else if (key_is(key, "continuing_subword_prefix")) sp = &L->m_prefix;
    else if (key_is(key, "end_of_word_suffix")) sp = &L->m_suffix;
    else if (key_is(key, "byte_fallback")) sp = &L->m_byte_fallback;
    else if (key_is(key, "ignore_merges")) sp = &L->m_ignore_merges;
    span tmp;
    if (!sp) sp = &tmp;
    else if (sp->p) return jr_fail(r, "duplicate key in model");
    return jr_span(r, sp);
}

static int top_member(jr *r, const jbuf *key, void *ctx) {
    loader *L = ctx;
    if (key_is(key, "model")) {
        if (L->seen_model) return jr_fail(r, "duplicate key model");
        L->seen_model = 1;
        if (jr_peek(r) != '{') return jr_fail(r, "model is not an object");
        return jr_object(r, model_member, L, &L->key);
    }
    span *sp = NULL, tmp;
    if (key_is(key, "added_tokens")) sp = &L->added;
    else if (key_is(key, "normalizer")) sp = &L->normalizer;
    else if (key_is(key, "pre_tokenizer")) sp = &L->pre;
    else if (key_is(key, "post_processor")) sp = &L->post;
    if (!sp) sp = &tmp;
    else if (sp->p) return jr_fail(r, "duplicate top-level key");
    return jr_span(r, sp);
}

/* Parse a small span with jansson. */
static json_t *span_json(loader *L, const span *sp, const char *what) {
    json_error_t je;
    json_t *j = json_loadb(sp->p, sp->n, JSON_DECODE_ANY, &je);
    if (!j) zt_err_set(L->e, ZT_ERR_FORMAT, "%s: %s: %s", L->name, what, je.text);
    return j;
}

/* Value of an optional model option: 1 if absent or equal to one of the accepted
 * JSON values, else an UNSUPPORTED error. */
static int check_option(loader *L, const span *sp, const char *what, const char *const *ok, int *is_true) {
    if (is_true) *is_true = 0;
    if (!sp->p) return 0;
    json_t *j = span_json(L, sp, what);
    if (!j) return ZT_ERR_FORMAT;
    if (is_true && json_is_true(j)) { *is_true = 1; json_decref(j); return 0; }
    for (; *ok; ok++) {
        if (!strcmp(*ok, "null") && json_is_null(j)) break;
        if (!strcmp(*ok, "false") && json_is_false(j)) break;
        if (!strcmp(*ok, "\"\"") && json_is_string(j) && !json_string_length(j)) break;
        if ((*ok)[0] == '=' && json_is_string(j) && !strcmp(json_string_value(j), *ok + 1)) break;
    }
    int bad = !*ok;
    json_decref(j);
    if (bad) return zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: %s: value not supported", L->name, what);
    return 0;
}

static int build_vocab(loader *L) {
    zt_tokenizer *t = L->t;
    if (!L->have_vocab || !L->n_ent) return zt_err_set(L->e, ZT_ERR_FORMAT, "%s: model.vocab missing or empty", L->name);
    int32_t max_id = -1;
    for (size_t i = 0; i < L->n_ent; i++)
        if (L->ent_id[i] > max_id) max_id = L->ent_id[i];
    t->n_ids = max_id + 1;
    t->tok_off = malloc((size_t)t->n_ids * sizeof *t->tok_off);
    t->tok_len = calloc((size_t)t->n_ids, sizeof *t->tok_len);
    uint32_t cap = pow2_at_least(2 * L->n_ent);
    t->vocab_slot = calloc(cap, sizeof *t->vocab_slot);
    if (!t->tok_off || !t->tok_len || !t->vocab_slot) return ld_nomem(L);
    t->vocab_mask = cap - 1;
    memset(t->tok_off, 0xFF, (size_t)t->n_ids * sizeof *t->tok_off);
    t->tok_bytes = L->arena.p; /* the arena moves into the tokenizer (added tokens may grow it) */
    for (size_t i = 0; i < L->n_ent; i++) {
        int32_t id = L->ent_id[i];
        if (t->tok_off[id] != UINT32_MAX)
            return zt_err_set(L->e, ZT_ERR_FORMAT, "%s: model.vocab: id %d used twice", L->name, id);
        t->tok_off[id] = L->ent_off[i];
        t->tok_len[id] = L->ent_len[i];
        const uint8_t *p = t->tok_bytes + L->ent_off[i];
        uint32_t slot;
        if (vocab_probe(t, p, L->ent_len[i], &slot) >= 0) {
            char shown[64];
            printable(p, L->ent_len[i] < 24 ? L->ent_len[i] : 24, shown, sizeof shown);
            return zt_err_set(L->e, ZT_ERR_FORMAT, "%s: model.vocab: token \"%s\" listed twice", L->name, shown);
        }
        t->vocab_slot[slot] = (hash_bytes(p, L->ent_len[i]) >> 32) << 32 | (uint32_t)(id + 1);
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = vocab_find(t, &c, 1);
        if (t->byte_id[b] < 0)
            return zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: model.vocab lacks the byte-level token of byte 0x%02x",
                              L->name, b);
    }
    return 0;
}

static int build_merges(loader *L) {
    zt_tokenizer *t = L->t;
    if (!L->merges.p) return zt_err_set(L->e, ZT_ERR_FORMAT, "%s: model.merges missing", L->name);
    jr rr = *L->r, *r = &rr;
    r->p = L->merges.p;
    r->end = L->merges.p + L->merges.n;
    int32_t *tri = NULL; /* (left, right, merged) per rank */
    size_t n = 0, cap = 0;
    int rc = 0;
    jbuf cat = {0};
    if (jr_expect(r, '[')) return ZT_ERR_FORMAT;
    if (jr_peek(r) == ']') r->p++;
    else
        for (;;) {
            jbuf *a = &L->s1, *b = &L->s2;
            int c = jr_peek(r);
            if (c == '[') {
                r->p++;
                if ((rc = jr_string(r, a)) || (rc = jr_expect(r, ',')) || (rc = jr_string(r, b)) || (rc = jr_expect(r, ']')))
                    goto out;
            } else if (c == '"') {
                if ((rc = jr_string(r, a))) goto out;
                uint8_t *sp = memchr(a->p, ' ', a->n);
                if (!sp || memchr(sp + 1, ' ', a->n - (size_t)(sp + 1 - a->p))) {
                    rc = zt_err_set(L->e, ZT_ERR_FORMAT, "%s: model.merges[%zu]: not two tokens separated by a space",
                                    L->name, n);
                    goto out;
                }
                b->n = 0;
                if (jbuf_add(b, sp + 1, a->n - (size_t)(sp + 1 - a->p))) { rc = ld_nomem(L); goto out; }
                a->n = (size_t)(sp - a->p);
            } else {
                rc = jr_fail(r, "expected a merge");
                goto out;
            }
            long na = bytelevel_decode(L->inv, a->p, a->n), nb = bytelevel_decode(L->inv, b->p, b->n);
            int32_t ia = na > 0 ? vocab_find(t, a->p, (size_t)na) : -1;
            int32_t ib = nb > 0 ? vocab_find(t, b->p, (size_t)nb) : -1;
            int32_t im = -1;
            if (ia >= 0 && ib >= 0) {
                cat.n = 0;
                if (jbuf_add(&cat, a->p, (size_t)na) || jbuf_add(&cat, b->p, (size_t)nb)) { rc = ld_nomem(L); goto out; }
                im = vocab_find(t, cat.p, cat.n);
            }
            if (im < 0) {
                rc = zt_err_set(L->e, ZT_ERR_FORMAT, "%s: model.merges[%zu]: %s not in the vocab", L->name, n,
                                ia < 0 ? "left token" : ib < 0 ? "right token" : "merged token");
                goto out;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 1 << 17;
                int32_t *q = realloc(tri, cap * 3 * sizeof *q);
                if (!q) { rc = ld_nomem(L); goto out; }
                tri = q;
            }
            tri[3 * n] = ia;
            tri[3 * n + 1] = ib;
            tri[3 * n + 2] = im;
            n++;
            int d = jr_peek(r);
            if (d == ',') { r->p++; continue; }
            if (d == ']') { r->p++; break; }
            rc = jr_fail(r, "expected ',' or ']'");
            goto out;
        }
    {
        uint32_t mcap = pow2_at_least(2 * n + 2);
        t->merges = calloc(mcap, sizeof *t->merges);
        if (!t->merges) { rc = ld_nomem(L); goto out; }
        t->merge_mask = mcap - 1;
        for (size_t i = 0; i < n; i++) {
            uint64_t key = (((uint64_t)(uint32_t)tri[3 * i] << 32) | (uint32_t)tri[3 * i + 1]) + 1;
            uint32_t h = (uint32_t)mix64(key) & t->merge_mask;
            while (t->merges[h].key && t->merges[h].key != key) h = (h + 1) & t->merge_mask;
            /* a repeated pair keeps its last rank, as the reference's HashMap does */
            t->merges[h].key = key;
            t->merges[h].rank = (uint32_t)i;
            t->merges[h].id = tri[3 * i + 2];
        }
    }
out:
    free(tri);
    free(cat.p);
    return rc;
}

static int cmp_added(const void *x, const void *y) {
    const added_token *a = x, *b = y;
    if ((uint8_t)a->content[0] != (uint8_t)b->content[0]) return (uint8_t)a->content[0] - (uint8_t)b->content[0];
    if (a->len != b->len) return a->len > b->len ? -1 : 1; /* longest first */
    return memcmp(a->content, b->content, a->len);
}

static int build_added(loader *L) {
    zt_tokenizer *t = L->t;
    if (!L->added.p) return 0;
    json_t *arr = span_json(L, &L->added, "added_tokens");
    if (!arr) return ZT_ERR_FORMAT;
    int rc = 0;
    if (!json_is_array(arr)) { rc = zt_err_set(L->e, ZT_ERR_FORMAT, "%s: added_tokens is not an array", L->name); goto out; }
    size_t n = json_array_size(arr);
    if (n > 60000) { rc = zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: more than 60000 added tokens", L->name); goto out; }
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) { rc = ld_nomem(L); goto out; }
    int32_t max_id = t->n_ids - 1;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *id = json_object_get(o, "id"), *content = json_object_get(o, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MAX_ID ||
            !json_is_string(content) || !json_string_length(content)) {
            rc = zt_err_set(L->e, ZT_ERR_FORMAT, "%s: added_tokens[%zu]: needs an id in [0, %d) and a non-empty content",
                            L->name, i, MAX_ID);
            goto out;
        }
        static const char *const flags[] = {"lstrip", "rstrip", "single_word", "normalized"};
        for (int f = 0; f < 4; f++) {
            json_t *v = json_object_get(o, flags[f]);
            if (v && !json_is_false(v)) {
                rc = zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: added_tokens[%zu] (%s): %s must be false", L->name, i,
                                json_string_value(content), flags[f]);
                goto out;
            }
        }
        added_token *a = &t->added[t->n_added++];
        a->len = json_string_length(content);
        a->content = malloc(a->len);
        if (!a->content) { rc = ld_nomem(L); goto out; }
        memcpy(a->content, json_string_value(content), a->len);
        a->id = (int32_t)json_integer_value(id);
        if (a->id > max_id) max_id = a->id;
    }
    /* Id -> bytes for the added tokens (they get their own arena copies). */
    if (max_id >= t->n_ids) {
        uint32_t *off = realloc(t->tok_off, (size_t)(max_id + 1) * sizeof *off);
        if (off) t->tok_off = off;
        uint32_t *len = realloc(t->tok_len, (size_t)(max_id + 1) * sizeof *len);
        if (len) t->tok_len = len;
        if (!off || !len) { rc = ld_nomem(L); goto out; }
        for (int32_t i = t->n_ids; i <= max_id; i++) { t->tok_off[i] = UINT32_MAX; t->tok_len[i] = 0; }
        t->n_ids = max_id + 1;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        added_token *a = &t->added[i];
        if (t->tok_off[a->id] != UINT32_MAX && t->tok_len[a->id] == a->len &&
            !memcmp(L->arena.p + t->tok_off[a->id], a->content, a->len))
            continue;
        uint32_t off = (uint32_t)L->arena.n;
        if (jbuf_add(&L->arena, a->content, a->len)) { rc = ld_nomem(L); goto out; }
        t->tok_bytes = L->arena.p;
        t->tok_off[a->id] = off;
        t->tok_len[a->id] = (uint32_t)a->len;
    }
    qsort(t->added, t->n_added, sizeof *t->added, cmp_added);
    size_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < t->n_added && (uint8_t)t->added[k].content[0] < b) k++;
        t->added_first[b] = (uint16_t)k;
    }
out:
    json_decref(arr);
    return rc;
}

static int check_pipeline(loader *L) {
    zt_tokenizer *t = L->t;
    int rc = 0;
    json_t *j = NULL;
    /* normalizer: NFC or null */
    if (L->normalizer.p) {
        if (!(j = span_json(L, &L->normalizer, "normalizer"))) return ZT_ERR_FORMAT;
        if (json_is_null(j)) t->normalize_nfc = 0;
        else if (json_is_object(j) && json_is_string(json_object_get(j, "type")) &&
                 !strcmp(json_string_value(json_object_get(j, "type")), "NFC"))
            t->normalize_nfc = 1;
        else rc = zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: normalizer: only NFC or null is supported", L->name);
        json_decref(j);
        if (rc) return rc;
    }
    /* pre_tokenizer: Sequence[Split(Qwen2 regex, Isolated), ByteLevel(no prefix space, no regex)] */
    if (!L->pre.p) return zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: pre_tokenizer missing", L->name);
    if (!(j = span_json(L, &L->pre, "pre_tokenizer"))) return ZT_ERR_FORMAT;
    {
        const char *why = NULL;
        json_t *seq = json_object_get(j, "pretokenizers");
        json_t *sp = json_array_get(seq, 0), *bl = json_array_get(seq, 1);
        json_t *pat = json_object_get(json_object_get(sp, "pattern"), "Regex");
        const char *ty = json_string_value(json_object_get(j, "type"));
        if (!ty || strcmp(ty, "Sequence") || json_array_size(seq) != 2) why = "expected a Sequence of Split and ByteLevel";
        else if (!json_string_value(json_object_get(sp, "type")) || strcmp(json_string_value(json_object_get(sp, "type")), "Split"))
            why = "first step is not Split";
        else if (!json_is_string(pat) || strcmp(json_string_value(pat), QWEN2_PATTERN))
            why = "Split pattern is not the Qwen2 regex this engine implements";
        else if (!json_string_value(json_object_get(sp, "behavior")) ||
                 strcmp(json_string_value(json_object_get(sp, "behavior")), "Isolated") ||
                 json_is_true(json_object_get(sp, "invert")))
            why = "Split behavior is not Isolated (or invert is set)";
        else if (!json_string_value(json_object_get(bl, "type")) || strcmp(json_string_value(json_object_get(bl, "type")), "ByteLevel") ||
                 json_is_true(json_object_get(bl, "add_prefix_space")) || json_is_true(json_object_get(bl, "use_regex")))
            why = "second step is not ByteLevel without prefix space and regex";
        if (why) rc = zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: pre_tokenizer: %s", L->name, why);
    }
    json_decref(j);
    if (rc) return rc;
    /* post_processor: ByteLevel or null (adds no tokens) */
    if (L->post.p) {
        if (!(j = span_json(L, &L->post, "post_processor"))) return ZT_ERR_FORMAT;
        const char *ty = json_string_value(json_object_get(j, "type"));
        if (!json_is_null(j) && (!ty || strcmp(ty, "ByteLevel")))
            rc = zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: post_processor: only ByteLevel or null is supported", L->name);
        json_decref(j);
    }
    return rc;
}

static int check_model(loader *L) {
    static const char *const bpe[] = {"=BPE", NULL}, *const null[] = {"null", NULL},
                             *const empty[] = {"null", "\"\"", NULL}, *const no[] = {"false", "null", NULL};
    int rc;
    if (!L->m_type.p) return zt_err_set(L->e, ZT_ERR_UNSUPPORTED, "%s: model.type missing (only BPE)", L->name);
    if ((rc = check_option(L, &L->m_type, "model.type", bpe, NULL))) return rc;
    if ((rc = check_option(L, &L->m_dropout, "model.dropout", null, NULL))) return rc;
    if ((rc = check_option(L, &L->m_unk, "model.unk_token", null, NULL))) return rc;
    if ((rc = check_option(L, &L->m_prefix, "model.continuing_subword_prefix", empty, NULL))) return rc;
    if ((rc = check_option(L, &L->m_suffix, "model.end_of_word_suffix", empty, NULL))) return rc;
    if ((rc = check_option(L, &L->m_byte_fallback, "model.byte_fallback", no, NULL))) return rc;
    return check_option(L, &L->m_ignore_merges, "model.ignore_merges", no, &L->t->ignore_merges);
}

int zt_tokenizer_load_mem(const char *json, size_t len, const char *name, zt_tokenizer **tok, zt_err *e) {
    *tok = NULL;
    zt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", name);
    jr r = {json, json, json + len, name, e};
    loader L = {.t = t, .r = &r, .name = name, .e = e};
    bytelevel_inverse(L.inv);
    int rc = 0;
    if (jr_peek(&r) != '{') rc = jr_fail(&r, "the file is not a JSON object");
    if (!rc) rc = jr_object(&r, top_member, &L, &L.key);
    if (!rc && jr_peek(&r) != -1) rc = jr_fail(&r, "data after the JSON object");
    if (!rc && !L.seen_model) rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: no \"model\" key (not a tokenizer.json?)", name);
    if (!rc) rc = check_model(&L);
    if (!rc) rc = check_pipeline(&L);
    if (!rc) rc = build_vocab(&L);
    if (!rc) rc = build_merges(&L);
    if (!rc) rc = build_added(&L);
    t->tok_bytes = L.arena.p;
    free(L.key.p);
    free(L.s1.p);
    free(L.s2.p);
    free(L.ent_id);
    free(L.ent_off);
    free(L.ent_len);
    if (rc) {
        zt_tokenizer_free(t);
        return rc;
    }
    *tok = t;
    return ZT_OK;
}

int zt_tokenizer_load(const char *path, zt_tokenizer **tok, zt_err *e) {
    *tok = NULL;
    char *buf;
    size_t n;
    int rc = zt_file_read_all(path, ZT_TOKENIZER_MAX_FILE, "a tokenizer.json", &buf, &n, e);
    if (rc) return rc;
    rc = zt_tokenizer_load_mem(buf, n, path, tok, e);
    free(buf);
    return rc;
}

void zt_tokenizer_free(zt_tokenizer *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_bytes);
    free(t->vocab_slot);
    free(t->merges);
    free(t);
}

int32_t zt_tokenizer_n_ids(const zt_tokenizer *t) { return t->n_ids; }

const char *zt_tokenizer_token(const zt_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX) {
        *len = 0;
        return NULL;
    }
    *len = t->tok_len[id];
    return (const char *)t->tok_bytes + t->tok_off[id];
}

/* ------------------------------------------------------------------------- */
/* Encode. */

typedef struct {
    const zt_tokenizer *t;
    int32_t *ids;
    size_t cap, n;
    int overflow; /* an id did not fit: the encoding is truncated, stop */
    zt_err *e;
    /* growable work buffers */
    uint8_t *norm;
    size_t norm_cap;
    zt_tok_nfc_scratch nfc;
    int32_t *sym;   /* [piece bytes] current token of each symbol */
    int32_t *next;  /* [piece bytes] next live symbol, -1 at the end */
    int32_t *prev;  /* [piece bytes] */
    uint64_t *heap; /* [3 * piece bytes] rank << 32 | position */
    size_t piece_cap;
} enc;

static inline void emit(enc *s, int32_t id) {
    if (s->n < s->cap) s->ids[s->n++] = id;
    else s->overflow = 1;
}

static int grow_piece(enc *s, size_t n) {
    if (n <= s->piece_cap) return 0;
    size_t cap = s->piece_cap ? s->piece_cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(s->sym, cap * sizeof *a);
    if (a) s->sym = a;
    int32_t *b = realloc(s->next, cap * sizeof *b);
    if (b) s->next = b;
    int32_t *c = realloc(s->prev, cap * sizeof *c);
    if (c) s->prev = c;
    uint64_t *h = realloc(s->heap, 3 * cap * sizeof *h);
    if (h) s->heap = h;
    if (!a || !b || !c || !h) return zt_err_set(s->e, ZT_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte piece", n);
    s->piece_cap = cap;
    return 0;
}

static inline void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = v;
    return top;
}

/* Byte-level BPE of one piece. */
static int bpe_piece(enc *s, const uint8_t *p, size_t len) {
    const zt_tokenizer *t = s->t;
    if (len == 1) {
        emit(s, t->byte_id[p[0]]);
        return 0;
    }
    if (t->ignore_merges) {
        int32_t id = vocab_find(t, p, len);
        if (id >= 0) {
            emit(s, id);
            return 0;
        }
    }
    if (len > INT32_MAX / 4) return zt_err_set(s->e, ZT_ERR_RANGE, "tokenizer: piece of %zu bytes is too long", len);
    int rc = grow_piece(s, len);
    if (rc) return rc;
    int32_t *sym = s->sym, *next = s->next, *prev = s->prev;
    uint64_t *heap = s->heap;
    size_t hn = 0;
    for (size_t i = 0; i < len; i++) {
        sym[i] = t->byte_id[p[i]];
        next[i] = i + 1 < len ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < len; i++) {
        const merge_slot *m = merge_find(t, sym[i], sym[i + 1]);
        if (m) heap_push(heap, &hn, (uint64_t)m->rank << 32 | i);
    }
    while (hn) {
        uint64_t top = heap_pop(heap, &hn);
        int32_t pos = (int32_t)(uint32_t)top, nx = next[pos];
        if (sym[pos] < 0 || nx < 0) continue; /* merged away, or now last */
        const merge_slot *m = merge_find(t, sym[pos], sym[nx]);
        if (!m || m->rank != (uint32_t)(top >> 32)) continue; /* stale candidate */
        sym[pos] = m->id;
        sym[nx] = -1;
        next[pos] = next[nx];
        if (next[nx] >= 0) prev[next[nx]] = pos;
        if (prev[pos] >= 0) {
            const merge_slot *l = merge_find(t, sym[prev[pos]], sym[pos]);
            if (l) heap_push(heap, &hn, (uint64_t)l->rank << 32 | (uint32_t)prev[pos]);
        }
        if (next[pos] >= 0) {
            const merge_slot *r = merge_find(t, sym[pos], sym[next[pos]]);
            if (r) heap_push(heap, &hn, (uint64_t)r->rank << 32 | (uint32_t)pos);
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) emit(s, sym[i]);
    return 0;
}

/* Valid UTF-8 (the encoder's own buffers). */
static inline uint32_t u8get(const uint8_t *p, size_t *adv) {
    uint8_t b = p[0];
    if (b < 0x80) { *adv = 1; return b; }
    if (b < 0xE0) { *adv = 2; return ((uint32_t)(b & 0x1F) << 6) | (p[1] & 0x3F); }
    if (b < 0xF0) { *adv = 3; return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F); }
    *adv = 4;
    return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}

/* Regex classes of one character: L, N, WS bits, plus OTHER for [^\s\p{L}\p{N}]. */
enum { C_L = ZT_UC_L, C_N = ZT_UC_N, C_WS = ZT_UC_WS };

static inline unsigned cls_at(const uint8_t *s, size_t i, size_t *adv) {
    if (s[i] < 0x80) {
        *adv = 1;
        return zt_tok_uclass(s[i]) & 7;
    }
    return zt_tok_uclass(u8get(s + i, adv)) & 7;
}

static size_t letters_end(const uint8_t *s, size_t n, size_t i) {
    size_t adv;
    while (i < n && (cls_at(s, i, &adv) & C_L)) i += adv;
    return i;
}

/* End of the regex match that starts at i (the pattern covers every character, so
 * there is always one; pieces are never empty). */
static size_t piece_end(const uint8_t *s, size_t n, size_t i) {
    size_t adv0, adv;
    uint8_t c0 = s[i];
    unsigned k0 = cls_at(s, i, &adv0);
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) — case folding adds U+017F (long s, C5 BF) to s */
    if (c0 == '\'' && i + 1 < n) {
        uint8_t c1 = s[i + 1] | 0x20, c2 = i + 2 < n ? (uint8_t)(s[i + 2] | 0x20) : 0;
        /* (x | 0x20) == 's' only for 'S' and 's'; likewise for the other letters */
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
        if ((c1 == 'r' || c1 == 'v') && c2 == 'e') return i + 3;
        if (c1 == 'l' && c2 == 'l') return i + 3;
        if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return i + 3;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (k0 & C_L) return letters_end(s, n, i + adv0);
    if (!(k0 & C_N) && c0 != '\r' && c0 != '\n' && i + adv0 < n && (cls_at(s, i + adv0, &adv) & C_L))
        return letters_end(s, n, i + adv0 + adv);
    /* \p{N} */
    if (k0 & C_N) return i + adv0;
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = c0 == ' ' ? i + 1 : i;
    if (j < n && !cls_at(s, j, &adv)) {
        j += adv;
        while (j < n && !cls_at(s, j, &adv)) j += adv;
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* Here s[i] is white space. \s*[\r\n]+ ends after the last CR/LF of the run. */
    size_t w = i, last_nl = 0, last_start = i;
    while (w < n && (cls_at(s, w, &adv) & C_WS)) {
        if (s[w] == '\r' || s[w] == '\n') last_nl = w + 1;
        last_start = w;
        w += adv;
    }
    if (last_nl) return last_nl;
    /* \s+(?!\S): the whole run at the end of the text, else all but its last char */
    if (w == n) return n;
    if (last_start > i) return last_start;
    /* \s+ */
    return w;
}

static int encode_segment(enc *s, const uint8_t *seg, size_t len) {
    const uint8_t *text = seg;
    size_t n = len;
    if (s->t->normalize_nfc) {
        size_t need = 3 * len + 4;
        if (need > s->norm_cap) {
            uint8_t *q = realloc(s->norm, need);
            if (!q) return zt_err_set(s->e, ZT_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", need);
            s->norm = q;
            s->norm_cap = need;
        }
        long r = zt_tok_nfc(seg, len, s->norm, &s->nfc);
        if (r == -1) return zt_err_set(s->e, ZT_ERR_NOMEM, "tokenizer: out of memory in NFC");
        if (r < 0) return zt_err_set(s->e, ZT_ERR_INTERNAL, "tokenizer: NFC output overflow");
        text = s->norm;
        n = (size_t)r;
    }
    for (size_t i = 0; i < n && !s->overflow;) {
        size_t j = piece_end(text, n, i);
        int rc = bpe_piece(s, text + i, j - i);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

/* Replace ill-formed UTF-8 by U+FFFD, one per maximal subpart (Unicode §3.9,
 * as Rust's from_utf8_lossy). Returns the length of the valid prefix when out is
 * NULL; otherwise writes the repaired text (capacity 3 * len) and returns its length. */
static size_t utf8_repair(const uint8_t *in, size_t len, uint8_t *out) {
    size_t i = 0, o = 0;
    while (i < len) {
        uint8_t b = in[i];
        size_t need = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) need = 0;
        else if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b == 0xE0) { need = 2; lo = 0xA0; }
        else if (b >= 0xE1 && b <= 0xEC) need = 2;
        else if (b == 0xED) { need = 2; hi = 0x9F; }
        else if (b >= 0xEE && b <= 0xEF) need = 2;
        else if (b == 0xF0) { need = 3; lo = 0x90; }
        else if (b >= 0xF1 && b <= 0xF3) need = 3;
        else if (b == 0xF4) { need = 3; hi = 0x8F; }
        else need = SIZE_MAX; /* never a lead byte */
        size_t k = 1;
        if (need != SIZE_MAX) {
            while (k <= need && i + k < len) {
                uint8_t c = in[i + k];
                if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
                k++;
            }
        }
        if (need != SIZE_MAX && k == need + 1) {
            if (out) memcpy(out + o, in + i, k);
            o += k;
            i += k;
            continue;
        }
        if (!out) return i;
        out[o++] = 0xEF; out[o++] = 0xBF; out[o++] = 0xBD;
        i += need == SIZE_MAX ? 1 : k;
    }
    return o;
}

size_t zt_tokenizer_max_ids(size_t len) { return 3 * len + 1; }

int zt_tokenizer_encode(const zt_tokenizer *t, const char *text_in, size_t len, int32_t *ids, size_t cap, size_t *n,
                        int *truncated, zt_err *e) {
    enc s = {.t = t, .ids = ids, .cap = cap, .e = e};
    const uint8_t *text = (const uint8_t *)text_in;
    uint8_t *fixed = NULL;
    int rc = 0;
    *n = 0;
    if (truncated) *truncated = 0;
    if (len && utf8_repair(text, len, NULL) < len) {
        fixed = malloc(3 * len);
        if (!fixed) return zt_err_set(e, ZT_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", 3 * len);
        len = utf8_repair(text, len, fixed);
        text = fixed;
    }
    size_t pos = 0;
    while (pos < len && !s.overflow) {
        /* Next added token: leftmost start, longest at that start. */
        size_t m = pos, mlen = 0;
        int32_t mid = -1;
        if (t->n_added) {
            for (; m < len; m++) {
                uint8_t b = text[m];
                for (size_t k = t->added_first[b]; k < t->added_first[b + 1]; k++) {
                    const added_token *a = &t->added[k];
                    if (a->len <= len - m && !memcmp(text + m, a->content, a->len)) {
                        mlen = a->len; /* sorted longest first */
                        mid = a->id;
                        break;
                    }
                }
                if (mid >= 0) break;
            }
        } else m = len;
        if (m > pos && (rc = encode_segment(&s, text + pos, m - pos))) break;
        if (mid >= 0 && !s.overflow) emit(&s, mid);
        pos = mid >= 0 ? m + mlen : len;
    }
    *n = s.n;
    if (truncated) *truncated = s.overflow;
    free(fixed);
    free(s.norm);
    zt_tok_nfc_scratch_free(&s.nfc);
    free(s.sym);
    free(s.next);
    free(s.prev);
    free(s.heap);
    return rc;
}

static const char k_chat_head[] = "<|im_start|>user\n";
static const char k_chat_tail[] = "<|im_end|>\n<|im_start|>assistant\n";

int zt_tokenizer_chat_format(const char *prompt, size_t len, char **str, size_t *slen, zt_err *e) {
    size_t h = sizeof k_chat_head - 1, tl = sizeof k_chat_tail - 1;
    char *s = malloc(h + len + tl + 1);
    if (!s) return zt_err_set(e, ZT_ERR_NOMEM, "tokenizer: out of memory (%zu-byte prompt)", len);
    memcpy(s, k_chat_head, h);
    if (len) memcpy(s + h, prompt, len);
    memcpy(s + h + len, k_chat_tail, tl);
    s[h + len + tl] = 0;
    *str = s;
    *slen = h + len + tl;
    return ZT_OK;
}

int zt_tokenizer_encode_chat(const zt_tokenizer *t, const char *prompt, size_t len, size_t max_tokens, int32_t *ids,
                             size_t cap, size_t *n, int *truncated, zt_err *e) {
    char *s;
    size_t slen;
    *n = 0;
    int rc = zt_tokenizer_chat_format(prompt, len, &s, &slen, e);
    if (rc) return rc;
    if (max_tokens && max_tokens < cap) cap = max_tokens;
    rc = zt_tokenizer_encode(t, s, slen, ids, cap, n, truncated, e);
    free(s);
    return rc;
}
