/* kernels/cuda_wdecode.cu — decode a coded unit image (storage/wcode.h)
 * into bf16 words on the GPU: zt_op_wdecode of kernels/ops.h, in launch
 * variants (kernels/cuda_wdecode.h) that kbench times side by side and
 * tests/test_wdecode_cuda checks one by one, bit for bit.
 *
 * Variant 1 (the first kernel, kept for comparison): one block of 256
 * threads per tile of 4096 words, two groups of 8 words per thread, a loop
 * per word with a branch per code; 822 GB/s of bf16 output on an H200 (19%
 * of its copy rate), bound by its ~35 instructions per word.
 *
 * Variants 2..8 share one template (k_wdecode_t) that decodes a group of 8
 * words with byte permutes and no per-word branch (kernels/wdecode_group.h:
 * ~11 instructions per word). A team of threads decodes one tile:
 *   0. the chunk through the directory (in `head`), clamped as the CPU
 *      decoder clamps it; not decodable -> zeros (team-uniform);
 *   1. the tile's level-1 codes (u16 per group) and sign|mantissa bytes (u64
 *      per group) of the first pass are loaded together with the tile table
 *      entries and the codebook; then the tile's level-2 code words and raw
 *      exponents (contiguous runs of their sections) are staged in shared
 *      memory by the team, coalesced;
 *   2. per pass (each thread GPT groups, group g = pass * NT * GPT + j * NT
 *      + t, so every load and 16-byte store of a warp is contiguous): a team
 *      scan of the groups' level-1 escape counts gives each group the number
 *      of its first escape; its level-2 codes are one funnel shift of two
 *      staged words;
 *   3. only when the tile has raw exponents at all (b2 > a2, known from its
 *      table: team-uniform) a second scan of the counts of code 7 gives each
 *      group its first raw byte (staged; past the staged part read from
 *      global memory);
 *   4. the words are assembled and stored, 16 bytes per group.
 * The next pass's codes and bytes are loaded before the current one is
 * decoded. What varies:
 *   v2  block team: 256 threads x 2 groups, one pass, 2 barriers at most
 *   v3  block team: 128 threads x 4 groups, one pass (more blocks resident)
 *   v4  block team: 512 threads x 1 group, one pass
 *   v5  warp team: a warp owns a tile, 2 groups x 8 passes; 4 warps (tiles)
 *       a block; no block barrier; raw bytes staged up to 512 per tile
 *   v6  warp team: 4 groups x 4 passes
 *   v7  v3 with streaming cache hints (loads ld.global.nc.L1::no_allocate,
 *       stores st.global.cs)
 *   v8  v6 with the same hints
 * Bytes touched per word: 1 (sign|mantissa) + 0.25 (codes) + 3/8 per escape
 * + 1 per raw exponent read, 2 written: ~3.36 bytes per word for
 * near-normal weights against 4 for a bf16 device copy.
 *
 * Memory safety for any bytes in head and piece: the host validated the
 * image (zt_wcode_validate) and passes its numbers by value; a chunk must
 * lie whole and aligned inside the piece (else its words become 0), its
 * counts must fit its bytes (else they count as 0), and a tile's escape
 * ranges are clamped to the chunk's counts and to one tile's worth (4096),
 * exactly as the CPU decoder clamps them, so lying data decodes to wrong
 * words, the same on both, and never to an access outside the buffers.
 * Shared-memory reads are inside the staged arrays whatever the codes say
 * (an index past the staged words reads words whose fields are masked). */
#include "kernels/cuda_common.cuh"
#include "kernels/cuda_wdecode.h"
#include "kernels/wdecode_group.h"
#include "storage/wcode.h"

struct wd_args {
    const uint8_t *head;   /* header + directory */
    const uint8_t *piece;  /* image bytes [piece_base, piece_base + piece_len) */
    uint64_t piece_base, piece_len;
    uint64_t n_words;
    uint32_t n_tiles, c0;
    uint32_t t0, t1;       /* the launch's tiles */
    uint16_t *dst;         /* the whole image's words */
};

/* ---- variant 1 ---- */

#define WD_THREADS 256
#define WD_WARPS (WD_THREADS / 32)
#define WD_ESC_WORDS (ZT_WCODE_TILE * 3 / 32 + 2) /* a tile's level-2 codes, +1 for the two-word reads */

