/* tests/test_wdecode_group.c — the CUDA decoder's arithmetic on the CPU:
 * a serial model of kernels/cuda_wdecode.cu's variants 2..8 (k_wdecode_t)
 * built from the same functions (kernels/wdecode_group.h: the chunk's
 * place, the clamped escape ranges, the staging of a tile's level-2 words
 * and raw bytes into arrays of the kernel's sizes, the group decode by byte
 * permutes) with the team scans replaced by running counts (any team
 * layout gives the same prefix sums). Checked against the CPU decoder
 * (storage/wcode.c, written independently) and the source words:
 *   - every distribution of tests/wdecode_cases.h at sizes that are
 *     multiples of nothing, whole and in pieces of 3 chunks;
 *   - every lying image of tests/wdecode_cases.h, with the raw staging of a
 *     warp team (512 bytes: raw-heavy tiles read past it) and of a block
 *     team (a whole tile);
 * ASan (make asan) sees the model's reads stay inside the piece and the
 * staged arrays, so the index arithmetic the kernel shares is checked for
 * memory safety here too, on every machine; the GPU run checks the scans,
 * the thread layout and the real permutes (tests/test_wdecode_cuda.c). */
#include <stdlib.h>
#include <string.h>

#include "kernels/wdecode_group.h"
#include "tests/wdecode_cases.h"

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The kernel's data flow for chunks [c0, c1) of a piece, serially. */
static void model_decode(const uint8_t *head, const uint8_t *piece, uint64_t piece_base, uint64_t piece_len,
                         const zt_wcode_info *info, uint32_t c0, uint32_t c1, uint16_t *dst, uint32_t rawcap) {
    const uint32_t t0 = c0 * ZT_WCODE_CHUNK_TILES;
    const uint32_t t1 = c1 * ZT_WCODE_CHUNK_TILES < info->n_tiles ? c1 * ZT_WCODE_CHUNK_TILES : info->n_tiles;
    uint32_t *esc = malloc(WDG_ESC_WORDS * 4);          /* the kernel's shared arrays, exactly sized */
    uint32_t *raw = malloc((rawcap / 4 + 2) * 4);
    for (uint32_t tile = t0; tile < t1; tile++) {
        const uint32_t c = tile / ZT_WCODE_CHUNK_TILES, lt = tile % ZT_WCODE_CHUNK_TILES;
        const uint32_t tiles = info->n_tiles - c * ZT_WCODE_CHUNK_TILES < ZT_WCODE_CHUNK_TILES
                                   ? info->n_tiles - c * ZT_WCODE_CHUNK_TILES
                                   : ZT_WCODE_CHUNK_TILES;
        const uint64_t tile_w0 = (uint64_t)tile * ZT_WCODE_TILE;
        const uint64_t n = info->n_words;
        const uint64_t cs = zt_wcode_dir(head, c);
        const uint64_t len = wdg_chunk_len(cs, zt_wcode_dir(head, c + 1), piece_base, piece_len, tiles);
        if (!len) {
            for (uint64_t i = tile_w0; i < tile_w0 + ZT_WCODE_TILE && i < n; i++) dst[i] = 0;
            continue;
        }
        const uint8_t *p = piece + (cs - piece_base);
        const uint8_t *codes = p + ZT_WCODE_CHUNK_HEAD + (uint64_t)tiles * ZT_WCODE_TILE + (uint64_t)lt * (ZT_WCODE_TILE / 4);
        const uint8_t *sms = p + ZT_WCODE_CHUNK_HEAD + (uint64_t)lt * ZT_WCODE_TILE;
        const uint8_t *tab = p + 16;
        const wdg_book book = wdg_book_of(rd32(p), rd32(p + 4), rd32(p + 8));
        const wdg_ranges R = wdg_tile_ranges(tiles, len, rd32(tab + 8 * tiles), rd32(tab + 8 * tiles + 4), rd32(tab + 8 * lt),
                                             rd32(tab + 8 * lt + 4), rd32(tab + 8 * lt + 8), rd32(tab + 8 * lt + 12));
        const uint8_t *sec_esc = p + wdg_chunk_need(tiles);
        const uint8_t *sec_raw = sec_esc + wdg_esc_bytes(R.e1);
        const uint32_t w0 = (3u * R.a1) >> 5, w1 = ((3u * R.b1 + 31) >> 5) + 1;
        for (uint32_t i = 0; i < WDG_ESC_WORDS; i++) esc[i] = 0x9e3779b9u * (i + 1); /* unstaged words: junk */
        for (uint32_t w = w0; w < w1; w++) esc[w - w0] = rd32(sec_esc + 4 * (uint64_t)w);
        const uint32_t staged = R.b2 - R.a2 < rawcap ? R.b2 - R.a2 : rawcap;
        for (uint32_t i = 0; i < rawcap / 4 + 2; i++) raw[i] = 0x7f4a7c15u * (i + 3);
        memcpy(raw, sec_raw + R.a2, staged);
        const int has_raw = R.b2 > R.a2;
        uint32_t k1 = R.a1, k2 = R.a2;
        for (uint32_t g = 0; g < ZT_WCODE_TILE / 8; g++) {
            uint32_t cw = (uint32_t)codes[2 * g] | (uint32_t)codes[2 * g + 1] << 8, x;
            uint64_t sv;
            memcpy(&sv, sms + 8 * (uint64_t)g, 8);
            const uint32_t en = wdg_escapes(cw, &x), n1 = wdg_popc(en);
            const uint32_t valid = wdg_valid(k1, n1, R.b1);
            const uint32_t bit = 3u * k1 - 32u * w0;
            const uint32_t wi = (bit >> 5) < WDG_ESC_WORDS - 2 ? bit >> 5 : WDG_ESC_WORDS - 2;
            const uint32_t q = wdg_level2_fields(esc[wi], esc[wi + 1], bit, valid);
            k1 += n1;
            uint32_t e0, e1;
            wdg_level2(&book, q, &e0, &e1);
            const uint32_t s7 = wdg_sevens(q);
            if (has_raw) {
                const uint32_t n2 = wdg_popc(s7), validr = wdg_valid(k2, n2, R.b2);
                uint32_t r0 = 0, r1 = 0;
                if (validr) {
                    const uint32_t off = k2 - R.a2;
                    if (off + validr <= staged) {
                        const uint32_t ri = off >> 2, sh = 8 * (off & 3);
                        r0 = wdg_fshr(raw[ri], raw[ri + 1], sh);
                        r1 = wdg_fshr(raw[ri + 1], raw[ri + 2], sh);
                    } else {
                        for (uint32_t i = 0; i < validr; i++) {
                            const uint32_t byte = sec_raw[k2 + i];
                            if (i < 4) r0 |= byte << (8 * i);
                            else r1 |= byte << (8 * (i - 4));
                        }
                    }
                    wdg_raw_keep(&r0, &r1, validr);
                }
                wdg_merge_raw(s7, r0, r1, &e0, &e1);
                k2 += n2;
            }
            uint32_t o[4];
            wdg_assemble(&book, x, en, e0, e1, (uint32_t)sv, (uint32_t)(sv >> 32), o);
            for (uint32_t i = 0; i < 8; i++)
                if (tile_w0 + 8 * g + i < n) dst[tile_w0 + 8 * g + i] = (uint16_t)(o[i >> 1] >> (16 * (i & 1)));
        }
    }
    free(esc);
    free(raw);
}

