/* kernels/cuda_wdecode.cu — decode a coded unit image (storage/wcode.h)
 * into bf16 words on the GPU: zt_op_wdecode of kernels/ops.h.
 *
 * One block of 256 threads per tile of 4096 words; a thread owns two groups
 * of 8 words (groups t and t + 256), so every load and the 16-byte stores
 * of a warp are contiguous. Per tile:
 *   1. the tile's level-2 code words and raw exponents (a contiguous run of
 *      each stream, found from its tile-table entries) are copied into
 *      shared memory by the whole block, coalesced, while each thread loads
 *      its 2 x 8 level-1 codes (u16) and sign|mantissa bytes (u64);
 *   2. a block-wide exclusive scan of the groups' level-1 escape counts
 *      (popcounts; both groups in one packed u32) gives each group the
 *      position of its first escape in the level-2 stream;
 *   3. the thread reads its escapes' level-2 codes from shared memory; a
 *      second scan of the counts of code 7 gives the raw positions;
 *   4. the words are assembled and stored (16 bytes per group).
 * Bytes touched per word: 1 (sign|mantissa) + 0.25 (codes) + 3/8 per escape
 * + 1 per raw exponent read, 2 written: ~3.35 bytes per word for
 * near-normal weights against 4 for a bf16 device copy.
 *
 * Memory safety for any body bytes: the host validated the header and
 * tables (zt_wcode_validate) and passes the layout by value; a tile's
 * escape ranges are clamped to the stream sizes and to one tile's worth
 * (4096), as the CPU decoder clamps them, so lying codes or tables decode
 * to wrong words inside [coded, coded + total_bytes) and [dst, dst + 2n). */
#include "kernels/cuda_common.cuh"
#include "storage/wcode.h"

#define WD_THREADS 256
#define WD_WARPS (WD_THREADS / 32)
#define WD_ESC_WORDS (ZT_WCODE_TILE * 3 / 32 + 2) /* a tile's level-2 codes, +1 for the two-word reads */

static_assert(ZT_WCODE_TILE == 2 * 8 * WD_THREADS, "a thread decodes two groups of 8 words");

struct wd_layout {
    uint64_t n_words;
    uint32_t n_tiles, n_esc1, n_esc2;
    uint64_t chunk_off, tile_off, sm_off, code_off, esc_off, raw_off;
};

/* Exclusive block scan of v (thread order); *total = the sum. Two barriers;
 * `sh` [WD_WARPS + 1] may be reused after the next barrier. */
__device__ __forceinline__ uint32_t wd_scan(uint32_t v, uint32_t *sh, uint32_t *total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    uint32_t x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const uint32_t y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) sh[warp] = x;
    __syncthreads();
    if (warp == 0) {
        uint32_t w = lane < WD_WARPS ? sh[lane] : 0, s = w;
#pragma unroll
        for (int o = 1; o < WD_WARPS; o <<= 1) {
            const uint32_t y = __shfl_up_sync(0xffffffffu, s, o);
            if (lane >= o) s += y;
        }
        if (lane < WD_WARPS) sh[lane] = s - w; /* exclusive warp offsets */
        if (lane == WD_WARPS - 1) sh[WD_WARPS] = s;
    }
    __syncthreads();
    *total = sh[WD_WARPS];
    return sh[warp] + x - v;
}

/* Codebook byte b (0..9) of a chunk record held as two u64. */
__device__ __forceinline__ uint32_t wd_cb(uint64_t lo, uint64_t hi, uint32_t b) {
    return (uint32_t)((b < 8 ? lo >> (8 * b) : hi >> (8 * (b - 8))) & 0xff);
}

