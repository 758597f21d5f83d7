/* storage/wcode.c — coded bf16 weights: encoder, validator, CPU decoder
 * (format in storage/wcode.h). */
#include "storage/wcode.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "storage/store_format.h" /* zt_rd32 / zt_wr32 ... */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "storage/wcode.c reads the code sections as little-endian words"
#endif

#define TILE ZT_WCODE_TILE
#define CHUNK_WORDS ((uint64_t)ZT_WCODE_TILE * ZT_WCODE_CHUNK_TILES)
#define AL(x) ZT_ALIGN_UP((x), ZT_WCODE_ALIGN)

void zt_wcode_layout(uint64_t n, uint32_t n_esc1, uint32_t n_esc2, zt_wcode_info *L) {
    memset(L, 0, sizeof *L);
    L->n_words = n;
    L->n_tiles = (uint32_t)((n + TILE - 1) / TILE);
    L->n_chunks = (L->n_tiles + ZT_WCODE_CHUNK_TILES - 1) / ZT_WCODE_CHUNK_TILES;
    L->n_esc1 = n_esc1;
    L->n_esc2 = n_esc2;
    L->chunk_off = ZT_WCODE_ALIGN;
    L->tile_off = L->chunk_off + AL((uint64_t)L->n_chunks * ZT_WCODE_CHUNK_REC);
    L->sm_off = L->tile_off + AL(((uint64_t)L->n_tiles + 1) * ZT_WCODE_TILE_REC);
    L->code_off = L->sm_off + (uint64_t)L->n_tiles * TILE;
    L->esc_off = L->code_off + (uint64_t)L->n_tiles * (TILE / 4);
    L->raw_off = L->esc_off + AL(4 * (((uint64_t)n_esc1 * 3 + 31) / 32 + 1));
    L->total_bytes = L->raw_off + AL(n_esc2);
}

uint64_t zt_wcode_bound(uint64_t n) {
    zt_wcode_info L;
    uint32_t m = n > ZT_WCODE_MAX_WORDS ? 0xffffffffu : (uint32_t)n;
    zt_wcode_layout(n, m, m, &L);
    return L.total_bytes;
}

/* ---- a tiny parallel for: workers take items from a shared counter ---- */

typedef struct {
    void (*fn)(void *ctx, uint64_t item);
    void *ctx;
    uint64_t n;
    uint64_t next; /* atomic */
} pfor;

static void *pfor_worker(void *arg) {
    pfor *p = arg;
    for (;;) {
        uint64_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n) break;
        p->fn(p->ctx, i);
    }
    return NULL;
}

/* Run fn(ctx, 0..n-1) on `threads` threads (the caller is one of them). */
static void parallel_for(int threads, uint64_t n, void (*fn)(void *, uint64_t), void *ctx) {
    pfor p = {fn, ctx, n, 0};
    pthread_t tid[63];
    int k = 0;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if ((uint64_t)threads > n) threads = (int)n;
    for (; k < threads - 1; k++)
        if (pthread_create(&tid[k], NULL, pfor_worker, &p)) break; /* fewer threads still finish the work */
    pfor_worker(&p);
    for (int i = 0; i < k; i++) pthread_join(tid[i], NULL);
}

/* ---- encoder ---- */

typedef struct {
    const uint16_t *src;
    uint64_t n;
    uint8_t *dst;
    zt_wcode_info L;
    uint8_t *rank; /* [n_chunks][256]: exponent -> position in its chunk's frequency order */
} enc;

static uint32_t tile_words(const zt_wcode_info *L, uint64_t t) {
    uint64_t w0 = t * TILE;
    return (uint32_t)(L->n_words - w0 < TILE ? L->n_words - w0 : TILE);
}

/* Pass 1, one chunk: per-tile exponent histograms (one read of the words),
 * the codebook (exponents by count, then value: always ten distinct), and
 * each tile's escape counts from its histogram into the tile table (entry
 * t + 1 for now; a prefix sum turns them into starts). */
