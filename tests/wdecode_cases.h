/* tests/wdecode_cases.h — the data both decoder tests decode: weight
 * distributions (tests/test_wdecode_cuda.c on the GPU, every launch
 * variant; tests/test_wdecode_group.c, the variants' arithmetic on the CPU)
 * and the ways a validated image's bytes may lie afterwards (written to the
 * decoder's copy only: the numbers passed along stay the validated ones).
 * Every lying case must decode without an access outside the buffers to
 * exactly what the CPU decoder makes of the same bytes. */
#ifndef ZT_TESTS_WDECODE_CASES_H
#define ZT_TESTS_WDECODE_CASES_H

#include <math.h>
#include <string.h>

#include "common/zt_dtype.h"
#include "storage/store_format.h"
#include "storage/wcode.h"
#include "tests/zt_test.h"

#define WDC_DISTS 7
static const char *wdc_dist[WDC_DISTS] = {"normal", "zero", "nan-inf-denormal", "all-exponents", "random-words",
                                          "escape-chunk", "mixed-scales"};

static void wdc_fill(zt_rng *rng, uint16_t *w, uint64_t n, int dist) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = zt_rng_u64(rng);
        switch (dist) {
        case 0: w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(rng))); break;
        case 1: w[i] = (x & 1) ? 0x8000 : 0; break;
        case 2: {
            static const uint16_t sp[] = {0x7f80, 0xff80, 0x7fc0, 0xffff, 0x7f81, 0x0001, 0x807f, 0x0000, 0x8000};
            w[i] = (x % 3) ? sp[(x >> 8) % 9] : (uint16_t)(x >> 20);
            break;
        }
        case 3: w[i] = (uint16_t)((i & 0xff) << 7 | (x & 0x807f)); break;
        case 4: w[i] = (uint16_t)(x >> 17); break;
        case 5:
            if (i / 262144 == 1) w[i] = (uint16_t)((64 + (i % 64)) << 7 | (x & 0x807f));
            else w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(rng)));
            break;
        default: w[i] = zt_f32_to_bf16((float)(ldexp(zt_rng_normal(rng), (int)((i / 777) % 40) - 20))); break;
        }
    }
}

/* Chunk c's tiles and where its sections start (from a valid image). */
static uint64_t wdc_chunk_tiles(const zt_wcode_info *L, uint32_t c) {
    return c + 1 < L->n_chunks ? ZT_WCODE_CHUNK_TILES : L->n_tiles - (uint64_t)c * ZT_WCODE_CHUNK_TILES;
}
static uint64_t wdc_codes_at(const uint8_t *img, const zt_wcode_info *L, uint32_t c) {
    return zt_wcode_dir(img, c) + ZT_WCODE_CHUNK_HEAD + wdc_chunk_tiles(L, c) * ZT_WCODE_TILE;
}
static uint64_t wdc_esc_at(const uint8_t *img, const zt_wcode_info *L, uint32_t c) {
    return wdc_codes_at(img, L, c) + wdc_chunk_tiles(L, c) * (ZT_WCODE_TILE / 4);
}

#define WDC_LIES 11
/* Make `bad` (a copy of the valid image img, `bytes` long) lie in way k;
 * returns its name, *pieces the chunks per piece to decode it in (0: the
 * whole image at once). */
static const char *wdc_lie(zt_rng *rng, uint8_t *bad, const uint8_t *img, uint64_t bytes, const zt_wcode_info *L, int k,
                           uint32_t *pieces) {
    memcpy(bad, img, bytes);
    *pieces = 0;
    switch (k) {
    case 0:
    case 1: /* every code an escape, every level-2 code raw, raw bytes 0xff */
        for (uint32_t c = 0; c < L->n_chunks; c++) {
            const uint64_t from = wdc_codes_at(img, L, c);
            memset(bad + from, 0xff, zt_wcode_dir(img, c + 1) - from);
        }
        *pieces = k;
        return k ? "every code an escape, every escape raw, in pieces" : "every code an escape, every escape raw";
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7: { /* tile tables that run away or decrease (and the sections as in case 0) */
        const int round = (k - 2) / 2;
        wdc_lie(rng, bad, img, bytes, L, 0, pieces);
        for (uint32_t c = 0; c < L->n_chunks; c++) {
            const uint64_t pc = zt_wcode_dir(img, c);
            for (uint64_t t = 0; t <= ZT_WCODE_CHUNK_TILES; t++) {
                const uint32_t v = round == 0 ? 0xffffffffu : round == 1 ? (t % 2 ? 0xffffffffu : 0u) : (uint32_t)(70 - t);
                if (16 + 8 * t + 8 <= ZT_WCODE_CHUNK_HEAD) {
                    zt_wr32(bad + pc + 16 + 8 * t, v);
                    zt_wr32(bad + pc + 20 + 8 * t, v);
                }
            }
        }
        if (round == 2) /* a directory that points backwards, past the end, off the alignment */
            for (uint32_t c = 0; c <= L->n_chunks; c++)
                zt_wr64(bad + 256 + 8 * c, c % 3 == 0 ? bytes * 2 : c % 3 == 1 ? 512 : 1000);
        *pieces = (k - 2) % 2 ? 2 : 0;
        static const char *names[] = {"lying tile tables, round 0", "lying tile tables, round 0, in pieces",
                                      "lying tile tables, round 1", "lying tile tables, round 1, in pieces",
                                      "lying tile tables, round 2", "lying tile tables, round 2, in pieces"};
        return names[k - 2];
    }
    case 8: /* level-1 codes all escapes, the rest as coded: escapes past each tile's range */
        for (uint32_t c = 0; c < L->n_chunks; c++)
            memset(bad + wdc_codes_at(img, L, c), 0xff, wdc_chunk_tiles(L, c) * (ZT_WCODE_TILE / 4));
        return "level-1 codes all escapes";
    case 9: /* level-2 codes all raw: more raw exponents than each tile's range */
        for (uint32_t c = 0; c < L->n_chunks; c++) {
            const uint64_t e1 = zt_rd32(img + zt_wcode_dir(img, c) + 16 + 8 * wdc_chunk_tiles(L, c));
            memset(bad + wdc_esc_at(img, L, c), 0xff, (3 * e1 + 7) / 8);
        }
        *pieces = 1;
        return "level-2 codes all raw, in pieces";
    default: /* random bytes everywhere past the header */
        for (uint64_t i = 256; i < bytes; i++)
            if (zt_rng_u64(rng) % 97 == 0) bad[i] = (uint8_t)zt_rng_u64(rng);
        return "random bytes everywhere past the header";
    }
}

#endif
