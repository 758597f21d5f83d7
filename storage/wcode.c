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

uint64_t zt_wcode_chunk_bytes(uint32_t tiles, uint32_t e1, uint32_t e2) {
    return ZT_WCODE_CHUNK_HEAD + (uint64_t)tiles * (TILE + TILE / 4) + AL(4 * (((uint64_t)e1 * 3 + 31) / 32 + 1)) +
           AL(e2);
}

uint64_t zt_wcode_dir_bytes(uint64_t n) {
    uint64_t t = (n + TILE - 1) / TILE, c = (t + ZT_WCODE_CHUNK_TILES - 1) / ZT_WCODE_CHUNK_TILES;
    return AL(ZT_WCODE_ALIGN + 8 * (c + 1));
}

static void info_init(uint64_t n, zt_wcode_info *L) {
    memset(L, 0, sizeof *L);
    L->n_words = n;
    L->n_tiles = (uint32_t)((n + TILE - 1) / TILE);
    L->n_chunks = (L->n_tiles + ZT_WCODE_CHUNK_TILES - 1) / ZT_WCODE_CHUNK_TILES;
    L->dir_bytes = zt_wcode_dir_bytes(n);
}

static uint32_t chunk_tiles(const zt_wcode_info *L, uint64_t c) {
    uint64_t t0 = c * ZT_WCODE_CHUNK_TILES;
    return (uint32_t)ZT_MIN((uint64_t)ZT_WCODE_CHUNK_TILES, L->n_tiles - t0);
}

static uint32_t tile_words(const zt_wcode_info *L, uint64_t t) {
    uint64_t w0 = t * TILE;
    return (uint32_t)(L->n_words - w0 < TILE ? L->n_words - w0 : TILE);
}

uint64_t zt_wcode_bound(uint64_t n) {
    zt_wcode_info L;
    info_init(n, &L);
    uint64_t b = L.dir_bytes;
    for (uint64_t c = 0; c < L.n_chunks; c++) {
        uint32_t tl = chunk_tiles(&L, c);
        b += zt_wcode_chunk_bytes(tl, tl * TILE, tl * TILE);
    }
    return b;
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
    uint8_t *dst;
    zt_wcode_info L;
    uint8_t *rank;     /* [C][256]: exponent -> position in its chunk's frequency order */
    uint8_t *cb;       /* [C][10] */
    uint32_t *counts;  /* [C][65][2]: escapes before each tile (chunk-relative), entry Tc = totals */
    uint64_t *dir;     /* [C + 1] */
} enc;

/* Pass 1, one chunk: per-tile exponent histograms (one read of the words),
 * the codebook (exponents by count, then value: always ten distinct), and
 * the tile table from the histograms. */