static void enc_count(void *ctx, uint64_t c) {
    enc *E = ctx;
    const zt_wcode_info *L = &E->L;
    const uint64_t t0 = c * ZT_WCODE_CHUNK_TILES, t1 = ZT_MIN((uint64_t)L->n_tiles, t0 + ZT_WCODE_CHUNK_TILES);
    uint16_t th[ZT_WCODE_CHUNK_TILES][256]; /* a tile has <= 4096 words: fits */
    uint32_t hist[256] = {0};
    for (uint64_t t = t0; t < t1; t++) {
        uint16_t *h = th[t - t0];
        memset(h, 0, sizeof th[0]);
        const uint16_t *s = E->src + t * TILE;
        const uint32_t nw = tile_words(L, t);
        for (uint32_t i = 0; i < nw; i++) h[(s[i] >> 7) & 0xff]++;
        for (int v = 0; v < 256; v++) hist[v] += h[v];
    }
    uint8_t order[256];
    for (int i = 0; i < 256; i++) order[i] = (uint8_t)i;
    /* insertion sort, stable on value: count descending */
    for (int i = 1; i < 256; i++) {
        uint8_t v = order[i];
        int j = i - 1;
        while (j >= 0 && hist[order[j]] < hist[v]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    uint8_t *rank = E->rank + c * 256;
    for (int i = 0; i < 256; i++) rank[order[i]] = (uint8_t)i;
    uint8_t *rec = E->dst + L->chunk_off + c * ZT_WCODE_CHUNK_REC;
    memcpy(rec, order, 10);
    memset(rec + 10, 0, ZT_WCODE_CHUNK_REC - 10);
    for (uint64_t t = t0; t < t1; t++) {
        const uint16_t *h = th[t - t0];
        uint32_t nw = tile_words(L, t), top3 = 0, top10 = 0;
        for (int i = 0; i < 10; i++) {
            top10 += h[order[i]];
            if (i < 3) top3 += h[order[i]];
        }
        uint8_t *te = E->dst + L->tile_off + (t + 1) * ZT_WCODE_TILE_REC;
        zt_wr32(te, nw - top3);
        zt_wr32(te + 4, nw - top10);
    }
}

/* Level-2 codes of one chunk go to a run of the bit string: whole u32 words
 * are stored plainly; the run's first and last words may be shared with the
 * neighbouring chunks (other threads), those are OR-ed atomically. */
typedef struct {
    uint32_t *words;
    uint64_t acc;     /* pending bits, from bit 0 */
    unsigned nacc;    /* how many */
    uint64_t w;       /* index of the word acc starts in */
    uint64_t w_first, w_last;
} bitw;

static inline void bitw_flush_word(bitw *b) {
    uint32_t v = (uint32_t)b->acc;
    if (b->w == b->w_first || b->w == b->w_last) __atomic_fetch_or(&b->words[b->w], v, __ATOMIC_RELAXED);
    else b->words[b->w] |= v;
    b->w++;
    b->acc >>= 32;
    b->nacc -= 32;
}

static inline void bitw_put3(bitw *b, uint32_t v) {
    b->acc |= (uint64_t)v << b->nacc;
    b->nacc += 3;
    if (b->nacc >= 32) bitw_flush_word(b);
}

/* Pass 2, one chunk: the sign|mantissa bytes, level-1 codes (a byte per 4
 * words), level-2 codes and raw exponents. */
static void enc_write(void *ctx, uint64_t c) {
    enc *E = ctx;
    const zt_wcode_info *L = &E->L;
    const uint8_t *rank = E->rank + c * 256;
    const uint64_t t0 = c * ZT_WCODE_CHUNK_TILES, t1 = ZT_MIN((uint64_t)L->n_tiles, t0 + ZT_WCODE_CHUNK_TILES);
    const uint8_t *tt = E->dst + L->tile_off;
    const uint64_t e1 = zt_rd32(tt + t0 * 8), e1_end = zt_rd32(tt + t1 * 8);
    uint64_t e2 = zt_rd32(tt + t0 * 8 + 4);
    bitw b = {(uint32_t *)(E->dst + L->esc_off), 0, 0, (3 * e1) >> 5, (3 * e1) >> 5, 0};
    b.w_last = e1_end > e1 ? (3 * e1_end - 1) >> 5 : b.w_first;
    b.nacc = (unsigned)((3 * e1) & 31); /* the run starts inside word w: bits below are the neighbour's (zero here) */
    uint8_t *raw = E->dst + L->raw_off;
    /* level-1 code and level-2 code (8: none) of each rank */
    uint8_t code1[256], code2[256];
    for (int r = 0; r < 256; r++) {
        code1[r] = (uint8_t)(r < 3 ? r : 3);
        code2[r] = (uint8_t)(r < 3 ? 8 : r < 10 ? r - 3 : 7);
    }
    for (uint64_t t = t0; t < t1; t++) {
        const uint32_t nw = tile_words(L, t);
        const uint16_t *s = E->src + t * TILE;
        uint8_t *sm = E->dst + L->sm_off + t * TILE;
        uint8_t *code = E->dst + L->code_off + t * (TILE / 4);
        if (nw < TILE) memset(sm + nw, 0, TILE - nw);
        uint32_t i = 0;
        for (; i + 4 <= nw; i += 4) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            /* sign|mantissa of 4 words at once, then their 4 low bytes packed */
            const uint64_t q = ((x >> 8) & 0x0080008000800080ull) | (x & 0x007f007f007f007full);
            const uint32_t p = (uint32_t)((q & 0xff) | ((q >> 8) & 0xff00) | ((q >> 16) & 0xff0000) | ((q >> 24) & 0xff000000u));
            memcpy(sm + i, &p, 4);
            uint32_t byte = 0;
            for (uint32_t j = 0; j < 4; j++) {
                const uint8_t e = (uint8_t)((x >> (16 * j + 7)) & 0xff), r = rank[e];
                byte |= (uint32_t)code1[r] << (2 * j);
                if (r < 3) continue;
                bitw_put3(&b, code2[r]);
                if (r >= 10) raw[e2++] = e;
            }
            code[i >> 2] = (uint8_t)byte;
        }
        for (; i < TILE; i += 4) { /* the last tile's tail */
            uint32_t byte = 0;
            for (uint32_t j = 0; j < 4 && i + j < nw; j++) {
                const uint16_t w = s[i + j];
                sm[i + j] = (uint8_t)(((w >> 8) & 0x80) | (w & 0x7f));
                const uint8_t e = (uint8_t)((w >> 7) & 0xff), r = rank[e];
                byte |= (uint32_t)code1[r] << (2 * j);
                if (r < 3) continue;
                bitw_put3(&b, code2[r]);
                if (r >= 10) raw[e2++] = e;
            }
            code[i >> 2] = (uint8_t)byte;
        }
    }
    if (b.nacc) { /* the last, partial word */
        b.nacc = 32;
        bitw_flush_word(&b);
    }
}

static void put_header(uint8_t *h, const zt_wcode_info *L) {
    memset(h, 0, ZT_WCODE_ALIGN);
    memcpy(h, ZT_WCODE_MAGIC, 8);
    zt_wr32(h + 8, ZT_WCODE_VERSION);
    zt_wr64(h + 16, L->n_words);
    zt_wr32(h + 24, ZT_WCODE_TILE);
    zt_wr32(h + 28, ZT_WCODE_CHUNK_TILES);
    zt_wr32(h + 32, L->n_tiles);
    zt_wr32(h + 36, L->n_chunks);
    zt_wr32(h + 40, L->n_esc1);
    zt_wr32(h + 44, L->n_esc2);
    zt_wr64(h + 48, L->total_bytes);
    zt_wr64(h + 56, L->image_xxh64);
    zt_wr64(h + 64, L->body_xxh64);
    zt_wr64(h + 120, XXH64(h, 120, 0));
}

int zt_wcode_encode(const uint16_t *src, uint64_t n, void *dst, uint64_t cap, int threads, uint64_t *out_bytes,
                    zt_err *e) {
    if (n == 0 || n > ZT_WCODE_MAX_WORDS)
        return zt_err_set(e, ZT_ERR_ARG, "wcode: %llu words is outside [1, 2^32)", (unsigned long long)n);
    enc E = {src, n, dst, {0}, NULL};
    zt_wcode_layout(n, 0, 0, &E.L);
    if (cap < E.L.sm_off) return zt_err_set(e, ZT_ERR_ARG, "wcode: output buffer too small");
    E.rank = malloc((size_t)E.L.n_chunks * 256);
    if (!E.rank) return zt_err_set(e, ZT_ERR_NOMEM, "wcode: out of host memory");
    uint8_t *d = dst;
    memset(d, 0, E.L.sm_off); /* header, tables and their padding */
    parallel_for(threads, E.L.n_chunks, enc_count, &E);
    /* counts of tile t are in entry t + 1: prefix sums make them starts */
    uint64_t s1 = 0, s2 = 0;
    for (uint64_t t = 0; t <= E.L.n_tiles; t++) {
        uint8_t *te = d + E.L.tile_off + t * ZT_WCODE_TILE_REC;
        s1 += t ? zt_rd32(te) : 0;
        s2 += t ? zt_rd32(te + 4) : 0;
        zt_wr32(te, (uint32_t)s1);
        zt_wr32(te + 4, (uint32_t)s2);
    }
    zt_wcode_layout(n, (uint32_t)s1, (uint32_t)s2, &E.L);
    if (cap < E.L.total_bytes) {
        free(E.rank);
        return zt_err_set(e, ZT_ERR_ARG, "wcode: output buffer of %llu bytes is too small (needs %llu)",
                          (unsigned long long)cap, (unsigned long long)E.L.total_bytes);
    }
    memset(d + E.L.esc_off, 0, E.L.total_bytes - E.L.esc_off); /* bit string and raw bytes, padding included */
    parallel_for(threads, E.L.n_chunks, enc_write, &E);
    free(E.rank);
    E.L.image_xxh64 = XXH64(src, n * 2, 0);
    E.L.body_xxh64 = XXH64(d + ZT_WCODE_ALIGN, E.L.total_bytes - ZT_WCODE_ALIGN, 0);
    put_header(d, &E.L);
    *out_bytes = E.L.total_bytes;
    return ZT_OK;
}

/* ---- validation ---- */

static int all_zero(const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static inline uint32_t get3(const uint8_t *esc, uint64_t k) {
    uint64_t bit = 3 * k;
    uint32_t lo, hi;
    memcpy(&lo, esc + (bit >> 5) * 4, 4);
    memcpy(&hi, esc + (bit >> 5) * 4 + 4, 4);
    uint64_t v = ((uint64_t)hi << 32 | lo) >> (bit & 31);
    return (uint32_t)v & 7u;
}

/* Escape ranges of tile t, clamped to the streams and to one tile's worth
 * (the decoders' memory-safety rule; kernels/cuda_wdecode.cu clamps the
 * same way, so both decode even lying tables to the same words). */
static void tile_range(const uint8_t *img, const zt_wcode_info *L, uint64_t t, uint64_t *a1, uint64_t *b1,
                       uint64_t *a2, uint64_t *b2) {
    const uint8_t *te = img + L->tile_off + t * ZT_WCODE_TILE_REC;
    uint64_t s1 = ZT_MIN(zt_rd32(te), L->n_esc1), e1 = ZT_MIN(zt_rd32(te + 8), L->n_esc1);
    uint64_t s2 = ZT_MIN(zt_rd32(te + 4), L->n_esc2), e2 = ZT_MIN(zt_rd32(te + 12), L->n_esc2);
    *a1 = s1;
    *b1 = ZT_MIN(e1 > s1 ? e1 : s1, s1 + TILE);
    *a2 = s2;
    *b2 = ZT_MIN(e2 > s2 ? e2 : s2, s2 + TILE);
}

static int check_content(const uint8_t *img, const zt_wcode_info *L, const char *name, zt_err *e) {
    const uint8_t *esc = img + L->esc_off, *raw = img + L->raw_off;
    for (uint64_t t = 0; t < L->n_tiles; t++) {
        uint32_t nw = tile_words(L, t);
        const uint8_t *code = img + L->code_off + t * (TILE / 4), *sm = img + L->sm_off + t * TILE;
        const uint8_t *cb = img + L->chunk_off + (t / ZT_WCODE_CHUNK_TILES) * ZT_WCODE_CHUNK_REC;
        uint64_t a1, b1, a2, b2;
        tile_range(img, L, t, &a1, &b1, &a2, &b2);
        uint64_t n1 = 0;
        for (uint32_t i = 0; i < TILE / 4; i++) {
            uint8_t x = code[i];
            n1 += (uint64_t)__builtin_popcount(x & (x >> 1) & 0x55u);
        }
        for (uint32_t i = nw; i < TILE; i++)
            if (((code[i >> 2] >> (2 * (i & 3))) & 3) || sm[i])
                return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: tile %llu has non-zero codes past the last word",
                                  name, (unsigned long long)t);
        if (n1 != b1 - a1)
            return zt_err_set(e, ZT_ERR_FORMAT,
                              "%s: coded image: tile %llu holds %llu level-1 escapes, its table entry says %llu", name,
                              (unsigned long long)t, (unsigned long long)n1, (unsigned long long)(b1 - a1));
        uint64_t n2 = 0;
        for (uint64_t k = a1; k < b1; k++) n2 += get3(esc, k) == 7;
        if (n2 != b2 - a2)
            return zt_err_set(e, ZT_ERR_FORMAT,
                              "%s: coded image: tile %llu holds %llu level-2 escapes, its table entry says %llu", name,
                              (unsigned long long)t, (unsigned long long)n2, (unsigned long long)(b2 - a2));
        for (uint64_t j = a2; j < b2; j++)
            if (memchr(cb, raw[j], 10))
                return zt_err_set(e, ZT_ERR_FORMAT,
                                  "%s: coded image: raw exponent %u of tile %llu is in its codebook", name, raw[j],
                                  (unsigned long long)t);
    }
    /* the bit string past the last code, the raw section's padding */
    uint64_t bits = 3 * (uint64_t)L->n_esc1;
    const uint8_t *eb = esc + bits / 8;
    if ((bits & 7) && (*eb >> (bits & 7))) goto pad;
    if (!all_zero(eb + ((bits & 7) != 0), L->raw_off - L->esc_off - bits / 8 - ((bits & 7) != 0))) goto pad;
    if (!all_zero(raw + L->n_esc2, L->total_bytes - L->raw_off - L->n_esc2)) goto pad;
    return ZT_OK;
pad:
    return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: non-zero padding after the escape streams", name);
}

int zt_wcode_validate(const void *img_, uint64_t len, unsigned checks, const char *name, zt_wcode_info *out,
                      zt_err *e) {
    const uint8_t *h = img_;
    if (!name) name = "weights";
    if (len < ZT_WCODE_ALIGN)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: truncated (%llu bytes, the header needs %u)", name,
                          (unsigned long long)len, ZT_WCODE_ALIGN);
    if (memcmp(h, ZT_WCODE_MAGIC, 8)) return zt_err_set(e, ZT_ERR_FORMAT, "%s: not a coded image (bad magic)", name);
    if (zt_rd32(h + 8) != ZT_WCODE_VERSION)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: coded image version %u is not supported (this build reads %u)",
                          name, zt_rd32(h + 8), ZT_WCODE_VERSION);
    if (XXH64(h, 120, 0) != zt_rd64(h + 120))
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: coded image: header checksum mismatch", name);
    if (zt_rd32(h + 12) || !all_zero(h + 72, 48) || !all_zero(h + 128, ZT_WCODE_ALIGN - 128))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: reserved header bytes are not zero", name);
    uint64_t n = zt_rd64(h + 16);
    uint32_t n_esc1 = zt_rd32(h + 40), n_esc2 = zt_rd32(h + 44);
    if (n == 0 || n > ZT_WCODE_MAX_WORDS)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: %llu words is outside [1, 2^32)", name,
                          (unsigned long long)n);
    if (zt_rd32(h + 24) != ZT_WCODE_TILE || zt_rd32(h + 28) != ZT_WCODE_CHUNK_TILES)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: tile of %u words / chunk of %u tiles (expected %u / %u)",
                          name, zt_rd32(h + 24), zt_rd32(h + 28), ZT_WCODE_TILE, ZT_WCODE_CHUNK_TILES);
    if (n_esc1 > n || n_esc2 > n_esc1)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: escape counts %u / %u exceed %llu words", name, n_esc1,
                          n_esc2, (unsigned long long)n);
    zt_wcode_info L;
    zt_wcode_layout(n, n_esc1, n_esc2, &L);
    if (zt_rd32(h + 32) != L.n_tiles || zt_rd32(h + 36) != L.n_chunks)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: %u tiles / %u chunks do not fit %llu words", name,
                          zt_rd32(h + 32), zt_rd32(h + 36), (unsigned long long)n);
    if (zt_rd64(h + 48) != L.total_bytes)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: total size %llu is not the layout's %llu", name,
                          (unsigned long long)zt_rd64(h + 48), (unsigned long long)L.total_bytes);
    if (len < L.total_bytes)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: truncated (%llu of %llu bytes)", name,
                          (unsigned long long)len, (unsigned long long)L.total_bytes);
    L.image_xxh64 = zt_rd64(h + 56);
    L.body_xxh64 = zt_rd64(h + 64);
    /* tables */
    for (uint64_t c = 0; c < L.n_chunks; c++) {
        const uint8_t *cb = h + L.chunk_off + c * ZT_WCODE_CHUNK_REC;
        uint8_t seen[256] = {0};
        for (int i = 0; i < 10; i++) {
            if (seen[cb[i]])
                return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %llu's codebook lists exponent %u twice",
                                  name, (unsigned long long)c, cb[i]);
            seen[cb[i]] = 1;
        }
        if (!all_zero(cb + 10, ZT_WCODE_CHUNK_REC - 10))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %llu's record has non-zero padding", name,
                              (unsigned long long)c);
    }
    const uint8_t *tt = h + L.tile_off;
    if (zt_rd32(tt) || zt_rd32(tt + 4))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: the tile table does not start at zero escapes", name);
    for (uint64_t t = 0; t < L.n_tiles; t++) {
        const uint8_t *a = tt + t * 8;
        uint32_t s1 = zt_rd32(a), s2 = zt_rd32(a + 4), e1 = zt_rd32(a + 8), e2 = zt_rd32(a + 12);
        if (e1 < s1 || e2 < s2 || e1 - s1 > tile_words(&L, t) || e2 - s2 > e1 - s1 || e1 > n_esc1 || e2 > n_esc2)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: tile %llu's escape counts (%u..%u, %u..%u) are impossible",
                              name, (unsigned long long)t, s1, e1, s2, e2);
    }
    if (zt_rd32(tt + (uint64_t)L.n_tiles * 8) != n_esc1 || zt_rd32(tt + (uint64_t)L.n_tiles * 8 + 4) != n_esc2)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: the tile table does not end at the header's escape counts",
                          name);
    if (!all_zero(h + L.chunk_off + (uint64_t)L.n_chunks * ZT_WCODE_CHUNK_REC,
                  L.tile_off - L.chunk_off - (uint64_t)L.n_chunks * ZT_WCODE_CHUNK_REC) ||
        !all_zero(tt + ((uint64_t)L.n_tiles + 1) * 8, L.sm_off - L.tile_off - ((uint64_t)L.n_tiles + 1) * 8))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: non-zero padding after the tables", name);
    if ((checks & ZT_WCODE_CHECK_BODY) &&
        XXH64(h + ZT_WCODE_ALIGN, L.total_bytes - ZT_WCODE_ALIGN, 0) != L.body_xxh64)
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: coded image: body checksum mismatch", name);
    if ((checks & ZT_WCODE_CHECK_CONTENT) && check_content(h, &L, name, e)) return e ? e->code : ZT_ERR_FORMAT;
    if (out) *out = L;
    return ZT_OK;
}

