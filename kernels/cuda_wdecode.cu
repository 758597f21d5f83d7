/* kernels/cuda_wdecode.cu — decode a coded unit image (storage/wcode.h)
 * into bf16 words on the GPU: zt_op_wdecode of kernels/ops.h.
 *
 * One block of 256 threads per tile of 4096 words (the launch covers chunks
 * [c0, c1) of a piece); a thread owns two groups of 8 words (groups t and
 * t + 256), so every load and the 16-byte stores of a warp are contiguous.
 * Per tile:
 *   0. the chunk is found through the directory (in `head`) inside the
 *      piece; its counts give where its level-2 and raw sections start;
 *   1. the tile's level-2 code words and raw exponents (a contiguous run of
 *      each section, found from its tile-table entries) are copied into
 *      shared memory by the whole block, coalesced, while each thread loads
 *      its 2 x 8 level-1 codes (u16) and sign|mantissa bytes (u64);
 *   2. a block-wide exclusive scan of the groups' level-1 escape counts
 *      (popcounts; both groups in one packed u32) gives each group the
 *      position of its first escape in the level-2 section;
 *   3. the thread reads its escapes' level-2 codes from shared memory; a
 *      second scan of the counts of code 7 gives the raw positions;
 *   4. the words are assembled and stored (16 bytes per group).
 * Bytes touched per word: 1 (sign|mantissa) + 0.25 (codes) + 3/8 per escape
 * + 1 per raw exponent read, 2 written: ~3.35 bytes per word for
 * near-normal weights against 4 for a bf16 device copy.
 *
 * Memory safety for any bytes in head and piece: the host validated the
 * image (zt_wcode_validate) and passes its numbers by value; a chunk must
 * lie whole and aligned inside the piece (else its words become 0), its
 * counts must fit its bytes (else they count as 0), and a tile's escape
 * ranges are clamped to the chunk's counts and to one tile's worth (4096),
 * exactly as the CPU decoder clamps them, so lying data decodes to wrong
 * words, the same on both, and never to an access outside the buffers. */
#include "kernels/cuda_common.cuh"
#include "storage/wcode.h"

#define WD_THREADS 256
#define WD_WARPS (WD_THREADS / 32)
#define WD_ESC_WORDS (ZT_WCODE_TILE * 3 / 32 + 2) /* a tile's level-2 codes, +1 for the two-word reads */

static_assert(ZT_WCODE_TILE == 2 * 8 * WD_THREADS, "a thread decodes two groups of 8 words");