static void enc_count(void *ctx, uint64_t c) {
    enc *E = ctx;
    const zt_wcode_info *L = &E->L;
    const uint32_t tiles = chunk_tiles(L, c);
    const uint64_t t0 = c * ZT_WCODE_CHUNK_TILES;
    uint16_t th[ZT_WCODE_CHUNK_TILES][256]; /* a tile has <= 4096 words: fits */
    uint32_t hist[256] = {0};
    for (uint32_t lt = 0; lt < tiles; lt++) {
        uint16_t *h = th[lt];
        memset(h, 0, sizeof th[0]);
        const uint16_t *s = E->src + (t0 + lt) * TILE;
        const uint32_t nw = tile_words(L, t0 + lt);
        for (uint32_t i = 0; i < nw; i++) h[(s[i] >> 7) & 0xff]++;
        for (int v = 0; v < 256; v++) hist[v] += h[v];
    }
    uint8_t order[256];
    for (int i = 0; i < 256; i++) order[i] = (uint8_t)i;
    for (int i = 1; i < 256; i++) { /* insertion sort, stable on value: count descending */
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
    memcpy(E->cb + c * 10, order, 10);
    uint32_t *cnt = E->counts + c * 130, s1 = 0, s2 = 0;
    for (uint32_t lt = 0; lt < tiles; lt++) {
        const uint16_t *h = th[lt];
        uint32_t nw = tile_words(L, t0 + lt), top3 = 0, top10 = 0;
        for (int i = 0; i < 10; i++) {
            top10 += h[order[i]];
            if (i < 3) top3 += h[order[i]];
        }
        cnt[2 * lt] = s1;
        cnt[2 * lt + 1] = s2;
        s1 += nw - top3;
        s2 += nw - top10;
    }
    cnt[2 * tiles] = s1;
    cnt[2 * tiles + 1] = s2;
}

/* Pass 2, one chunk, written at its directory offset: the head (codebook,
 * tile table), the sign|mantissa bytes, level-1 codes (a byte per 4 words),
 * level-2 codes through a word accumulator, raw exponents; padding zero. */
static void enc_write(void *ctx, uint64_t c) {
    enc *E = ctx;
    const zt_wcode_info *L = &E->L;
    const uint32_t tiles = chunk_tiles(L, c);
    const uint64_t t0 = c * ZT_WCODE_CHUNK_TILES;
    const uint32_t *cnt = E->counts + c * 130;
    const uint32_t e1 = cnt[2 * tiles], e2_total = cnt[2 * tiles + 1];
    uint8_t *ch = E->dst + E->dir[c];
    memset(ch, 0, ZT_WCODE_CHUNK_HEAD);
    memcpy(ch, E->cb + c * 10, 10);
    for (uint32_t i = 0; i <= 2 * tiles + 1; i++) zt_wr32(ch + 16 + 4 * i, cnt[i]);
    uint8_t *sm0 = ch + ZT_WCODE_CHUNK_HEAD, *code0 = sm0 + (uint64_t)tiles * TILE;
    uint8_t *esc = code0 + (uint64_t)tiles * (TILE / 4);
    const uint64_t esc_bytes = AL(4 * (((uint64_t)e1 * 3 + 31) / 32 + 1));
    uint8_t *raw = esc + esc_bytes;
    memset(esc, 0, esc_bytes + AL(e2_total));
    const uint8_t *rank = E->rank + c * 256;
    uint8_t code1[256], code2[256]; /* level-1 and level-2 code of each rank */
    for (int r = 0; r < 256; r++) {
        code1[r] = (uint8_t)(r < 3 ? r : 3);
        code2[r] = (uint8_t)(r < 10 ? r - 3 : 7);
    }
    uint64_t acc = 0, wi = 0;
    unsigned nacc = 0;
    uint32_t e2 = 0;
#define PUT3(v)                                                                                                        \
    do {                                                                                                               \
        acc |= (uint64_t)(v) << nacc;                                                                                  \
        if ((nacc += 3) >= 32) {                                                                                       \
            zt_wr32(esc + 4 * wi++, (uint32_t)acc);                                                                    \
            acc >>= 32;                                                                                                \
            nacc -= 32;                                                                                                \
        }                                                                                                              \
    } while (0)
    for (uint32_t lt = 0; lt < tiles; lt++) {
        const uint32_t nw = tile_words(L, t0 + lt);
        const uint16_t *s = E->src + (t0 + lt) * TILE;
        uint8_t *sm = sm0 + (uint64_t)lt * TILE, *code = code0 + (uint64_t)lt * (TILE / 4);
        if (nw < TILE) {
            memset(sm + nw, 0, TILE - nw);
            memset(code, 0, TILE / 4);
        }
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
                PUT3(code2[r]);
                if (r >= 10) raw[e2++] = e;
            }
            code[i >> 2] = (uint8_t)byte;
        }
        if (i < nw) { /* the image's last words */
            uint32_t byte = 0;
            for (uint32_t j = 0; i + j < nw; j++) {
                const uint16_t w = s[i + j];
                sm[i + j] = (uint8_t)(((w >> 8) & 0x80) | (w & 0x7f));
                const uint8_t e = (uint8_t)((w >> 7) & 0xff), r = rank[e];
                byte |= (uint32_t)code1[r] << (2 * j);
                if (r < 3) continue;
                PUT3(code2[r]);
                if (r >= 10) raw[e2++] = e;
            }
            code[i >> 2] = (uint8_t)byte;
        }
    }
