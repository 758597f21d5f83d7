/* storage/wcode.h — coded bf16 weights: a lossless code for a unit image
 * (storage/catalog.h) of 16-bit words that a GPU decodes at memory speed
 * (kernels/cuda_wdecode.cu), so that disk, pinned RAM and the bus carry
 * ~0.68 of the bf16 bytes (docs/design.md, "Coded weights").
 *
 * Why this code. A bf16 word is sign (1) | exponent (8) | mantissa (7). Sign
 * and mantissa are incompressible (7.97 of 8 bits measured); the exponent of
 * a weight tensor carries ~2.5 bits (mkmodel's near-normal weights: 2.51 bits
 * for every class of the full model, `bin/wcode-stats --synth full`; trained
 * weights ~3: DFloat11 reaches 68.6% of bf16 on FLUX.1-dev). Measured ratios
 * to bf16 on the full random model (DiT, chunks of 256 Ki words):
 *     entropy bound 0.655, Huffman 0.660, this code 0.677 (+0.1% tables),
 *     3-bit code + raw escapes 0.697, 4-bit code 0.750.
 * Huffman would save 2.5% more bytes, but its decode is a bit-serial walk
 * per thread (DFloat11: hundreds of GB/s); this code decodes with fixed-width
 * reads and two block-wide prefix sums per tile (>= 1.5 TB/s of bf16 output
 * is the target on an H200), which on a streamed step is worth far more.
 *
 * The code. Per word: the byte sign<<7 | mantissa is stored raw; the
 * exponent as a 2-bit level-1 code: 0..2 = the chunk's three most frequent
 * exponents, 3 = escape. Each escape has a 3-bit level-2 code in a second
 * stream: 0..6 = the chunk's next seven exponents, 7 = escape to a raw byte
 * in a third stream. Escapes are numbered in word order within a chunk of
 * 64 tiles of 4096 words; a tile table gives, for each tile, the number of
 * level-1 and level-2 escapes of its chunk before it, so tiles decode
 * independently (a GPU block finds the positions of its escapes with prefix
 * sums of popcounts).
 *
 * FORMAT, version 1. All integers little-endian. An image of n words
 * (1 <= n < 2^32; the decoded image is 2n bytes) has T = ceil(n / 4096)
 * tiles and C = ceil(T / 64) chunks; chunk c holds tiles [64c, 64c + Tc),
 * Tc = min(64, T - 64c), and has its own codebook. Each chunk is one
 * contiguous run of bytes, so any run of whole chunks can be copied and
 * decoded on its own (the stream moves a unit in pieces through a small
 * device buffer). ALIGN(x) = ALIGN_UP(x, 256); gaps are zero bytes.
 *   header      [0, 256)      128 bytes defined, the rest zero
 *   directory   [256, D)      (C + 1) x u64: the offset of each chunk from
 *                             the image start, entry C = total_bytes;
 *                             D = ALIGN(256 + 8 (C + 1)) = the first chunk
 *   chunk c     [dir[c], dir[c + 1]), each offset a multiple of 256:
 *     +0        u8 cb[10]: cb[0..2] the level-1 exponents, cb[3..9] the
 *               level-2 ones, all ten distinct; u8[6] zero
 *     +16       (Tc + 1) x {u32 esc1, u32 esc2}: the level-1 / level-2
 *               escapes of the chunk before each tile; entry Tc = the
 *               chunk's counts (E1c, E2c)
 *     +768      sign|mantissa, Tc x 4096: byte i = (w_i >> 8 & 0x80) | (w_i & 0x7f)
 *     then      level-1 codes, Tc x 1024: the code of word i at bits [2i, 2i+2)
 *               of the section read as a little-endian bit string
 *     then      level-2 codes, ALIGN(4 (ceil(3 E1c / 32) + 1)): the code of
 *               escape k at bits [3k, 3k+3) (one zero u32 after the last
 *               code, so a reader may always fetch two words)
 *     then      raw exponents, ALIGN(E2c): byte j = exponent of level-2 escape j
 *   Words are numbered from the image start, escapes from their chunk's
 *   start; words past n (the last tile's tail) have code 0 and byte 0.
 *
 * Header:
 *     0 u8[8]  magic "ZTWCODE\0"
 *     8 u32    version = 1
 *    12 u32    flags, reserved: 0
 *    16 u64    n_words
 *    24 u32    tile_words = 4096, 28 u32 chunk_tiles = 64
 *    32 u32    n_tiles = T, 36 u32 n_chunks = C
 *    40 u32    n_esc1 = sum of E1c (<= n_words), 44 u32 n_esc2 = sum of E2c
 *    48 u64    total_bytes = dir[C]
 *    56 u64    image_xxh64 = XXH64(the decoded 2n bytes, seed 0)
 *    64 u64    body_xxh64 = XXH64(bytes [256, total_bytes), seed 0)
 *    72 u8[48] reserved: 0
 *   120 u64    header_xxh64 = XXH64(bytes [0, 120), seed 0)
 *
 * Validation (hostile data is rejected with one line before any decoder or
 * kernel reads it; ZT_ERR_FORMAT unless noted):
 *   header  magic, version (ZT_ERR_UNSUPPORTED), header checksum
 *           (ZT_ERR_CHECKSUM), reserved bytes, the constants, T and C from
 *           n, the escape totals, total_bytes <= the bytes given
 *           ("truncated");
 *   tables  the directory starts at D and each chunk's size is the layout
 *           of its counts; every codebook distinct with zero padding; each
 *           tile table starts at (0, 0), never decreases, ends at the
 *           chunk's counts, and a tile has at most as many level-1 escapes
 *           as words and at most as many level-2 as level-1 escapes; the
 *           counts sum to the header's totals;
 *   body    (ZT_WCODE_CHECK_BODY) body_xxh64 (ZT_ERR_CHECKSUM);
 *   content (ZT_WCODE_CHECK_CONTENT) each tile's codes hold exactly the
 *           escapes its table entry counts, tails and padding are zero, no
 *           raw exponent is one of its chunk's codebook entries.
 * Header and tables (O(T)) are enough for memory safety: every decoder here
 * reads a chunk only inside [dir[c], dir[c + 1]) and a tile's escapes only
 * inside the range its table entries give, clamped to the chunk's counts
 * and to 4096, so codes that disagree with the tables decode to wrong
 * words, never to an access outside the image. The body or content checks,
 * or image_xxh64 after a CPU decode, catch such data.
 *
 * Never prints. */