/* Decode `img` with the model (whole, or in pieces of `pieces` chunks, each
 * a buffer of its own with bounds from the valid image's directory) and
 * with the CPU decoder; compare with each other and with want. */
static void run_case(const char *what, const uint8_t *img, const uint8_t *valid_img, const zt_wcode_info *L,
                     const uint16_t *want, uint32_t pieces, uint32_t rawcap) {
    const uint64_t n = L->n_words;
    uint16_t *got = malloc(n * 2), *ref = malloc(n * 2);
    memset(got, 0xee, n * 2);
    memset(ref, 0xdd, n * 2);
    zt_wcode_decode_chunks(img, img + L->dir_bytes, L->dir_bytes, L->total_bytes - L->dir_bytes, L, 0, L->n_chunks, ref);
    uint8_t *head = malloc(L->dir_bytes);
    memcpy(head, img, L->dir_bytes);
    const uint32_t step = pieces ? pieces : L->n_chunks;
    for (uint32_t c0 = 0; c0 < L->n_chunks; c0 += step) {
        const uint32_t c1 = c0 + step < L->n_chunks ? c0 + step : L->n_chunks;
        const uint64_t base = pieces ? zt_wcode_dir(valid_img, c0) : L->dir_bytes;
        const uint64_t len = (pieces ? zt_wcode_dir(valid_img, c1) : L->total_bytes) - base;
        uint8_t *piece = malloc(len);
        memcpy(piece, img + base, len);
        model_decode(head, piece, base, len, L, c0, c1, got, rawcap);
        free(piece);
    }
    uint64_t bad = 0, first = n, want_bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (got[i] != ref[i] && !bad++) first = i;
        if (want && got[i] != want[i]) want_bad++;
    }
    printf("wdecode model %-52s raw staged %4u %9llu words: %llu differ from the CPU decoder%s\n", what, rawcap,
           (unsigned long long)n, (unsigned long long)bad, want ? (want_bad ? ", DIFFERS from the source" : ", exact") : "");
    ZT_CHECK(bad == 0, "%s (raw staged %u): %llu words differ from the CPU decoder, first at %llu (model %04x cpu %04x)",
             what, rawcap, (unsigned long long)bad, (unsigned long long)first, first < n ? got[first] : 0,
             first < n ? ref[first] : 0);
    ZT_CHECK(!want || want_bad == 0, "%s: %llu words differ from the source", what, (unsigned long long)want_bad);
    free(head);
    free(got);
    free(ref);
}

