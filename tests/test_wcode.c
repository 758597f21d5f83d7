/* tests/test_wcode.c — the coded-weight format (storage/wcode.h):
 *   - round trips are bit-exact for near-normal weights, all-zero data,
 *     NaN/Inf/denormals, every exponent, random words, a chunk of escapes
 *     only, at sizes that are multiples of nothing, with 1 and 3 threads
 *     (identical bytes);
 *   - the coded size is exactly the layout of the ideal escape counts,
 *     counted here from each chunk's own histogram (the codebook is the top
 *     3 + next 7 exponents);
 *   - chunks decoded from copies of just their bytes (pieces) are exact;
 *   - every hostile edit (magic, version, checksums, reserved bytes, sizes,
 *     codebooks, tile table, escape codes, raw bytes, tails) is rejected
 *     with the expected code and a one-line message;
 *   - images whose tables are valid but whose codes lie decode inside the
 *     image (ASan in `make asan`) and fail the image checksum. */
#include <stdlib.h>
#include <xxhash.h>

#include "common/zt_dtype.h"
#include "storage/store_format.h"
#include "storage/wcode.h"
#include "tests/zt_test.h"

enum { D_NORMAL, D_ZERO, D_SPECIAL, D_ALLEXP, D_RANDOM, D_ESCCHUNK, D_SCALES, N_DIST };
static const char *k_dist[N_DIST] = {"normal", "zero", "nan-inf-denormal", "all-exponents", "random-words",
                                     "escape-chunk", "mixed-scales"};

static void fill(uint16_t *w, uint64_t n, int dist, zt_rng *r) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = zt_rng_u64(r);
        switch (dist) {
        case D_NORMAL: w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(r))); break;
        case D_ZERO: w[i] = (x & 1) ? 0x8000 : 0; break; /* +-0 */
        case D_SPECIAL: {
            static const uint16_t sp[] = {0x7f80, 0xff80, 0x7fc0, 0xffff, 0x7f81, 0x0001, 0x807f, 0x0000, 0x8000};
            w[i] = (x % 3) ? sp[(x >> 8) % ZT_ARRAY_LEN(sp)] : (uint16_t)(x >> 20);
            break;
        }
        case D_ALLEXP: w[i] = (uint16_t)((i & 0xff) << 7 | (x & 0x807f)); break;
        case D_RANDOM: w[i] = (uint16_t)(x >> 17); break;
        case D_ESCCHUNK:
            /* chunk 0 near-normal; chunk 1 cycles 64 exponents: 84% escapes, most of them raw */
            if (i / (ZT_WCODE_TILE * ZT_WCODE_CHUNK_TILES) == 1) w[i] = (uint16_t)((64 + (i % 64)) << 7 | (x & 0x807f));
            else w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(r)));
            break;
        case D_SCALES: w[i] = zt_f32_to_bf16((float)(ldexp(zt_rng_normal(r), (int)((i / 777) % 40) - 20))); break;
        }
    }
}

/* The coded size the format must reach: per chunk, words outside its 3 / 10
 * most frequent exponents are level-1 / level-2 escapes. */
static uint64_t ideal_size(const uint16_t *w, uint64_t n) {
    const uint64_t cw = (uint64_t)ZT_WCODE_TILE * ZT_WCODE_CHUNK_TILES;
    uint64_t size = zt_wcode_dir_bytes(n);
    for (uint64_t c0 = 0; c0 < n; c0 += cw) {
        uint64_t m = ZT_MIN(cw, n - c0), h[256] = {0}, top[10] = {0};
        for (uint64_t i = 0; i < m; i++) h[(w[c0 + i] >> 7) & 0xff]++;
        for (int k = 0; k < 10; k++) { /* k-th largest count */
            int best = -1;
            for (int v = 0; v < 256; v++)
                if (best < 0 || h[v] > h[best]) best = v;
            top[k] = h[best];
            h[best] = 0;
        }
        uint64_t s = 0;
        for (int k = 0; k < 10; k++) s += top[k];
        size += zt_wcode_chunk_bytes((uint32_t)((m + ZT_WCODE_TILE - 1) / ZT_WCODE_TILE),
                                     (uint32_t)(m - top[0] - top[1] - top[2]), (uint32_t)(m - s));
    }
    return size;
}