#ifndef ZT_STORAGE_WCODE_H
#define ZT_STORAGE_WCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_WCODE_MAGIC "ZTWCODE\0"
#define ZT_WCODE_VERSION 1u
#define ZT_WCODE_HEADER_BYTES 128u
#define ZT_WCODE_ALIGN 256u
#define ZT_WCODE_TILE 4096u       /* words per tile (one GPU block) */
#define ZT_WCODE_CHUNK_TILES 64u  /* tiles per codebook */
#define ZT_WCODE_CHUNK_REC 16u
#define ZT_WCODE_TILE_REC 8u
#define ZT_WCODE_MAX_WORDS 0xffffffffull

/* Validation levels (header and tables are always checked). */
enum {
    ZT_WCODE_CHECK_BODY = 1u << 0,    /* body_xxh64 */
    ZT_WCODE_CHECK_CONTENT = 1u << 1, /* escape counts, tails, raw bytes */
};

#define ZT_WCODE_CHUNK_HEAD 768u   /* codebook + tile table, padded */

/* A validated image: the header's numbers and where the chunks start.
 * Plain data: the CUDA kernel gets it by value. */
typedef struct zt_wcode_info {
    uint64_t n_words;
    uint32_t n_tiles, n_chunks;
    uint32_t n_esc1, n_esc2;
    uint64_t dir_bytes;     /* D: header + directory, = dir[0] */
    uint64_t total_bytes;
    uint64_t image_xxh64, body_xxh64;
} zt_wcode_info;

/* Largest coded size of an image of n words (every exponent raw). */
uint64_t zt_wcode_bound(uint64_t n_words);
/* Bytes of a chunk of `tiles` tiles with e1 / e2 escapes. */
uint64_t zt_wcode_chunk_bytes(uint32_t tiles, uint32_t e1, uint32_t e2);
/* D for n words: where the first chunk starts. */
uint64_t zt_wcode_dir_bytes(uint64_t n_words);

/* Code n words of src (1 <= n < 2^32) into dst (capacity cap >= the coded
 * size; zt_wcode_bound is always enough), with `threads` worker threads
 * (<= 1: the calling thread only). *out_bytes = total_bytes. Deterministic:
 * the same words give the same bytes for any thread count. Fails with
 * ZT_ERR_ARG for n out of range or cap too small, ZT_ERR_NOMEM. */
int zt_wcode_encode(const uint16_t *src, uint64_t n_words, void *dst, uint64_t cap, int threads,
                    uint64_t *out_bytes, zt_err *e);

/* Check an image of `len` bytes (see Validation) and fill *out. `name`
 * leads every message ("dit.layers.3: coded image: ..."). */
int zt_wcode_validate(const void *img, uint64_t len, unsigned checks, const char *name, zt_wcode_info *out,
                      zt_err *e);

/* Offset of chunk c (c <= n_chunks) of a validated image. */
static inline uint64_t zt_wcode_dir(const void *img, uint32_t c) {
    const uint8_t *p = (const uint8_t *)img + 256 + 8 * (uint64_t)c;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Decode a validated image into dst (n_words words) with `threads` worker
 * threads. verify != 0: compare XXH64 of the result with image_xxh64
 * (ZT_ERR_CHECKSUM on a mismatch). Memory-safe for any body bytes. */
int zt_wcode_decode(const void *img, const zt_wcode_info *info, uint16_t *dst, int threads, int verify,
                    const char *name, zt_err *e);

/* Decode chunks [c0, c1) from a piece: `head` holds the image's first
 * info->dir_bytes bytes (header and directory), `piece` the bytes
 * [piece_base, piece_base + piece_len) of the image, normally piece_base =
 * dir[c0] and piece_len = dir[c1] - dir[c0]. Words of those chunks go to
 * their place in dst (the whole image's words). Reads stay inside head and
 * piece whatever they hold: a chunk that is not whole inside the piece
 * decodes to zeros (the same clamps as the GPU kernel). The CPU backend's
 * op; zt_wcode_decode decodes the whole image this way. */
void zt_wcode_decode_chunks(const void *head, const void *piece, uint64_t piece_base, uint64_t piece_len,
                            const zt_wcode_info *info, uint32_t c0, uint32_t c1, uint16_t *dst);

#ifdef __cplusplus
}
#endif
#endif