static_assert(ZT_WCODE_TILE == 2 * 8 * WD_THREADS, "a thread decodes two groups of 8 words");
/* 8 blocks of 256 threads on sm_90 (as measured: 32 registers, no spill);
 * 6 elsewhere (sm_86, sm_89, sm_120 hold 1536 threads an SM: ptxas rejects
 * 8; sm_80 would spill at 32 registers) */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define WD_V1_MIN_BLOCKS 4 /* sm_75 (the fp16 path's Turing build): 1024 threads an SM; coded weights are bf16 */
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ != 900
#define WD_V1_MIN_BLOCKS 6
#else
#define WD_V1_MIN_BLOCKS 8
#endif

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

__global__ void __launch_bounds__(WD_THREADS, WD_V1_MIN_BLOCKS) k_wdecode_v1(wd_args A) {
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


/* ---- variants 2..8 ---- */

template <bool HINTS> __device__ __forceinline__ uint64_t wd_ld64(const uint64_t *p) {
    if (HINTS) {
        uint64_t v;
        asm volatile("ld.global.nc.L1::no_allocate.b64 %0, [%1];" : "=l"(v) : "l"(p));
        return v;
    }
    return __ldg(p);
}
template <bool HINTS> __device__ __forceinline__ uint32_t wd_ld16(const uint16_t *p) {
    if (HINTS) {
        unsigned short v;
        asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];" : "=h"(v) : "l"(p));
        return v;
    }
    return __ldg(p);
}
template <bool HINTS> __device__ __forceinline__ void wd_st16(uint16_t *p, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    if (HINTS) asm volatile("st.global.cs.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(a), "r"(b), "r"(c), "r"(d) : "memory");
    else *reinterpret_cast<uint4 *>(p) = make_uint4(a, b, c, d);
}

/* A variant: NT threads decode a tile (a warp: WARP), each GPT groups of 8
 * words per pass. */
template <int NT_, int GPT_, bool WARP_, bool HINTS_> struct wd_cfg {
    static constexpr int NT = NT_, GPT = GPT_;
    static constexpr bool WARP = WARP_, HINTS = HINTS_;
    static constexpr int TEAMS = WARP ? 4 : 1; /* tiles per block */
    static constexpr int BLOCK = NT * TEAMS;
    static constexpr int MIN_BLOCKS = BLOCK >= 512 ? 2 : 1; /* 512 threads: let it have 64 registers */
    static constexpr int W = NT / 32;          /* warps per team */
    static constexpr int H = (GPT + 1) / 2;    /* scan words: two 16-bit counts each */
    static constexpr int PASSES = ZT_WCODE_TILE / 8 / (NT * GPT);
    static constexpr uint32_t RAWCAP = WARP ? 512 : ZT_WCODE_TILE; /* raw bytes staged */
    static_assert(NT % 32 == 0 && PASSES >= 1 && PASSES * NT * GPT * 8 == ZT_WCODE_TILE, "a tile in whole passes");
    static_assert(!WARP || NT == 32, "a warp team is one warp");
    static_assert(NT * 8 < 65536, "a pass's counts fit 16 bits");
};

template <class C> struct wd_smem {
    uint32_t esc[WDG_ESC_WORDS];     /* the tile's level-2 code words [w0, w1) */
    uint32_t raw[C::RAWCAP / 4 + 2]; /* its raw exponents [a2, a2 + staged), +2 words for 3-word reads */
    uint32_t scan[2][C::W][C::H];    /* block teams: warp totals of the two scans */
};

/* Exclusive team scan of H words of two 16-bit counts each (thread order):
 * ex = the sum over earlier threads, tot = over the team. A block team
 * synchronises once (sh: this scan's own array, so no second barrier). */
template <class C>
__device__ __forceinline__ void wd_scan(const uint32_t (&v)[C::H], uint32_t (&ex)[C::H], uint32_t (&tot)[C::H],
                                        uint32_t (*sh)[C::H]) {
    const uint32_t lane = threadIdx.x & 31;
    uint32_t inc[C::H];
#pragma unroll
    for (int h = 0; h < C::H; h++) inc[h] = v[h];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1)
#pragma unroll
        for (int h = 0; h < C::H; h++) {
            const uint32_t y = __shfl_up_sync(0xffffffffu, inc[h], o);
            if (lane >= (uint32_t)o) inc[h] += y;
        }
    if (C::WARP) {
#pragma unroll
        for (int h = 0; h < C::H; h++) {
            tot[h] = __shfl_sync(0xffffffffu, inc[h], 31);
            ex[h] = inc[h] - v[h];
        }
    } else {
        const uint32_t warp = threadIdx.x >> 5;
        if (lane == 31)
#pragma unroll
            for (int h = 0; h < C::H; h++) sh[warp][h] = inc[h];
        __syncthreads();
#pragma unroll
        for (int h = 0; h < C::H; h++) {
            uint32_t off = 0, t = 0;
#pragma unroll
            for (int w = 0; w < C::W; w++) {
                const uint32_t s = sh[w][h];
                off += (uint32_t)w < warp ? s : 0u;
                t += s;
            }
            ex[h] = off + inc[h] - v[h];
            tot[h] = t;
        }
    }
}