__global__ void __launch_bounds__(WD_THREADS) k_wdecode(const uint8_t *__restrict__ img, wd_layout L,
                                                        uint16_t *__restrict__ dst) {
    __shared__ uint32_t s_esc[WD_ESC_WORDS];
    __shared__ uint8_t s_raw[ZT_WCODE_TILE];
    __shared__ uint32_t s_scan[2][WD_WARPS + 1];
    const uint32_t tile = blockIdx.x, tid = threadIdx.x;

    /* tile ranges, clamped (see the file comment) */
    const uint2 ta = __ldg(reinterpret_cast<const uint2 *>(img + L.tile_off) + tile);
    const uint2 tb = __ldg(reinterpret_cast<const uint2 *>(img + L.tile_off) + tile + 1);
    const uint32_t a1 = min(ta.x, L.n_esc1), b1 = min(max(a1, min(tb.x, L.n_esc1)), a1 + ZT_WCODE_TILE);
    const uint32_t a2 = min(ta.y, L.n_esc2), b2 = min(max(a2, min(tb.y, L.n_esc2)), a2 + ZT_WCODE_TILE);

    /* 1. stage the tile's level-2 words and raw bytes; load own codes */
    const uint32_t *esc = reinterpret_cast<const uint32_t *>(img + L.esc_off);
    const uint64_t w0 = (3ull * a1) >> 5, w1 = ((3ull * b1 + 31) >> 5) + 1; /* <= the stream's words */
    for (uint64_t w = w0 + tid; w < w1; w += WD_THREADS) s_esc[w - w0] = __ldg(esc + w);
    const uint8_t *raw = img + L.raw_off;
    for (uint32_t j = a2 + tid; j < b2; j += WD_THREADS) s_raw[j - a2] = __ldg(raw + j);
    const uint4 cbv = __ldg(reinterpret_cast<const uint4 *>(img + L.chunk_off) + tile / ZT_WCODE_CHUNK_TILES);
    const uint64_t cb_lo = (uint64_t)cbv.y << 32 | cbv.x, cb_hi = cbv.z;
    const uint16_t *codes = reinterpret_cast<const uint16_t *>(img + L.code_off) + (uint64_t)tile * (ZT_WCODE_TILE / 8);
    const uint64_t *sms = reinterpret_cast<const uint64_t *>(img + L.sm_off) + (uint64_t)tile * (ZT_WCODE_TILE / 8);
    uint32_t c[2], m[2], e2c[2] = {0, 0}, n2[2] = {0, 0};
    uint64_t sm[2];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t g = tid + j * WD_THREADS;
        c[j] = __ldg(codes + g);
        sm[j] = __ldg(sms + g);
        m[j] = c[j] & (c[j] >> 1) & 0x5555u; /* bit 2i: word i is a level-1 escape */
    }

    /* 2. level-1 escape positions: both groups in one scan (each sum <= 2048) */
    uint32_t tot;
    const uint32_t p1 = wd_scan((uint32_t)__popc(m[0]) | (uint32_t)__popc(m[1]) << 16, s_scan[0], &tot);
    const uint32_t k1[2] = {a1 + (p1 & 0xffff), a1 + (tot & 0xffff) + (p1 >> 16)};

    /* 3. level-2 codes (shared memory), 3 bits each in e2c */
#pragma unroll
    for (int j = 0; j < 2; j++) {
        uint32_t mm = m[j], k = k1[j], q = 0;
        while (mm) {
            mm &= mm - 1;
            uint32_t c2 = 0;
            if (k < b1) {
                const uint32_t bit = (uint32_t)(3ull * k - 32ull * w0), w = bit >> 5;
                c2 = __funnelshift_r(s_esc[w], s_esc[w + 1], bit & 31) & 7u;
            }
            e2c[j] |= c2 << (3 * q);
            n2[j] += c2 == 7;
            k++;
            q++;
        }
    }
    const uint32_t p2 = wd_scan(n2[0] | n2[1] << 16, s_scan[1], &tot);
    const uint32_t k2s[2] = {a2 + (p2 & 0xffff), a2 + (tot & 0xffff) + (p2 >> 16)};

    /* 4. assemble and store */
    const uint64_t tile_w0 = (uint64_t)tile * ZT_WCODE_TILE;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t g = tid + j * WD_THREADS;
        uint32_t k2 = k2s[j], q = 0, out[4];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const uint32_t code = (c[j] >> (2 * i)) & 3u, s = (uint32_t)(sm[j] >> (8 * i)) & 0xffu;
            uint32_t e;
            if (code < 3) {
                e = wd_cb(cb_lo, cb_hi, code);
            } else {
                const uint32_t c2 = (e2c[j] >> (3 * q)) & 7u;
                q++;
                if (c2 < 7) {
                    e = wd_cb(cb_lo, cb_hi, 3 + c2);
                } else {
                    e = k2 < b2 ? s_raw[k2 - a2] : 0u;
                    k2++;
                }
            }
            const uint32_t w = (s & 0x80u) << 8 | e << 7 | (s & 0x7fu);
            if (i & 1) out[i >> 1] |= w << 16;
            else out[i >> 1] = w;
        }
        const uint64_t at = tile_w0 + 8ull * g;
        if (at + 8 <= L.n_words) {
            *reinterpret_cast<uint4 *>(dst + at) = make_uint4(out[0], out[1], out[2], out[3]);
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) /* constant indices: out[] stays in registers */
                if (at + i < L.n_words) dst[at + i] = (uint16_t)(out[i >> 1] >> (16 * (i & 1)));
        }
    }
}

void zt_cuda_wdecode(zt_ops *ops, const void *coded, const zt_wcode_info *info, uint16_t *dst, void *stream) {
    ZT_ASSERT(coded && info && dst && zt_al16(coded) && zt_al16(dst));
    ZT_ASSERT(info->n_tiles == (info->n_words + ZT_WCODE_TILE - 1) / ZT_WCODE_TILE);
    if (!info->n_words) return;
    wd_layout L = {info->n_words, info->n_tiles, info->n_esc1, info->n_esc2, info->chunk_off, info->tile_off,
                   info->sm_off, info->code_off, info->esc_off, info->raw_off};
    cudaStream_t s = stream ? (cudaStream_t)stream : zt_cu_stream(ops);
    k_wdecode<<<info->n_tiles, WD_THREADS, 0, s>>>((const uint8_t *)coded, L, dst);
    ZT_CUDA_LAUNCH_CHECK();
}
