/* storage/zcodec.c — byte planes + zstd for one chunk (see zcodec.h). */
#include "storage/zcodec.h"

#include <string.h>
#include <zstd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void zt_planes_split(uint8_t *dst, const uint8_t *src, size_t n) {
    size_t half = n / 2, i = 0;
    uint8_t *hi = dst, *lo = dst + half;
#if defined(__SSE2__)
    const __m128i mask = _mm_set1_epi16(0x00ff);
    for (; i + 16 <= half; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + 2 * i));      /* elements i..i+7 */
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 2 * i + 16)); /* i+8..i+15 */
        _mm_storeu_si128((__m128i *)(lo + i), _mm_packus_epi16(_mm_and_si128(a, mask), _mm_and_si128(b, mask)));
        _mm_storeu_si128((__m128i *)(hi + i), _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8)));
    }
#endif
    for (; i < half; i++) {
        lo[i] = src[2 * i];
        hi[i] = src[2 * i + 1];
    }
}

void zt_planes_merge(uint8_t *dst, const uint8_t *src, size_t n) {
    size_t half = n / 2, i = 0;
    const uint8_t *hi = src, *lo = src + half;
#if defined(__SSE2__)
    for (; i + 16 <= half; i += 16) {
        __m128i h = _mm_loadu_si128((const __m128i *)(hi + i));
        __m128i l = _mm_loadu_si128((const __m128i *)(lo + i));
        _mm_storeu_si128((__m128i *)(dst + 2 * i), _mm_unpacklo_epi8(l, h));
        _mm_storeu_si128((__m128i *)(dst + 2 * i + 16), _mm_unpackhi_epi8(l, h));
    }
#endif
    for (; i < half; i++) {
        dst[2 * i] = lo[i];
        dst[2 * i + 1] = hi[i];
    }
}

ZSTD_CCtx *zt_zcodec_cctx_new(void) { return ZSTD_createCCtx(); }
void zt_zcodec_cctx_free(ZSTD_CCtx *c) { ZSTD_freeCCtx(c); }
ZSTD_DCtx *zt_zcodec_dctx_new(void) { return ZSTD_createDCtx(); }
void zt_zcodec_dctx_free(ZSTD_DCtx *d) { ZSTD_freeDCtx(d); }
size_t zt_zcodec_bound(size_t n) { return ZSTD_compressBound(n); }

int zt_zcodec_compress(ZSTD_CCtx *c, int level, int planes, void *dst, size_t cap, const void *src, size_t n,
                       void *scratch, size_t *out_n, zt_err *e) {
    if (planes && (n & 1)) return zt_err_set(e, ZT_ERR_INTERNAL, "zstd: byte planes need an even size (%zu)", n);
    const void *in = src;
    if (planes) {
        zt_planes_split(scratch, src, n);
        in = scratch;
    }
    size_t r = ZSTD_compressCCtx(c, dst, cap, in, n, level);
    if (ZSTD_isError(r)) return zt_err_set(e, ZT_ERR_INTERNAL, "zstd compress: %s", ZSTD_getErrorName(r));
    *out_n = r;
    return ZT_OK;
}

int zt_zcodec_decompress(ZSTD_DCtx *d, int planes, void *dst, size_t n, const void *src, size_t stored,
                         void *scratch, zt_err *e) {
    if (planes && (n & 1)) return zt_err_set(e, ZT_ERR_FORMAT, "zstd: byte planes need an even size (%zu)", n);
    void *out = planes ? scratch : dst;
    size_t r = ZSTD_decompressDCtx(d, out, n, src, stored);
    if (ZSTD_isError(r)) return zt_err_set(e, ZT_ERR_FORMAT, "zstd frame: %s", ZSTD_getErrorName(r));
    if (r != n) return zt_err_set(e, ZT_ERR_FORMAT, "zstd frame: decodes to %zu bytes, expected %zu", r, n);
    if (planes) zt_planes_merge(dst, scratch, n);
    return ZT_OK;
}