template <int H> __device__ __forceinline__ uint32_t wd_field(const uint32_t (&a)[H], int j) {
    return (a[j >> 1] >> (16 * (j & 1))) & 0xffffu;
}

/* Store a group's words at word `at` (the tail: only words below n). */
template <bool HINTS>
__device__ __forceinline__ void wd_store(uint16_t *dst, uint64_t at, uint64_t n, const uint32_t (&o)[4]) {
    if (at + 8 <= n) {
        wd_st16<HINTS>(dst + at, o[0], o[1], o[2], o[3]);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) /* constant indices: o[] stays in registers */
            if (at + i < n) dst[at + i] = (uint16_t)(o[i >> 1] >> (16 * (i & 1)));
    }
}

template <class C> __global__ void __launch_bounds__(C::BLOCK, C::MIN_BLOCKS) k_wdecode_t(wd_args A) {
    constexpr int NT = C::NT, GPT = C::GPT, H = C::H;
    __shared__ wd_smem<C> smem[C::TEAMS];
    const uint32_t team = C::WARP ? threadIdx.x >> 5 : 0, t = C::WARP ? threadIdx.x & 31 : threadIdx.x;
    const uint32_t tile = A.t0 + blockIdx.x * C::TEAMS + team;
    if (tile >= A.t1) return; /* team-uniform (a block team's tile always exists) */
    wd_smem<C> &S = smem[team];
    const uint32_t c = tile / ZT_WCODE_CHUNK_TILES, lt = tile % ZT_WCODE_CHUNK_TILES;
    const uint32_t tiles = min((uint32_t)ZT_WCODE_CHUNK_TILES, A.n_tiles - c * ZT_WCODE_CHUNK_TILES);
    const uint64_t tile_w0 = (uint64_t)tile * ZT_WCODE_TILE;

    /* 0. the chunk inside the piece */
    const uint64_t *dir = reinterpret_cast<const uint64_t *>(A.head + ZT_WCODE_ALIGN);
    const uint64_t cs = __ldg(dir + c);
    const uint64_t len = wdg_chunk_len(cs, __ldg(dir + c + 1), A.piece_base, A.piece_len, tiles);
    if (!len) { /* team-uniform */
        const uint32_t zero[4] = {0, 0, 0, 0};
        for (uint32_t g = t; g < ZT_WCODE_TILE / 8; g += NT) wd_store<C::HINTS>(A.dst, tile_w0 + 8ull * g, A.n_words, zero);
        return;
    }
    const uint8_t *p = A.piece + (cs - A.piece_base);

    /* 1. the first pass's codes and bytes, the tables, then the staging */
    const uint16_t *codes = reinterpret_cast<const uint16_t *>(p + ZT_WCODE_CHUNK_HEAD + (uint64_t)tiles * ZT_WCODE_TILE) +
                            (uint64_t)lt * (ZT_WCODE_TILE / 8);
    const uint64_t *sms = reinterpret_cast<const uint64_t *>(p + ZT_WCODE_CHUNK_HEAD) + (uint64_t)lt * (ZT_WCODE_TILE / 8);
    uint32_t cw[GPT];
    uint64_t sv[GPT];
#pragma unroll
    for (int j = 0; j < GPT; j++) {
        cw[j] = wd_ld16<C::HINTS>(codes + j * NT + t);
        sv[j] = wd_ld64<C::HINTS>(sms + j * NT + t);
    }
    const uint2 *table = reinterpret_cast<const uint2 *>(p + 16);
    const uint2 te = __ldg(table + tiles), ta = __ldg(table + lt), tb = __ldg(table + lt + 1);
    const uint4 cbv = __ldg(reinterpret_cast<const uint4 *>(p));
    const wdg_book book = wdg_book_of(cbv.x, cbv.y, cbv.z);
    const wdg_ranges R = wdg_tile_ranges(tiles, len, te.x, te.y, ta.x, ta.y, tb.x, tb.y);
    const uint8_t *sec_esc = p + wdg_chunk_need(tiles);
    const uint8_t *sec_raw = sec_esc + wdg_esc_bytes(R.e1);
    const uint32_t w0 = (3u * R.a1) >> 5, w1 = ((3u * R.b1 + 31) >> 5) + 1; /* <= the section's words */
    for (uint32_t w = w0 + t; w < w1; w += NT) S.esc[w - w0] = __ldg(reinterpret_cast<const uint32_t *>(sec_esc) + w);
    const uint32_t staged = min(R.b2 - R.a2, C::RAWCAP);
    uint8_t *raw_b = reinterpret_cast<uint8_t *>(S.raw);
    for (uint32_t j = t; j < staged; j += NT) raw_b[j] = __ldg(sec_raw + R.a2 + j);
    if (C::WARP) __syncwarp(); /* a block team: the first scan's barrier */
    const bool has_raw = R.b2 > R.a2;
    uint32_t k1_pass = R.a1, k2_pass = R.a2;

#pragma unroll 1
    for (int pass = 0; pass < C::PASSES; pass++) {
        uint32_t ncw[GPT];
        uint64_t nsv[GPT];
        if (pass + 1 < C::PASSES)
#pragma unroll
            for (int j = 0; j < GPT; j++) {
                const uint32_t g = (uint32_t)(pass + 1) * NT * GPT + j * NT + t;
                ncw[j] = wd_ld16<C::HINTS>(codes + g);
                nsv[j] = wd_ld64<C::HINTS>(sms + g);
            }

        /* 2. level-1 escapes, their numbers, level-2 codes */
        uint32_t x[GPT], en[GPT], v[H], ex[H], tot[H];
#pragma unroll
        for (int h = 0; h < H; h++) v[h] = 0;
#pragma unroll
        for (int j = 0; j < GPT; j++) {
            en[j] = wdg_escapes(cw[j], &x[j]);
            v[j >> 1] |= wdg_popc(en[j]) << (16 * (j & 1));
        }
        wd_scan<C>(v, ex, tot, S.scan[0]);
        uint32_t q[GPT], e0[GPT], e1[GPT], s7[GPT], v2[H];
#pragma unroll
        for (int h = 0; h < H; h++) v2[h] = 0;
        uint32_t base = k1_pass;
#pragma unroll
        for (int j = 0; j < GPT; j++) {
            const uint32_t k1 = base + wd_field<H>(ex, j);
            base += wd_field<H>(tot, j);
            const uint32_t valid = wdg_valid(k1, wdg_popc(en[j]), R.b1);
            const uint32_t bit = 3u * k1 - 32u * w0, wi = min(bit >> 5, (uint32_t)WDG_ESC_WORDS - 2);
            q[j] = wdg_level2_fields(S.esc[wi], S.esc[wi + 1], bit, valid);
            wdg_level2(&book, q[j], &e0[j], &e1[j]);
            s7[j] = wdg_sevens(q[j]);
            v2[j >> 1] |= wdg_popc(s7[j]) << (16 * (j & 1));
        }
        k1_pass = base;

        /* 3. raw exponents */
        if (has_raw) {
            uint32_t ex2[H], tot2[H];
            wd_scan<C>(v2, ex2, tot2, S.scan[1]);
            uint32_t base2 = k2_pass;
#pragma unroll
            for (int j = 0; j < GPT; j++) {
                const uint32_t k2 = base2 + wd_field<H>(ex2, j);
                base2 += wd_field<H>(tot2, j);
                const uint32_t valid = wdg_valid(k2, wdg_popc(s7[j]), R.b2);
                uint32_t r0 = 0, r1 = 0;
                if (valid) {
                    const uint32_t off = k2 - R.a2;
                    if (off + valid <= staged) {
                        const uint32_t wi = off >> 2, sh = 8 * (off & 3);
                        const uint32_t a = S.raw[wi], b = S.raw[wi + 1], d = S.raw[wi + 2];
                        r0 = wdg_fshr(a, b, sh);
                        r1 = wdg_fshr(b, d, sh);
                    } else { /* past the staged bytes (raw-heavy tiles) */
                        for (uint32_t i = 0; i < valid; i++) {
                            const uint32_t byte = __ldg(sec_raw + k2 + i);
                            if (i < 4) r0 |= byte << (8 * i);
                            else r1 |= byte << (8 * (i - 4));
                        }
                    }
                    wdg_raw_keep(&r0, &r1, valid);
                }
                wdg_merge_raw(s7[j], r0, r1, &e0[j], &e1[j]);
            }
            k2_pass = base2;
        }

        /* 4. assemble and store */
#pragma unroll
        for (int j = 0; j < GPT; j++) {
            const uint32_t g = (uint32_t)pass * NT * GPT + j * NT + t;
            uint32_t o[4];
            wdg_assemble(&book, x[j], en[j], e0[j], e1[j], (uint32_t)sv[j], (uint32_t)(sv[j] >> 32), o);
            wd_store<C::HINTS>(A.dst, tile_w0 + 8ull * g, A.n_words, o);
        }
        if (pass + 1 < C::PASSES)
#pragma unroll
            for (int j = 0; j < GPT; j++) {
                cw[j] = ncw[j];
                sv[j] = nsv[j];
            }
    }
}