struct wd_args {
    const uint8_t *head;   /* header + directory */
    const uint8_t *piece;  /* image bytes [piece_base, piece_base + piece_len) */
    uint64_t piece_base, piece_len;
    uint64_t n_words;
    uint32_t n_tiles, c0;
    uint16_t *dst;         /* the whole image's words */
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

/* 8 blocks of 256 threads fill an SM of 2048 threads (8.0, 9.0, 10.x); SMs of
 * 1536 threads (8.6, 8.7, 8.9, 12.x) take 6: ptxas refuses a minimum it cannot
 * place (and -Werror makes its warning an error). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ != 800 && __CUDA_ARCH__ != 900 && __CUDA_ARCH__ != 1000 && \
    __CUDA_ARCH__ != 1030
#define WD_MIN_BLOCKS 6
#else
#define WD_MIN_BLOCKS 8
#endif
__global__ void __launch_bounds__(WD_THREADS, WD_MIN_BLOCKS) k_wdecode(wd_args A) {
    __shared__ uint32_t s_esc[WD_ESC_WORDS];
    __shared__ uint8_t s_raw[ZT_WCODE_TILE];
    __shared__ uint32_t s_scan[2][WD_WARPS + 1];
    const uint32_t tile = A.c0 * ZT_WCODE_CHUNK_TILES + blockIdx.x, tid = threadIdx.x;
    const uint32_t c = tile / ZT_WCODE_CHUNK_TILES, lt = tile % ZT_WCODE_CHUNK_TILES;
    const uint32_t tiles = min((uint32_t)ZT_WCODE_CHUNK_TILES, A.n_tiles - c * ZT_WCODE_CHUNK_TILES);
    const uint64_t tile_w0 = (uint64_t)tile * ZT_WCODE_TILE;

    /* the chunk inside the piece, clamped as the CPU decoder clamps it
     * (storage/wcode.c, chunk_open): not decodable -> zeros */
    const uint64_t *dir = reinterpret_cast<const uint64_t *>(A.head + ZT_WCODE_ALIGN);
    const uint64_t cs = __ldg(dir + c), ce = __ldg(dir + c + 1);
    const uint64_t need0 = ZT_WCODE_CHUNK_HEAD + (uint64_t)tiles * (ZT_WCODE_TILE + ZT_WCODE_TILE / 4);
    const bool placed = cs >= A.piece_base && cs - A.piece_base <= A.piece_len && ce >= cs &&
                        (cs - A.piece_base) % ZT_WCODE_ALIGN == 0;
    const uint64_t len = placed ? min(ce - cs, A.piece_len - (cs - A.piece_base)) : 0;
    if (!placed || len < need0) { /* block-uniform: no barrier is skipped by some threads only */
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const uint64_t at = tile_w0 + 8ull * (tid + j * WD_THREADS);
            for (int i = 0; i < 8; i++)
                if (at + i < A.n_words) A.dst[at + i] = 0;
        }
        return;
    }
    const uint8_t *p = A.piece + (cs - A.piece_base);
    const uint2 tot2 = __ldg(reinterpret_cast<const uint2 *>(p + 16) + tiles);
    uint32_t E1 = tot2.x, E2 = tot2.y;
    const uint64_t esc_bytes = (4ull * ((3ull * E1 + 31) / 32 + 1) + ZT_WCODE_ALIGN - 1) / ZT_WCODE_ALIGN * ZT_WCODE_ALIGN;
    if (E1 > tiles * ZT_WCODE_TILE || E2 > E1 ||
        need0 + esc_bytes + ((uint64_t)E2 + ZT_WCODE_ALIGN - 1) / ZT_WCODE_ALIGN * ZT_WCODE_ALIGN > len)
        E1 = E2 = 0; /* counts a chunk cannot have, or that do not fit its bytes (3 * E1 < 2^20 from here) */
    const uint8_t *sec_esc = p + need0;
    const uint8_t *sec_raw = sec_esc + (4ull * ((3ull * E1 + 31) / 32 + 1) + ZT_WCODE_ALIGN - 1) / ZT_WCODE_ALIGN * ZT_WCODE_ALIGN;

    /* tile ranges, clamped to the chunk's counts and one tile's worth */
    const uint2 ta = __ldg(reinterpret_cast<const uint2 *>(p + 16) + lt);
    const uint2 tb = __ldg(reinterpret_cast<const uint2 *>(p + 16) + lt + 1);
    const uint32_t a1 = min(ta.x, E1), b1 = min(max(a1, min(tb.x, E1)), a1 + ZT_WCODE_TILE);
    const uint32_t a2 = min(ta.y, E2), b2 = min(max(a2, min(tb.y, E2)), a2 + ZT_WCODE_TILE);

    /* 1. stage the tile's level-2 words and raw bytes; load own codes */
    const uint32_t *esc = reinterpret_cast<const uint32_t *>(sec_esc);
    const uint32_t w0 = (3u * a1) >> 5, w1 = ((3u * b1 + 31) >> 5) + 1; /* <= the section's words */
    for (uint32_t w = w0 + tid; w < w1; w += WD_THREADS) s_esc[w - w0] = __ldg(esc + w);
    for (uint32_t j = a2 + tid; j < b2; j += WD_THREADS) s_raw[j - a2] = __ldg(sec_raw + j);
    const uint4 cbv = __ldg(reinterpret_cast<const uint4 *>(p));
    const uint64_t cb_lo = (uint64_t)cbv.y << 32 | cbv.x, cb_hi = cbv.z;
    const uint16_t *codes = reinterpret_cast<const uint16_t *>(p + ZT_WCODE_CHUNK_HEAD + (uint64_t)tiles * ZT_WCODE_TILE) +
                            (uint64_t)lt * (ZT_WCODE_TILE / 8);
    const uint64_t *sms = reinterpret_cast<const uint64_t *>(p + ZT_WCODE_CHUNK_HEAD) + (uint64_t)lt * (ZT_WCODE_TILE / 8);
    uint32_t cw[2], m[2], e2c[2] = {0, 0}, n2[2] = {0, 0};
    uint64_t sm[2];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t g = tid + j * WD_THREADS;
        cw[j] = __ldg(codes + g);
        sm[j] = __ldg(sms + g);
        m[j] = cw[j] & (cw[j] >> 1) & 0x5555u; /* bit 2i: word i is a level-1 escape */
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
                const uint32_t bit = 3u * k - 32u * w0, w = bit >> 5;
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
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t g = tid + j * WD_THREADS;
        uint32_t k2 = k2s[j], q = 0, out[4];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const uint32_t code = (cw[j] >> (2 * i)) & 3u, s = (uint32_t)(sm[j] >> (8 * i)) & 0xffu;
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
        if (at + 8 <= A.n_words) {
            *reinterpret_cast<uint4 *>(A.dst + at) = make_uint4(out[0], out[1], out[2], out[3]);
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) /* constant indices: out[] stays in registers */
                if (at + i < A.n_words) A.dst[at + i] = (uint16_t)(out[i >> 1] >> (16 * (i & 1)));
        }
    }
}

void zt_cuda_wdecode(zt_ops *ops, const zt_wcode_info *info, const zt_wdecode *d, void *stream) {
    ZT_ASSERT(info && d && d->head && d->piece && d->dst && zt_al16(d->head) && zt_al16(d->piece) && zt_al16(d->dst));
    ZT_ASSERT(info->n_tiles == (info->n_words + ZT_WCODE_TILE - 1) / ZT_WCODE_TILE);
    ZT_ASSERT(d->c0 < d->c1 && d->c1 <= info->n_chunks);
    wd_args A;
    A.head = (const uint8_t *)d->head;
    A.piece = (const uint8_t *)d->piece;
    A.piece_base = d->piece_base;
    A.piece_len = d->piece_len;
    A.n_words = info->n_words;
    A.n_tiles = info->n_tiles;
    A.c0 = d->c0;
    A.dst = d->dst;
    const uint32_t t0 = d->c0 * ZT_WCODE_CHUNK_TILES, t1 = min(d->c1 * ZT_WCODE_CHUNK_TILES, info->n_tiles);
    cudaStream_t s = stream ? (cudaStream_t)stream : zt_cu_stream(ops);
    k_wdecode<<<t1 - t0, WD_THREADS, 0, s>>>(A);
    ZT_CUDA_LAUNCH_CHECK();
}