/* ---- CPU decoder ---- */

void zt_wcode_decode_tiles(const void *img_, const zt_wcode_info *L, uint16_t *dst, uint32_t t0, uint32_t t1) {
    const uint8_t *img = img_;
    const uint8_t *esc = img + L->esc_off, *raw = img + L->raw_off;
    for (uint64_t t = t0; t < t1 && t < L->n_tiles; t++) {
        const uint8_t *cb = img + L->chunk_off + (t / ZT_WCODE_CHUNK_TILES) * ZT_WCODE_CHUNK_REC;
        const uint8_t *sm = img + L->sm_off + t * TILE, *code = img + L->code_off + t * (TILE / 4);
        uint64_t k1, b1, k2, b2;
        tile_range(img, L, t, &k1, &b1, &k2, &b2);
        uint32_t nw = tile_words(L, t);
        uint16_t *o = dst + t * TILE;
        for (uint32_t i = 0; i < nw; i++) {
            unsigned c = (code[i >> 2] >> (2 * (i & 3))) & 3u;
            uint8_t x;
            if (c < 3) {
                x = cb[c];
            } else {
                unsigned c2 = k1 < b1 ? get3(esc, k1++) : 0; /* past the tile's range: corrupt, stay inside */
                if (c2 < 7) x = cb[3 + c2];
                else x = k2 < b2 ? raw[k2++] : 0;
            }
            o[i] = (uint16_t)(((unsigned)(sm[i] & 0x80) << 8) | ((unsigned)x << 7) | (sm[i] & 0x7fu));
        }
    }
}

typedef struct {
    const void *img;
    const zt_wcode_info *L;
    uint16_t *dst;
} dec;

static void dec_chunk(void *ctx, uint64_t c) {
    dec *D = ctx;
    zt_wcode_decode_tiles(D->img, D->L, D->dst, (uint32_t)(c * ZT_WCODE_CHUNK_TILES),
                          (uint32_t)ZT_MIN((uint64_t)D->L->n_tiles, (c + 1) * ZT_WCODE_CHUNK_TILES));
}

int zt_wcode_decode(const void *img, const zt_wcode_info *L, uint16_t *dst, int threads, int verify, const char *name,
                    zt_err *e) {
    dec D = {img, L, dst};
    parallel_for(threads, L->n_chunks, dec_chunk, &D);
    if (verify && XXH64(dst, L->n_words * 2, 0) != L->image_xxh64)
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: coded image decodes to other words than were coded (checksum)",
                          name ? name : "weights");
    return ZT_OK;
}
