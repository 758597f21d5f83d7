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
 * in a third stream. Escapes are numbered in word order across the image; a
 * tile table gives, for each tile of 4096 words, the number of level-1 and
 * level-2 escapes before it, so tiles decode independently (a GPU block
 * finds the positions of its escapes with prefix sums of popcounts).
 *
 * FORMAT, version 1. All integers little-endian. An image of n words
 * (1 <= n < 2^32; the decoded image is 2n bytes) has T = ceil(n / 4096)
 * tiles and C = ceil(T / 64) chunks (a chunk: 64 tiles, 256 Ki words, one
 * codebook). Sections follow each other in this order, each starting at a
 * multiple of 256 bytes (ALIGN = ALIGN_UP(x, 256)); the bytes between
 * sections are zero. Offsets are not stored: they follow from n, n_esc1 and
 * n_esc2.
 *   header        [0, 256)          128 bytes defined, the rest zero
 *   chunk table   C x 16            u8 cb[10]: cb[0..2] the level-1
 *                                   exponents, cb[3..9] the level-2 ones,
 *                                   all ten distinct; u8[6] zero
 *   tile table    (T + 1) x 8       u32 esc1, u32 esc2: level-1 / level-2
 *                                   escapes in the tiles before this one;
 *                                   entry T = (n_esc1, n_esc2)
 *   sign|mantissa T x 4096          byte i = (w_i >> 8 & 0x80) | (w_i & 0x7f)
 *   level-1 codes T x 1024          code of word i at bits [2i, 2i+2) of the
 *                                   section read as a little-endian bit string
 *   level-2 codes ALIGN(4 * (ceil(3 n_esc1 / 32) + 1))
 *                                   code of escape k at bits [3k, 3k+3)
 *                                   (one zero u32 after the last code, so a
 *                                   reader may always fetch two words)
 *   raw exponents ALIGN(n_esc2)     byte j: exponent of level-2 escape j
 * Words past n (the last tile's tail) have code 0 and byte 0 everywhere.
 *
 * Header:
 *     0 u8[8]  magic "ZTWCODE\0"
 *     8 u32    version = 1
 *    12 u32    flags, reserved: 0
 *    16 u64    n_words
 *    24 u32    tile_words = 4096, 28 u32 chunk_tiles = 64
 *    32 u32    n_tiles = T, 36 u32 n_chunks = C
 *    40 u32    n_esc1 (<= n_words), 44 u32 n_esc2 (<= n_esc1)
 *    48 u64    total_bytes: the end of the raw section
 *    56 u64    image_xxh64 = XXH64(the decoded 2n bytes, seed 0)
 *    64 u64    body_xxh64 = XXH64(bytes [256, total_bytes), seed 0)
 *    72 u8[48] reserved: 0
 *   120 u64    header_xxh64 = XXH64(bytes [0, 120), seed 0)
 *
 * Validation (hostile data is rejected with one line before any decoder or
 * kernel reads it; ZT_ERR_FORMAT unless noted):
 *   header  magic, version (ZT_ERR_UNSUPPORTED), header checksum
 *           (ZT_ERR_CHECKSUM), reserved bytes, the constants, T and C from
 *           n, the escape counts, total_bytes = the derived layout and
 *           <= the bytes given ("truncated");
 *   tables  every codebook distinct with zero padding; the tile table
 *           starts at (0, 0), ends at (n_esc1, n_esc2), never decreases, and
 *           a tile has at most as many level-1 escapes as words and at most
 *           as many level-2 as level-1 escapes;
 *   body    (ZT_WCODE_CHECK_BODY) body_xxh64 (ZT_ERR_CHECKSUM);
 *   content (ZT_WCODE_CHECK_CONTENT) each tile's codes hold exactly the
 *           escapes its table entry counts, tails and padding are zero, no
 *           raw exponent is one of its chunk's codebook entries.
 * Header and tables (O(T)) are enough for memory safety: every decoder here
 * reads a tile's escapes only inside the range its table entries give,
 * clamped to [0, n_esc1) / [0, n_esc2), so even codes that disagree with the
 * table decode to wrong words, never to an access outside the image. Body or
 * content checks, or image_xxh64 after a CPU decode, catch such data.
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

/* A validated image: the header's numbers and the derived section offsets
 * (bytes from the start of the image). Plain data: the CUDA kernel gets it
 * by value. */
typedef struct zt_wcode_info {
    uint64_t n_words;
    uint32_t n_tiles, n_chunks;
    uint32_t n_esc1, n_esc2;
    uint64_t chunk_off, tile_off, sm_off, code_off, esc_off, raw_off;
    uint64_t total_bytes;
    uint64_t image_xxh64, body_xxh64;
} zt_wcode_info;

/* Largest coded size of an image of n words (every exponent raw). */
uint64_t zt_wcode_bound(uint64_t n_words);
/* The layout (offsets, total_bytes) for n words and escape counts. */
void zt_wcode_layout(uint64_t n_words, uint32_t n_esc1, uint32_t n_esc2, zt_wcode_info *out);

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

/* Decode a validated image into dst (n_words words) with `threads` worker
 * threads. verify != 0: compare XXH64 of the result with image_xxh64
 * (ZT_ERR_CHECKSUM on a mismatch). Memory-safe for any body bytes. */
int zt_wcode_decode(const void *img, const zt_wcode_info *info, uint16_t *dst, int threads, int verify,
                    const char *name, zt_err *e);
/* Decode tiles [t0, t1) only (the CPU backend's op; no checksum). */
void zt_wcode_decode_tiles(const void *img, const zt_wcode_info *info, uint16_t *dst, uint32_t t0, uint32_t t1);

#ifdef __cplusplus
}
#endif
#endif