#undef PUT3
    if (nacc) zt_wr32(esc + 4 * wi, (uint32_t)acc);
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
    enc E = {src, dst, {0}, NULL, NULL, NULL, NULL};
    info_init(n, &E.L);
    const uint64_t C = E.L.n_chunks;
    E.rank = malloc(C * 256);
    E.cb = malloc(C * 10);
    E.counts = malloc(C * 130 * sizeof *E.counts);
    E.dir = malloc((C + 1) * sizeof *E.dir);
    int rc = ZT_OK;
    if (!E.rank || !E.cb || !E.counts || !E.dir) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "wcode: out of host memory");
        goto done;
    }
    parallel_for(threads, C, enc_count, &E);
    uint64_t off = E.L.dir_bytes, s1 = 0, s2 = 0;
    for (uint64_t c = 0; c < C; c++) {
        const uint32_t tiles = chunk_tiles(&E.L, c), *cnt = E.counts + c * 130;
        E.dir[c] = off;
        off += zt_wcode_chunk_bytes(tiles, cnt[2 * tiles], cnt[2 * tiles + 1]);
        s1 += cnt[2 * tiles];
        s2 += cnt[2 * tiles + 1];
    }
    E.dir[C] = off;
    if (cap < off) {
        rc = zt_err_set(e, ZT_ERR_ARG, "wcode: output buffer of %llu bytes is too small (needs %llu)",
                        (unsigned long long)cap, (unsigned long long)off);
        goto done;
    }
    E.L.n_esc1 = (uint32_t)s1;
    E.L.n_esc2 = (uint32_t)s2;
    E.L.total_bytes = off;
    uint8_t *d = dst;
    memset(d, 0, E.L.dir_bytes);
    for (uint64_t c = 0; c <= C; c++) zt_wr64(d + ZT_WCODE_ALIGN + 8 * c, E.dir[c]);
    parallel_for(threads, C, enc_write, &E);
    E.L.image_xxh64 = XXH64(src, n * 2, 0);
    E.L.body_xxh64 = XXH64(d + ZT_WCODE_ALIGN, off - ZT_WCODE_ALIGN, 0);
    put_header(d, &E.L);
    *out_bytes = off;
done:
    free(E.rank);
    free(E.cb);
    free(E.counts);
    free(E.dir);
    return rc;
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
    return (uint32_t)((((uint64_t)hi << 32 | lo) >> (bit & 31)) & 7u);
}

/* A chunk as the decoders see it: its sections inside the bytes they were
 * given, the counts clamped so that nothing points outside (the GPU kernel
 * clamps the same way: both decode even lying data to the same words). */
typedef struct {
    const uint8_t *p;     /* chunk start; NULL: not decodable (its words become 0) */
    uint32_t tiles, e1, e2;
    const uint8_t *sm, *code, *esc, *raw;
} chunk_view;

static void chunk_open(const uint8_t *head, const uint8_t *piece, uint64_t piece_len, uint64_t piece_base,
                       const zt_wcode_info *L, uint32_t c, chunk_view *v) {
    memset(v, 0, sizeof *v);
    v->tiles = chunk_tiles(L, c);
    const uint64_t s = zt_wcode_dir(head, c), t = zt_wcode_dir(head, c + 1);
    if (s < piece_base || s - piece_base > piece_len || t < s || (s - piece_base) % ZT_WCODE_ALIGN) return;
    const uint64_t len = ZT_MIN(t - s, piece_len - (s - piece_base));
    if (len < ZT_WCODE_CHUNK_HEAD + (uint64_t)v->tiles * (TILE + TILE / 4)) return;
    v->p = piece + (s - piece_base);
    v->e1 = zt_rd32(v->p + 16 + 8 * (uint64_t)v->tiles);
    v->e2 = zt_rd32(v->p + 20 + 8 * (uint64_t)v->tiles);
    if (v->e1 > v->tiles * TILE || v->e2 > v->e1 || zt_wcode_chunk_bytes(v->tiles, v->e1, v->e2) > len)
        v->e1 = v->e2 = 0; /* counts a chunk cannot have, or that do not fit its bytes */
    v->sm = v->p + ZT_WCODE_CHUNK_HEAD;
    v->code = v->sm + (uint64_t)v->tiles * TILE;
    v->esc = v->code + (uint64_t)v->tiles * (TILE / 4);
    v->raw = v->esc + AL(4 * (((uint64_t)v->e1 * 3 + 31) / 32 + 1));
}

