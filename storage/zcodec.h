/* storage/zcodec.h — the compression of one store chunk: an optional
 * byte-plane split of bf16 data followed by zstd.
 *
 * Byte planes: a bf16 value is a little-endian uint16 whose high byte holds
 * the sign, the exponent and one mantissa bit, and whose low byte holds the
 * rest of the mantissa. The high bytes of a weight tensor repeat a lot (few
 * exponents occur); the low bytes look random. Storing all high bytes first,
 * then all low bytes, lets zstd find the repetition:
 *     planes[0 .. n/2)  = src[1], src[3], src[5], ...   (high bytes)
 *     planes[n/2 .. n)  = src[0], src[2], src[4], ...   (low bytes)
 * n must be even. The split is a byte permutation: it is exact for any data.
 *
 * Contexts (ZSTD_CCtx / ZSTD_DCtx) and the scratch buffer are owned by the
 * caller: one set per worker thread, created once, reused for every chunk
 * (no allocation per chunk). Never prints. */
#ifndef ZT_STORAGE_ZCODEC_H
#define ZT_STORAGE_ZCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;

/* Split / merge byte planes (n even; dst and src must not overlap). */
void zt_planes_split(uint8_t *dst, const uint8_t *src, size_t n);
void zt_planes_merge(uint8_t *dst, const uint8_t *src, size_t n);

/* Caller-owned zstd contexts (NULL when out of memory). */
ZSTD_CCtx *zt_zcodec_cctx_new(void);
void zt_zcodec_cctx_free(ZSTD_CCtx *c);
ZSTD_DCtx *zt_zcodec_dctx_new(void);
void zt_zcodec_dctx_free(ZSTD_DCtx *d);

/* Largest compressed size of n input bytes (zstd's bound). */
size_t zt_zcodec_bound(size_t n);

/* Compress n bytes of src into dst (capacity cap) with zstd `level` (1..22).
 * planes != 0: byte-plane split first, through `scratch` (n bytes).
 * On success *out_n is the frame size; ZT_ERR_INTERNAL (a zstd error named
 * in e) otherwise, e.g. when cap is too small. */
int zt_zcodec_compress(ZSTD_CCtx *c, int level, int planes, void *dst, size_t cap, const void *src, size_t n,
                       void *scratch, size_t *out_n, zt_err *e);

/* Decompress one frame (stored bytes) into exactly n bytes of dst.
 * planes != 0: the frame holds byte planes, merged through `scratch` (n
 * bytes). A corrupt frame or a size other than n is ZT_ERR_FORMAT. Safe on
 * hostile input (zstd checks its own bounds). */
int zt_zcodec_decompress(ZSTD_DCtx *d, int planes, void *dst, size_t n, const void *src, size_t stored,
                         void *scratch, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
