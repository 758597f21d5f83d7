/* tests/test_store_zcodec.c — byte planes and zstd chunks: split/merge are
 * inverse permutations at every size (SIMD body and scalar tail), planes
 * hold the high bytes first, round trips are exact, corrupt or wrongly
 * sized frames are rejected with ZT_ERR_FORMAT, and planes help on bf16. */
#include <stdlib.h>
#include <zstd.h>

#include "common/zt_dtype.h"
#include "storage/zcodec.h"
#include "tests/zt_test.h"

int main(void) {
    zt_err e = {0};
    zt_rng rng = {0x1234567};
    enum { MAX = 1 << 20 };
    uint8_t *src = malloc(MAX), *planes = malloc(MAX), *back = malloc(MAX), *scratch = malloc(MAX);
    size_t cap = zt_zcodec_bound(MAX);
    uint8_t *frame = malloc(cap);
    for (size_t i = 0; i < MAX; i++) src[i] = (uint8_t)zt_rng_u64(&rng);

    /* Split/merge at sizes around the 32-byte SIMD step. */
    size_t sizes[] = {0, 2, 4, 30, 32, 34, 62, 64, 66, 1000, 4096, 65538, MAX};
    int ok_perm = 1, ok_back = 1;
    for (size_t k = 0; k < ZT_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        zt_planes_split(planes, src, n);
        for (size_t i = 0; i < n / 2; i++)
            if (planes[i] != src[2 * i + 1] || planes[n / 2 + i] != src[2 * i]) ok_perm = 0;
        zt_planes_merge(back, planes, n);
        if (n && memcmp(back, src, n)) ok_back = 0;
    }
    ZT_CHECK(ok_perm, "planes = high bytes then low bytes");
    ZT_CHECK(ok_back, "merge(split(x)) == x");

    /* bf16 weights ~ N(0, 0.02): compress with and without planes. */
    uint16_t *w = (uint16_t *)src;
    for (size_t i = 0; i < MAX / 2; i++) w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(&rng)));
    ZSTD_CCtx *cc = zt_zcodec_cctx_new();
    ZSTD_DCtx *dc = zt_zcodec_dctx_new();
    ZT_CHECK(cc && dc, "contexts");
    size_t n_plain = 0, n_planes = 0;
    int rc = zt_zcodec_compress(cc, 3, 0, frame, cap, src, MAX, scratch, &n_plain, &e);
    ZT_CHECK(rc == ZT_OK, "compress plain: %s", e.msg);
    memset(back, 0, MAX);
    rc = zt_zcodec_decompress(dc, 0, back, MAX, frame, n_plain, scratch, &e);
    ZT_CHECK(rc == ZT_OK && !memcmp(back, src, MAX), "plain round trip: %s", e.msg);
    rc = zt_zcodec_compress(cc, 3, 1, frame, cap, src, MAX, scratch, &n_planes, &e);
    ZT_CHECK(rc == ZT_OK, "compress planes: %s", e.msg);
    memset(back, 0, MAX);
    rc = zt_zcodec_decompress(dc, 1, back, MAX, frame, n_planes, scratch, &e);
    ZT_CHECK(rc == ZT_OK && !memcmp(back, src, MAX), "planes round trip: %s", e.msg);
    printf("bf16 N(0,0.02) 1 MiB: zstd-3 %zu B (ratio %.3f), planes+zstd-3 %zu B (ratio %.3f)\n", n_plain,
           (double)MAX / n_plain, n_planes, (double)MAX / n_planes);
    ZT_CHECK(n_planes < n_plain, "byte planes compress bf16 better (%zu vs %zu)", n_planes, n_plain);
    ZT_CHECK(n_planes < MAX * 0.9, "bf16 weights compress (%zu)", n_planes);

    /* Wrong expected size, corrupt frame, truncated frame, odd size. */
    rc = zt_zcodec_decompress(dc, 1, back, MAX - 2, frame, n_planes, scratch, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT, "frame larger than the destination rejected (%d %s)", rc, e.msg);
    rc = zt_zcodec_decompress(dc, 0, back, MAX, frame, n_planes / 2, scratch, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT, "truncated frame rejected (%d %s)", rc, e.msg);
    frame[0] ^= 0xff;
    rc = zt_zcodec_decompress(dc, 0, back, MAX, frame, n_planes, scratch, &e);
    ZT_CHECK(rc == ZT_ERR_FORMAT && strstr(e.msg, "zstd"), "bad magic rejected (%d %s)", rc, e.msg);
    frame[0] ^= 0xff;
    int bad = 0;
    for (int t = 0; t < 200; t++) { /* random byte flips: never crash, never a wrong size */
        size_t at = zt_rng_u64(&rng) % n_planes;
        uint8_t orig = frame[at];
        frame[at] ^= (uint8_t)(1 + zt_rng_u64(&rng) % 255);
        rc = zt_zcodec_decompress(dc, 1, back, MAX, frame, n_planes, scratch, &e);
        if (rc != ZT_OK && rc != ZT_ERR_FORMAT) bad++;
        frame[at] = orig;
    }
    ZT_CHECK(bad == 0, "corrupt frames give OK or FORMAT only");
    rc = zt_zcodec_compress(cc, 3, 1, frame, cap, src, 7, scratch, &n_planes, &e);
    ZT_CHECK(rc == ZT_ERR_INTERNAL, "odd size with planes refused");
    rc = zt_zcodec_compress(cc, 3, 0, frame, 8, src, MAX, scratch, &n_planes, &e);
    ZT_CHECK(rc == ZT_ERR_INTERNAL && strstr(e.msg, "zstd"), "too small output reported: %s", e.msg);

    zt_zcodec_cctx_free(cc);
    zt_zcodec_dctx_free(dc);
    free(src); free(planes); free(back); free(scratch); free(frame);
    return zt_test_finish("test_store_zcodec");
}