/* Escape ranges of local tile lt: clamped to the chunk's counts and to one
 * tile's worth. */
static void tile_range(const chunk_view *v, uint32_t lt, uint32_t *a1, uint32_t *b1, uint32_t *a2, uint32_t *b2) {
    const uint8_t *te = v->p + 16 + 8 * (uint64_t)lt;
    uint32_t s1 = ZT_MIN(zt_rd32(te), v->e1), e1 = ZT_MIN(zt_rd32(te + 8), v->e1);
    uint32_t s2 = ZT_MIN(zt_rd32(te + 4), v->e2), e2 = ZT_MIN(zt_rd32(te + 12), v->e2);
    *a1 = s1;
    *b1 = (uint32_t)ZT_MIN((uint64_t)(e1 > s1 ? e1 : s1), (uint64_t)s1 + TILE);
    *a2 = s2;
    *b2 = (uint32_t)ZT_MIN((uint64_t)(e2 > s2 ? e2 : s2), (uint64_t)s2 + TILE);
}

static int check_content(const uint8_t *img, const zt_wcode_info *L, const char *name, zt_err *e) {
    for (uint32_t c = 0; c < L->n_chunks; c++) {
        chunk_view v;
        chunk_open(img, img, L->total_bytes, 0, L, c, &v);
        for (uint32_t lt = 0; lt < v.tiles; lt++) {
            const uint64_t t = (uint64_t)c * ZT_WCODE_CHUNK_TILES + lt;
            const uint32_t nw = tile_words(L, t);
            const uint8_t *code = v.code + (uint64_t)lt * (TILE / 4), *sm = v.sm + (uint64_t)lt * TILE;
            uint32_t a1, b1, a2, b2, n1 = 0, n2 = 0;
            tile_range(&v, lt, &a1, &b1, &a2, &b2);
            for (uint32_t i = 0; i < TILE / 4; i++) n1 += (uint32_t)__builtin_popcount(code[i] & (code[i] >> 1) & 0x55u);
            for (uint32_t i = nw; i < TILE; i++)
                if (((code[i >> 2] >> (2 * (i & 3))) & 3) || sm[i])
                    return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: tile %llu has non-zero codes past the last word",
                                      name, (unsigned long long)t);
            if (n1 != b1 - a1)
                return zt_err_set(e, ZT_ERR_FORMAT,
                                  "%s: coded image: tile %llu holds %u level-1 escapes, its table entry says %u", name,
                                  (unsigned long long)t, n1, b1 - a1);
            for (uint32_t k = a1; k < b1; k++) n2 += get3(v.esc, k) == 7;
            if (n2 != b2 - a2)
                return zt_err_set(e, ZT_ERR_FORMAT,
                                  "%s: coded image: tile %llu holds %u level-2 escapes, its table entry says %u", name,
                                  (unsigned long long)t, n2, b2 - a2);
            for (uint32_t j = a2; j < b2; j++)
                if (memchr(v.p, v.raw[j], 10))
                    return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: raw exponent %u of tile %llu is in its codebook",
                                      name, v.raw[j], (unsigned long long)t);
        }
        /* the bit string past the chunk's last code, the raw section's padding */
        const uint64_t bits = 3 * (uint64_t)v.e1, end = zt_wcode_dir(img, c + 1);
        const uint8_t *eb = v.esc + bits / 8;
        if (((bits & 7) && (*eb >> (bits & 7))) || !all_zero(eb + ((bits & 7) != 0), (uint64_t)(v.raw - eb) - ((bits & 7) != 0)) ||
            !all_zero(v.raw + v.e2, (uint64_t)(img + end - v.raw) - v.e2))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u has non-zero padding after its escapes", name, c);
    }
    return ZT_OK;
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
    const uint64_t n = zt_rd64(h + 16);
    const uint32_t n_esc1 = zt_rd32(h + 40), n_esc2 = zt_rd32(h + 44);
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
    info_init(n, &L);
    L.n_esc1 = n_esc1;
    L.n_esc2 = n_esc2;
    L.total_bytes = zt_rd64(h + 48);
    L.image_xxh64 = zt_rd64(h + 56);
    L.body_xxh64 = zt_rd64(h + 64);
    if (zt_rd32(h + 32) != L.n_tiles || zt_rd32(h + 36) != L.n_chunks)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: %u tiles / %u chunks do not fit %llu words", name,
                          zt_rd32(h + 32), zt_rd32(h + 36), (unsigned long long)n);
    if (L.total_bytes < L.dir_bytes || len < L.total_bytes)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: truncated (%llu bytes given, the header says %llu)", name,
                          (unsigned long long)len, (unsigned long long)L.total_bytes);
    if (!all_zero(h + ZT_WCODE_ALIGN + 8 * ((uint64_t)L.n_chunks + 1),
                  L.dir_bytes - ZT_WCODE_ALIGN - 8 * ((uint64_t)L.n_chunks + 1)))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: non-zero padding after the directory", name);
    /* chunks: each where the one before ended, its size the layout of its counts */
    uint64_t at = L.dir_bytes, s1 = 0, s2 = 0;
    for (uint32_t c = 0; c < L.n_chunks; c++) {
        const uint32_t tiles = chunk_tiles(&L, c);
        if (zt_wcode_dir(h, c) != at)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u starts at %llu, not where chunk %u ends (%llu)",
                              name, c, (unsigned long long)zt_wcode_dir(h, c), c ? c - 1 : 0, (unsigned long long)at);
        if (L.total_bytes - at < ZT_WCODE_CHUNK_HEAD)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u runs past the end", name, c);
        const uint8_t *p = h + at;
        uint8_t seen[256] = {0};
        for (int i = 0; i < 10; i++) {
            if (seen[p[i]])
                return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u's codebook lists exponent %u twice", name,
                                  c, p[i]);
            seen[p[i]] = 1;
        }
        if (!all_zero(p + 10, 6) || !all_zero(p + 16 + 8 * ((uint64_t)tiles + 1), ZT_WCODE_CHUNK_HEAD - 16 - 8 * ((uint64_t)tiles + 1)))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u's head has non-zero padding", name, c);
        if (zt_rd32(p + 16) || zt_rd32(p + 20))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u's tile table does not start at zero escapes",
                              name, c);
        for (uint32_t lt = 0; lt < tiles; lt++) {
            const uint8_t *a = p + 16 + 8 * (uint64_t)lt;
            const uint32_t a1 = zt_rd32(a), a2 = zt_rd32(a + 4), b1 = zt_rd32(a + 8), b2 = zt_rd32(a + 12);
            if (b1 < a1 || b2 < a2 || b1 - a1 > tile_words(&L, (uint64_t)c * ZT_WCODE_CHUNK_TILES + lt) ||
                b2 - a2 > b1 - a1)
                return zt_err_set(e, ZT_ERR_FORMAT,
                                  "%s: coded image: tile %llu's escape counts (%u..%u, %u..%u) are impossible", name,
                                  (unsigned long long)c * ZT_WCODE_CHUNK_TILES + lt, a1, b1, a2, b2);
        }
        const uint32_t e1 = zt_rd32(p + 16 + 8 * (uint64_t)tiles), e2 = zt_rd32(p + 20 + 8 * (uint64_t)tiles);
        const uint64_t size = zt_wcode_chunk_bytes(tiles, e1, e2);
        if (size > L.total_bytes - at)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: chunk %u (%llu bytes) runs past the end", name, c,
                              (unsigned long long)size);
        at += size;
        s1 += e1;
        s2 += e2;
    }
    if (zt_wcode_dir(h, L.n_chunks) != at || at != L.total_bytes)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: the chunks end at %llu, the directory and header say %llu / %llu",
                          name, (unsigned long long)at, (unsigned long long)zt_wcode_dir(h, L.n_chunks),
                          (unsigned long long)L.total_bytes);
    if (s1 != n_esc1 || s2 != n_esc2)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image: the chunks hold %llu / %llu escapes, the header says %u / %u",
                          name, (unsigned long long)s1, (unsigned long long)s2, n_esc1, n_esc2);
    if ((checks & ZT_WCODE_CHECK_BODY) && XXH64(h + ZT_WCODE_ALIGN, L.total_bytes - ZT_WCODE_ALIGN, 0) != L.body_xxh64)
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: coded image: body checksum mismatch", name);
    if ((checks & ZT_WCODE_CHECK_CONTENT) && check_content(h, &L, name, e)) return e ? e->code : ZT_ERR_FORMAT;
    if (out) *out = L;
    return ZT_OK;
}