template <class C> static void wd_launch(const wd_args &A, cudaStream_t s) {
    const uint32_t blocks = (A.t1 - A.t0 + C::TEAMS - 1) / C::TEAMS;
    k_wdecode_t<C><<<blocks, C::BLOCK, 0, s>>>(A);
}

const char *zt_cuda_wdecode_variant_name(int v) {
    static const char *names[ZT_WDECODE_VARIANTS + 1] = {
        "default",
        "v1 256 threads x 2 groups, per-word loop",
        "v2 block 256 x 2",
        "v3 block 128 x 4",
        "v4 block 512 x 1",
        "v5 warp 2 x 8 passes",
        "v6 warp 4 x 4 passes",
        "v7 block 128 x 4, cache hints",
        "v8 warp 4 x 4 passes, cache hints",
    };
    return v >= 0 && v <= ZT_WDECODE_VARIANTS ? names[v] : "?";
}

void zt_cuda_wdecode_variant(zt_ops *ops, const zt_wcode_info *info, const zt_wdecode *d, void *stream, int variant) {
    ZT_ASSERT(info && d && d->head && d->piece && d->dst && zt_al16(d->head) && zt_al16(d->piece) && zt_al16(d->dst));
    ZT_ASSERT(info->n_tiles == (info->n_words + ZT_WCODE_TILE - 1) / ZT_WCODE_TILE);
    ZT_ASSERT(d->c0 < d->c1 && d->c1 <= info->n_chunks);
    ZT_ASSERT(variant >= 0 && variant <= ZT_WDECODE_VARIANTS);
    wd_args A;
    A.head = (const uint8_t *)d->head;
    A.piece = (const uint8_t *)d->piece;
    A.piece_base = d->piece_base;
    A.piece_len = d->piece_len;
    A.n_words = info->n_words;
    A.n_tiles = info->n_tiles;
    A.c0 = d->c0;
    A.t0 = d->c0 * ZT_WCODE_CHUNK_TILES;
    A.t1 = min(d->c1 * ZT_WCODE_CHUNK_TILES, info->n_tiles);
    A.dst = d->dst;
    cudaStream_t s = stream ? (cudaStream_t)stream : zt_cu_stream(ops);
    switch (variant ? variant : ZT_WDECODE_VARIANT_DEFAULT) {
    case 1: k_wdecode_v1<<<A.t1 - A.t0, WD_THREADS, 0, s>>>(A); break;
    case 2: wd_launch<wd_cfg<256, 2, false, false>>(A, s); break;
    case 3: wd_launch<wd_cfg<128, 4, false, false>>(A, s); break;
    case 4: wd_launch<wd_cfg<512, 1, false, false>>(A, s); break;
    case 5: wd_launch<wd_cfg<32, 2, true, false>>(A, s); break;
    case 6: wd_launch<wd_cfg<32, 4, true, false>>(A, s); break;
    case 7: wd_launch<wd_cfg<128, 4, false, true>>(A, s); break;
    case 8: wd_launch<wd_cfg<32, 4, true, true>>(A, s); break;
    default: ZT_ASSERT(!"wdecode: unknown variant");
    }
    ZT_CUDA_LAUNCH_CHECK();
}

void zt_cuda_wdecode(zt_ops *ops, const zt_wcode_info *info, const zt_wdecode *d, void *stream) {
    zt_cuda_wdecode_variant(ops, info, d, stream, 0);
}