/* The permutes' emulation against their definition, and the spreads. */
static void check_primitives(zt_rng *rng) {
    for (int i = 0; i < 2000; i++) {
        const uint32_t a = (uint32_t)zt_rng_u64(rng), b = (uint32_t)zt_rng_u64(rng), s = (uint32_t)zt_rng_u64(rng) & 0x7777u;
        const uint8_t bytes[8] = {(uint8_t)a, (uint8_t)(a >> 8), (uint8_t)(a >> 16), (uint8_t)(a >> 24),
                                  (uint8_t)b, (uint8_t)(b >> 8), (uint8_t)(b >> 16), (uint8_t)(b >> 24)};
        uint32_t want = 0;
        for (int k = 0; k < 4; k++) want |= (uint32_t)bytes[(s >> (4 * k)) & 7] << (8 * k);
        ZT_CHECK(wdg_prmt(a, b, s) == want, "prmt(%08x, %08x, %04x) = %08x, want %08x", a, b, s, wdg_prmt(a, b, s), want);
        const uint32_t c = (uint32_t)zt_rng_u64(rng) & 0xffffu, q = (uint32_t)zt_rng_u64(rng) & 0xffffffu;
        uint32_t w2 = 0, w3 = 0;
        for (int k = 0; k < 8; k++) {
            w2 |= ((c >> (2 * k)) & 3u) << (4 * k);
            w3 |= ((q >> (3 * k)) & 7u) << (4 * k);
        }
        ZT_CHECK(wdg_spread2(c) == w2 && wdg_spread3(q) == w3, "spread of %04x / %06x", c, q);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    zt_rng rng = {0x77aa55cc};
    zt_err e = {0};
    check_primitives(&rng);
    const uint64_t sizes[] = {1, 7, 8, 4095, 4096, 4097, 262145, 1000003};
    const uint64_t maxn = 1000003;
    uint16_t *w = malloc(maxn * 2);
    const uint64_t cap = zt_wcode_bound(maxn);
    uint8_t *img = malloc(cap), *bad = malloc(cap);
    for (int d = 0; d < WDC_DISTS; d++)
        for (size_t k = 0; k < ZT_ARRAY_LEN(sizes); k++) {
            const uint64_t n = sizes[k];
            wdc_fill(&rng, w, n, d);
            uint64_t bytes;
            zt_wcode_info L;
            if (zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) ||
                zt_wcode_validate(img, bytes, ZT_WCODE_CHECK_CONTENT, "t", &L, &e)) {
                ZT_CHECK(0, "%s n=%llu: %s", wdc_dist[d], (unsigned long long)n, e.msg);
                continue;
            }
            char what[96];
            snprintf(what, sizeof what, "%s%s", wdc_dist[d], k % 3 == 2 ? " (pieces of 3 chunks)" : "");
            run_case(what, img, img, &L, w, k % 3 == 2 ? 3 : 0, k % 2 ? 512 : ZT_WCODE_TILE);
        }
    /* lying bodies after validation: the near-normal image and one of every exponent */
    for (int d = 0; d < 4; d += 3) {
        const uint64_t n = 3 * 262144 + 999;
        wdc_fill(&rng, w, n, d);
        uint64_t bytes;
        zt_wcode_info L;
        ZT_CHECK(zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) == ZT_OK && zt_wcode_validate(img, bytes, 0, "t", &L, &e) == ZT_OK,
                 "encode: %s", e.msg);
        for (int k = 0; k < WDC_LIES; k++)
            for (uint32_t rawcap = 512; rawcap <= ZT_WCODE_TILE; rawcap *= 8) {
                uint32_t pieces;
                const char *name = wdc_lie(&rng, bad, img, bytes, &L, k, &pieces);
                char what[128];
                snprintf(what, sizeof what, "%s: %s", wdc_dist[d], name);
                run_case(what, bad, img, &L, NULL, pieces, rawcap);
            }
    }
    free(w);
    free(img);
    free(bad);
    return zt_test_finish("test_wdecode_group");
}