static void refresh_header(uint8_t *img) { zt_wr64(img + 120, XXH64(img, 120, 0)); }
static void refresh_body(uint8_t *img, uint64_t total) {
    zt_wr64(img + 64, XXH64(img + ZT_WCODE_ALIGN, total - ZT_WCODE_ALIGN, 0));
    refresh_header(img);
}

static void apply(uint8_t *bad, const uint8_t *img, uint64_t bytes, uint64_t off, int op, uint32_t val) {
    memcpy(bad, img, bytes);
    if (op == 0) bad[off] ^= (uint8_t)val;
    if (op == 1) bad[off] = (uint8_t)val;
    if (op == 2) zt_wr32(bad + off, val);
}

static int one_line(const zt_err *e) { return e->msg[0] && !strchr(e->msg, '\n'); }

int main(void) {
    zt_err e = {0};
    zt_rng rng = {0x5eed1234};
    const uint64_t sizes[] = {1, 2, 7, 4095, 4096, 4097, 262143, 262144, 262145, 3 * 262144 + 4099, 1000003};
    const uint64_t maxn = 1000003;
    uint16_t *w = malloc(maxn * 2), *back = malloc(maxn * 2);
    uint64_t cap = zt_wcode_bound(maxn);
    uint8_t *img = malloc(cap), *img3 = malloc(cap);
    ZT_CHECK(w && back && img && img3, "memory");

    /* ---- round trips ---- */
    for (int d = 0; d < N_DIST; d++) {
        int ok_rt = 1, ok_det = 1, ok_size = 1, ok_val = 1;
        double ratio = 0;
        for (size_t k = 0; k < ZT_ARRAY_LEN(sizes); k++) {
            uint64_t n = sizes[k], bytes = 0, bytes3 = 0;
            fill(w, n, d, &rng);
            int rc = zt_wcode_encode(w, n, img, cap, 1, &bytes, &e);
            ZT_CHECK(rc == ZT_OK, "%s n=%llu encode: %s", k_dist[d], (unsigned long long)n, e.msg);
            rc = zt_wcode_encode(w, n, img3, cap, 3, &bytes3, &e);
            ZT_CHECK(rc == ZT_OK, "%s n=%llu encode, 3 threads: %s", k_dist[d], (unsigned long long)n, e.msg);
            if (bytes != bytes3 || memcmp(img, img3, bytes)) ok_det = 0;
            if (bytes != ideal_size(w, n)) {
                ok_size = 0;
                fprintf(stderr, "%s n=%llu: %llu bytes, ideal %llu\n", k_dist[d], (unsigned long long)n,
                        (unsigned long long)bytes, (unsigned long long)ideal_size(w, n));
            }
            zt_wcode_info L;
            rc = zt_wcode_validate(img, bytes, ZT_WCODE_CHECK_BODY | ZT_WCODE_CHECK_CONTENT, "t", &L, &e);
            if (rc) {
                ok_val = 0;
                fprintf(stderr, "%s n=%llu validate: %s\n", k_dist[d], (unsigned long long)n, e.msg);
                continue;
            }
            for (int threads = 1; threads <= 2; threads++) {
                memset(back, 0xa5, (n + 1) * 2 > maxn * 2 ? maxn * 2 : (n + 1) * 2);
                rc = zt_wcode_decode(img, &L, back, threads, 1, "t", &e);
                if (rc || memcmp(back, w, n * 2)) ok_rt = 0;
                if (n < maxn && back[n] != 0xa5a5) ok_rt = 0; /* nothing written past n words */
            }
            if (n == maxn) ratio = (double)bytes / (2.0 * n);
        }
        printf("%-17s ratio at %llu words: %.4f\n", k_dist[d], (unsigned long long)maxn, ratio);
        ZT_CHECK(ok_rt, "%s: decode(encode(x)) == x at every size and thread count", k_dist[d]);
        ZT_CHECK(ok_det, "%s: 1 and 3 encoder threads write the same bytes", k_dist[d]);
        ZT_CHECK(ok_size, "%s: coded size is the layout of the ideal escape counts", k_dist[d]);
        ZT_CHECK(ok_val, "%s: the encoder's images pass every check", k_dist[d]);
        if (d == D_NORMAL) ZT_CHECK(ratio < 0.69, "near-normal weights code below 0.69 of bf16 (%.4f)", ratio);
    }

    /* ---- hostile images: start from a valid one, edit, expect a code ---- */
    const uint64_t n = 2 * 262144 + 5000; /* 3 chunks, the last of 2 tiles, a short last tile */
    fill(w, n, D_NORMAL, &rng);
    w[17] = 0x7f80; /* +inf: one raw exponent in chunk 0 */
    uint64_t bytes = 0;
    ZT_CHECK(zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) == ZT_OK, "encode: %s", e.msg);
    zt_wcode_info L;
    ZT_CHECK(zt_wcode_validate(img, bytes, 3, "t", &L, &e) == ZT_OK, "valid: %s", e.msg);
    ZT_CHECK(L.n_esc2 >= 1 && L.n_tiles == 130 && L.n_chunks == 3 && L.dir_bytes == 512, "layout (%u raw, %u tiles, %u chunks)",
             L.n_esc2, L.n_tiles, L.n_chunks);
    typedef struct {
        const char *what;
        uint64_t off;  /* byte to edit */
        int op;        /* 0 xor mask, 1 set byte, 2 set u32 */
        uint32_t val;
        int fix;       /* 0 none, 1 header checksum, 2 body + header checksums */
        uint64_t len;  /* 0: bytes */
        unsigned checks;
        int code;
        const char *msg;
    } edit;
    /* chunk c's head at p[c]; chunk 0's sections */
    const uint64_t p0 = zt_wcode_dir(img, 0), p1 = zt_wcode_dir(img, 1), p2 = zt_wcode_dir(img, 2);
    const uint32_t e1_0 = zt_rd32(img + p0 + 16 + 8 * 64), e1_2 = zt_rd32(img + p2 + 16 + 8 * 2);
    const uint64_t code0 = p0 + ZT_WCODE_CHUNK_HEAD + 64 * 4096, esc0 = code0 + 64 * 1024;
    const uint64_t raw0 = esc0 + ZT_ALIGN_UP(4 * ((3 * (uint64_t)e1_0 + 31) / 32 + 1), 256);
    const uint64_t last_code = p2 + ZT_WCODE_CHUNK_HEAD + 2 * 4096 + 1024 + 1023;
    /* a level-1 code of tile 0 that is not an escape, and a level-2 code of tile 0 that is not 7 */
    uint64_t plain_at = 0, esc_k = 0;
    for (uint64_t i = 0; i < 4096; i++)
        if (((img[code0 + i / 4] >> (2 * (i % 4))) & 3) == 0) {
            plain_at = i;
            break;
        }
    for (uint64_t k = 0; k < zt_rd32(img + p0 + 16 + 8); k++) {
        const uint64_t bit = 3 * k;
        if (((zt_rd32(img + esc0 + (bit >> 5) * 4) >> (bit & 31)) & 7) == 0 && (bit & 31) <= 29) {
            esc_k = k;
            break;
        }
    }
    const edit E[] = {
        {"magic", 0, 0, 0x01, 0, 0, 0, ZT_ERR_FORMAT, "bad magic"},
        {"version", 8, 1, 2, 1, 0, 0, ZT_ERR_UNSUPPORTED, "version 2"},
        {"header checksum", 16, 0, 0x01, 0, 0, 0, ZT_ERR_CHECKSUM, "header checksum"},
        {"reserved flags", 12, 1, 1, 1, 0, 0, ZT_ERR_FORMAT, "reserved"},
        {"reserved tail", 200, 1, 1, 0, 0, 0, ZT_ERR_FORMAT, "reserved"},
        {"words", 16, 2, (uint32_t)n + 4096, 1, 0, 0, ZT_ERR_FORMAT, "tiles"},
        {"zero words", 16, 2, 0, 1, 0, 0, ZT_ERR_FORMAT, "outside"},
        {"tile size", 24, 2, 2048, 1, 0, 0, ZT_ERR_FORMAT, "tile of 2048"},
        {"escape count > words", 40, 2, (uint32_t)n + 1, 1, 0, 0, ZT_ERR_FORMAT, "escape counts"},
        {"raw > level-1", 44, 2, L.n_esc1 + 1, 1, 0, 0, ZT_ERR_FORMAT, "escape counts"},
        {"escape total", 40, 2, L.n_esc1 - 1, 1, 0, 0, ZT_ERR_FORMAT, "the header says"},
        {"total size larger", 48, 2, (uint32_t)bytes + 256, 1, 0, 0, ZT_ERR_FORMAT, "truncated"},
        {"total size smaller", 48, 2, (uint32_t)bytes - 256, 1, 0, 0, ZT_ERR_FORMAT, "runs past the end"},
        {"truncated", 0, 0, 0, 0, bytes - 1, 0, ZT_ERR_FORMAT, "truncated"},
        {"truncated header", 0, 0, 0, 0, 100, 0, ZT_ERR_FORMAT, "truncated"},
        {"directory entry", 256 + 8, 2, (uint32_t)p1 + 256, 0, 0, 0, ZT_ERR_FORMAT, "not where chunk 0 ends"},
        {"directory end", 256 + 24, 2, (uint32_t)bytes + 256, 0, 0, 0, ZT_ERR_FORMAT, "the directory and header say"},
        {"directory padding", 256 + 32, 1, 1, 0, 0, 0, ZT_ERR_FORMAT, "after the directory"},
        {"duplicate codebook entry", p1 + 4, 1, img[p1 + 7], 0, 0, 0, ZT_ERR_FORMAT, "twice"},
        {"codebook padding", p1 + 12, 1, 9, 0, 0, 0, ZT_ERR_FORMAT, "padding"},
        {"head padding", p2 + 16 + 8 * 3, 1, 1, 0, 0, 0, ZT_ERR_FORMAT, "head has non-zero padding"},
        {"tile table start", p0 + 16, 2, 1, 0, 0, 0, ZT_ERR_FORMAT, "start at zero"},
        {"tile table decreases", p0 + 16 + 8, 2, zt_rd32(img + p0 + 16 + 16) + 1, 0, 0, 0, ZT_ERR_FORMAT, "impossible"},
        {"tile with more escapes than words", p2 + 16 + 8, 2, e1_2 - 905, 0, 0, 0, ZT_ERR_FORMAT,
         "impossible"}, /* the last tile has 904 words */
        {"chunk counts vs size", p0 + 16 + 8 * 64, 2, e1_0 + 200, 0, 0, 0, ZT_ERR_FORMAT, ""},
        {"body byte", p1 + 800, 0, 0x10, 0, 0, ZT_WCODE_CHECK_BODY, ZT_ERR_CHECKSUM, "body checksum"},
        {"level-1 code becomes an escape", code0 + plain_at / 4, 0, 3u << (2 * (plain_at % 4)), 2, 0, 3, ZT_ERR_FORMAT,
         "level-1 escapes"},
        {"level-2 code becomes raw", esc0 + (3 * esc_k >> 5) * 4, 2,
         zt_rd32(img + esc0 + (3 * esc_k >> 5) * 4) | 7u << (3 * esc_k & 31), 2, 0, 3, ZT_ERR_FORMAT,
         "level-2 escapes"},
        {"raw exponent in codebook", raw0, 1, img[p0 + 4], 2, 0, 3, ZT_ERR_FORMAT, "in its codebook"},
        {"tail code (padding)", last_code, 1, 0x40, 2, 0, 3, ZT_ERR_FORMAT, "past the last word"},
        {"escape padding", raw0 - 1, 1, 1, 2, 0, 3, ZT_ERR_FORMAT, "padding"},
        {"raw padding", p1 - 1, 1, 1, 2, 0, 3, ZT_ERR_FORMAT, "padding"},
    };
    uint8_t *bad = malloc(bytes);
    for (size_t k = 0; k < ZT_ARRAY_LEN(E); k++) {
        const edit *x = &E[k];
        apply(bad, img, bytes, x->off, x->op, x->val);
        if (x->fix == 1) refresh_header(bad);
        if (x->fix == 2) refresh_body(bad, bytes);
        zt_err_clear(&e);
        int rc = zt_wcode_validate(bad, x->len ? x->len : bytes, x->checks, "dit.layers.7", &L, &e);
        ZT_CHECK(rc == x->code && strstr(e.msg, x->msg) && strstr(e.msg, "dit.layers.7") && one_line(&e),
                 "%s: rc %d (want %d), '%s'", x->what, rc, x->code, e.msg);
    }
    ZT_CHECK(zt_wcode_validate(img, bytes, 3, "t", &L, &e) == ZT_OK, "valid again");
    /* the edits that only the content check sees pass the table check: the
     * decoder must still stay inside the image, and the image checksum fails */
    for (size_t k = 0; k < ZT_ARRAY_LEN(E); k++) {
        if (E[k].checks != 3) continue;
        const edit *x = &E[k];
        apply(bad, img, bytes, x->off, x->op, x->val);
        refresh_body(bad, bytes);
        zt_wcode_info Lb;
        int rc = zt_wcode_validate(bad, bytes, ZT_WCODE_CHECK_BODY, "t", &Lb, &e);
        ZT_CHECK(rc == ZT_OK, "%s passes the table and body checks (%s)", x->what, e.msg);
        rc = zt_wcode_decode(bad, &Lb, back, 2, 1, "t", &e);
        if (strstr(x->what, "padding")) ZT_CHECK(rc == ZT_OK, "%s: padding is never read", x->what);
        else ZT_CHECK(rc == ZT_ERR_CHECKSUM && one_line(&e), "%s: decode fails the image checksum (%d)", x->what, rc);
    }
    /* worst case for the clamps: every level-1 code an escape, every level-2 code raw */
    memcpy(bad, img, bytes);
    for (uint32_t c = 0; c < L.n_chunks; c++) {
        const uint64_t pc = zt_wcode_dir(img, c), tl = c < 2 ? 64 : 2;
        memset(bad + pc + ZT_WCODE_CHUNK_HEAD + tl * 4096, 0xff, zt_wcode_dir(img, c + 1) - pc - ZT_WCODE_CHUNK_HEAD - tl * 4096);
    }
    ZT_CHECK(zt_wcode_validate(bad, bytes, 0, "t", &L, &e) == ZT_OK, "tables still valid");
    ZT_CHECK(zt_wcode_decode(bad, &L, back, 1, 1, "t", &e) == ZT_ERR_CHECKSUM, "lying codes decode inside the image");

    /* tables and directory that changed after validation (what a GPU could
     * see if device memory were corrupted): the clamps keep every read inside */
    for (int round = 0; round < 3; round++) {
        memcpy(bad, img, bytes);
        for (uint32_t c = 0; c < L.n_chunks; c++) {
            const uint64_t pc = zt_wcode_dir(img, c), tl = c < 2 ? 64 : 2;
            memset(bad + pc + ZT_WCODE_CHUNK_HEAD + tl * 4096, 0xff, zt_wcode_dir(img, c + 1) - pc - ZT_WCODE_CHUNK_HEAD - tl * 4096);
            for (uint64_t t = 0; t <= tl; t++) { /* ranges that start at 0 and never end, or decrease */
                zt_wr32(bad + pc + 16 + 8 * t, round == 0 ? 0xffffffffu : round == 1 ? (t % 2 ? 0xffffffffu : 0u) : (uint32_t)(70 - t));
                zt_wr32(bad + pc + 20 + 8 * t, round == 0 ? 0xffffffffu : round == 1 ? (t % 2 ? 0xffffffffu : 0u) : (uint32_t)(70 - t));
            }
        }
        if (round == 2) /* a directory that points backwards and past the end */
            for (uint32_t c = 0; c <= L.n_chunks; c++) zt_wr64(bad + 256 + 8 * c, c % 2 ? bytes * 2 : 512);
        ZT_CHECK(zt_wcode_decode(bad, &L, back, 1, 1, "t", &e) == ZT_ERR_CHECKSUM, "garbage tables (round %d) decode inside",
                 round);
    }
    /* pieces: chunks decoded from a copy of just their bytes (what the stream
     * moves through a small device buffer) give the same words */
    memset(back, 0xa5, n * 2);
    for (uint32_t c = 0; c < L.n_chunks; c++) {
        const uint64_t s0 = zt_wcode_dir(img, c), len = zt_wcode_dir(img, c + 1) - s0;
        uint8_t *piece = malloc(len);
        memcpy(piece, img + s0, len);
        zt_wcode_decode_chunks(img, piece, s0, len, &L, c, c + 1, back);
        free(piece);
    }
    ZT_CHECK(!memcmp(back, w, n * 2), "chunk by chunk from pieces == the words");

    /* encoder arguments */
    uint64_t got;
    ZT_CHECK(zt_wcode_encode(w, 0, img, cap, 1, &got, &e) == ZT_ERR_ARG, "0 words");
    ZT_CHECK(zt_wcode_encode(w, 1000, img, 300, 1, &got, &e) == ZT_ERR_ARG, "small output buffer");
    ZT_CHECK(zt_wcode_encode(w, 1000, img, ideal_size(w, 1000) - 1, 1, &got, &e) == ZT_ERR_ARG && one_line(&e),
             "output one byte short: %s", e.msg);

    free(bad);
    free(w);
    free(back);
    free(img);
    free(img3);
    return zt_test_finish("test_wcode");
}