/* ---- CPU decoder ---- */

static void decode_chunk(const uint8_t *head, const uint8_t *piece, uint64_t piece_len, uint64_t piece_base,
                         const zt_wcode_info *L, uint32_t c, uint16_t *dst) {
    chunk_view v;
    chunk_open(head, piece, piece_len, piece_base, L, c, &v);
    for (uint32_t lt = 0; lt < v.tiles; lt++) {
        const uint64_t t = (uint64_t)c * ZT_WCODE_CHUNK_TILES + lt;
        const uint32_t nw = tile_words(L, t);
        uint16_t *o = dst + t * TILE;
        if (!v.p) {
            memset(o, 0, (size_t)nw * 2);
            continue;
        }
        const uint8_t *cb = v.p, *sm = v.sm + (uint64_t)lt * TILE, *code = v.code + (uint64_t)lt * (TILE / 4);
        uint32_t k1, b1, k2, b2;
        tile_range(&v, lt, &k1, &b1, &k2, &b2);
        for (uint32_t i = 0; i < nw; i++) {
            const unsigned cd = (code[i >> 2] >> (2 * (i & 3))) & 3u;
            uint8_t x;
            if (cd < 3) {
                x = cb[cd];
            } else {
                const unsigned c2 = k1 < b1 ? get3(v.esc, k1++) : 0; /* past the tile's range: lying codes */
                if (c2 < 7) x = cb[3 + c2];
                else x = k2 < b2 ? v.raw[k2++] : 0;
            }
            o[i] = (uint16_t)(((unsigned)(sm[i] & 0x80) << 8) | ((unsigned)x << 7) | (sm[i] & 0x7fu));
        }
    }
}

void zt_wcode_decode_chunks(const void *head, const void *piece, uint64_t piece_base, uint64_t piece_len,
                            const zt_wcode_info *L, uint32_t c0, uint32_t c1, uint16_t *dst) {
    if (c1 > L->n_chunks) c1 = L->n_chunks;
    for (uint32_t c = c0; c < c1; c++) decode_chunk(head, piece, piece_len, piece_base, L, c, dst);
}

typedef struct {
    const uint8_t *img;
    const zt_wcode_info *L;
    uint16_t *dst;
} dec;

static void dec_chunk(void *ctx, uint64_t c) {
    dec *D = ctx;
    decode_chunk(D->img, D->img, D->L->total_bytes, 0, D->L, (uint32_t)c, D->dst);
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
