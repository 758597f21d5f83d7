/* storage/store.h — the zturbo block store: one file that holds the byte
 * image (storage/catalog.h) of every streaming unit of a model, so that
 * loading a unit is one O_DIRECT read, an optional zstd decode and a DMA.
 * Written by `zturbo pack`; self-describing and self-sufficient: it carries
 * the model config (every value the engine reads from the snapshot's
 * transformer/, text_encoder/, vae/ and scheduler/ config files), the units,
 * the tensor table and the files generation needs besides the weights (the
 * tokenizer), so that `zturbo generate -m STORE` needs nothing else.
 *
 * FORMAT, version 2. All integers little-endian; sizes and offsets in bytes.
 * Version 1 is version 2 without files (n_files = files_size = 0, those
 * header bytes were reserved); it is still read.
 *
 *   [0, 4096)                  header (256 bytes defined, the rest zero)
 *   [4096, index_offset)       extents: one per unit, in catalog order, each
 *                              starting at a multiple of 4096; the bytes
 *                              between extents are zero
 *   [index_offset, +index_size) index
 *   then zero bytes up to file_size = ALIGN_UP(index_offset + index_size, 4096)
 *
 * Header (offset 0):
 *     0  u8[8]  magic "ZTSTORE\0"
 *     8  u32    version = 2 (1 is read too)
 *    12  u32    flags, reserved: 0
 *    16  u64    file_size (exact size of the file)
 *    24  u64    index_offset (multiple of 4096, >= 4096)
 *    32  u64    index_size
 *    40  u64    index_xxh64 = XXH64(index bytes, seed 0)
 *    48  u32    n_config   number of config records
 *    52  u32    n_units
 *    56  u32    n_tensors
 *    60  u32    chunk_bytes (power of two, 64 KiB .. 256 MiB)
 *    64  u64    n_chunks
 *    72  u64    names_size
 *    80  u32    n_files    number of file records (0 .. 64)
 *    84  u32    reserved: 0
 *    88  u64    files_size bytes of file contents (section 7)
 *    96  u8[152] reserved: 0
 *   248  u64    header_xxh64 = XXH64(header bytes [0, 248), seed 0)
 *
 * Index: seven sections back to back, in this order, with these sizes:
 *   1 config records  n_config x 32   the zt_model_config, one field a record:
 *        0 char[24] key, NUL-padded ("dim", "axes_dims.0", ...; the list
 *                   is k_config_fields in store.c; all must be present once,
 *                   except "vae_encoder" and "vae_quant_conv", added later:
 *                   absent = 0, i.e. no unit vae.encoder)
 *       24 u32      type: 1 = int32, 2 = float32 (IEEE binary32 bits)
 *       28 u32      value
 *   2 unit records    n_units x 112
 *        0 char[48] name, NUL-terminated, zero after the NUL
 *       48 u32      component (zt_component)
 *       52 u32      flags: bit 0 per_step, bit 1 host_only, others 0
 *       56 u32      first_tensor, 60 u32 n_tensors  (units cover the tensor
 *                   table in order, without gaps)
 *       64 u64      image_bytes: the unit's image size (multiple of 4096)
 *       72 u64      extent_offset (multiple of 4096)
 *       80 u64      stored_bytes: bytes of the extent (the chunks)
 *       88 u32      codec: how every chunk of the unit is stored (below)
 *       92 u32      reserved: 0
 *       96 u64      first_chunk (units cover the chunk table in order)
 *      104 u64      extent_xxh64 = XXH64(the stored_bytes bytes, seed 0)
 *   3 tensor records  n_tensors x 72
 *        0 u32      name_offset into the name table, 4 u32 name_len (the
 *                   name has no NUL inside and a NUL after it)
 *        8 u32      dtype (zt_dtype), 12 u32 ndim (1..4)
 *       16 u32      flags: bit 0 permute_ohwi, others 0;  20 u32 reserved: 0
 *       24 i64[4]   shape (dims past ndim are 0, the others > 0)
 *       56 u64      offset inside the unit image, 64 u64 nbytes
 *                   (= product of shape x dtype size; inside the image)
 *   4 chunk records   n_chunks x 16
 *        0 u32      stored size, 4 u32 reserved: 0, 8 u64 XXH64 of the
 *                   stored bytes (seed 0)
 *   5 name table      names_size bytes
 *   6 file records    n_files x 64: the files besides the weights
 *        0 char[48] name: its path in a Hugging Face snapshot
 *                   ("tokenizer/tokenizer.json"), NUL-terminated, zero after
 *                   the NUL; characters A-Z a-z 0-9 . _ - /, no empty, "."
 *                   or ".." part; unique
 *       48 u64      offset of its bytes in section 7: the files lie back to
 *                   back in record order (offset = sum of the sizes before)
 *       56 u64      size, at most ZT_STORE_FILE_MAX (64 MiB)
 *   7 file contents   files_size bytes (= the sum of the sizes)
 *
 * The files are covered by index_xxh64. `zturbo pack` writes
 * "tokenizer/tokenizer.json" (the Qwen3 tokenizer, api/tokenizer.h) when the
 * source has one or --tokenizer gives it; readers look files up by name and
 * ignore names they do not know, so later files need no new version.
 *
 * Codec (unit record offset 88): 0 raw (every chunk a plain copy), 1 zstd
 * (a chunk smaller than its image is one zstd frame), 2 zstd over bf16 byte
 * planes (one zstd frame of the chunk's byte planes, storage/zcodec.h),
 * 3 coded weights (storage/wcode.h; its chunks are described below).
 * Readers refuse a codec they do not know (ZT_ERR_UNSUPPORTED naming the
 * unit and the value: the file was written by a newer zturbo), so a new
 * codec takes the next value without a new version; it must say how its
 * chunks cut the extent and what a chunk whose stored size equals its
 * size means. (Codec 3 was added to version 1 stores before version 2;
 * such stores are read as any version 1 store.)
 *
 * Chunks: the image of a unit is cut into ceil(image_bytes / chunk_bytes)
 * chunks of chunk_bytes (the last one shorter); their stored forms follow
 * each other in the extent, so stored_bytes is the sum of their stored
 * sizes. A chunk whose stored size equals its image size is a plain copy;
 * a smaller one is decoded by the unit's codec; a larger one is invalid.
 * Chunks let several threads check and decode one large unit, and a
 * corrupt byte be located.
 *
 * Codec 3: the extent is one coded image (storage/wcode.h) of the unit's
 * image (image_bytes / 2 bf16 words), smaller than the image. Its chunks
 * are cuts of the coded bytes, ceil(stored_bytes / chunk_bytes) of them,
 * each a plain copy (its stored size is its size): they carry checksums
 * only. Reading such a chunk or extent gives coded bytes (what the GPU
 * decodes, storage/reader.h and stream/); zt_store_read_unit decodes the
 * image on the host. The coded image's header and tables are validated
 * before anything decodes it; zt_store_verify also checks its content and
 * that it decodes to the words it was coded from (its image checksum).
 *
 * An extent is read with one request of ALIGN_UP(stored_bytes, 4096) bytes
 * at extent_offset (O_DIRECT: aligned offset, size and buffer).
 *
 * Validation on open (hostile files must be rejected, never crash): magic
 * (ZT_ERR_FORMAT), version (ZT_ERR_UNSUPPORTED, "repack it"), header
 * checksum (ZT_ERR_CHECKSUM), reserved fields and bits (FORMAT), file size
 * (FORMAT, "truncated"), every section size and count, every name, dtype,
 * shape and offset, extents inside [4096, index_offset) without overlap,
 * chunk sizes summing to stored_bytes, file names, offsets and sizes, the
 * index checksum (CHECKSUM), and finally that the units and tensors equal
 * those of the catalog rebuilt from the stored config (FORMAT). Chunk checksums are checked whenever a chunk is read
 * (ZT_ERR_CHECKSUM naming the unit, the chunk and the file offset) unless
 * ZT_STORE_NO_VERIFY is given; zt_store_verify checks every byte.
 *
 * Never prints. */
#ifndef ZT_STORAGE_STORE_H
#define ZT_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "storage/catalog.h"
#include "storage/source.h"
#include "storage/zcodec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_STORE_MAGIC "ZTSTORE\0"
#define ZT_STORE_VERSION 2u          /* written; 1 (no files) is read too */
#define ZT_STORE_HEADER_BYTES 256u  /* defined part of the header */
#define ZT_STORE_ALIGN 4096u        /* extent and file alignment */
#define ZT_STORE_CONFIG_REC 32u
#define ZT_STORE_UNIT_REC 112u
#define ZT_STORE_TENSOR_REC 72u
#define ZT_STORE_CHUNK_REC 16u
#define ZT_STORE_FILE_REC 64u
#define ZT_STORE_FILE_NAME 48u        /* name field, NUL included */
#define ZT_STORE_FILES_MAX 64u
#define ZT_STORE_FILE_MAX (64u << 20) /* bytes of one file */
/* The Qwen3 tokenizer, as the snapshot holds it (api/tokenizer.h). */
#define ZT_STORE_FILE_TOKENIZER "tokenizer/tokenizer.json"
#define ZT_STORE_CHUNK_MIN (64u * 1024u)
#define ZT_STORE_CHUNK_MAX (256u * 1024u * 1024u)
#define ZT_STORE_CHUNK_DEFAULT (4u * 1024u * 1024u)

typedef enum { ZT_CODEC_RAW = 0, ZT_CODEC_ZSTD = 1, ZT_CODEC_ZSTD_PLANES = 2, ZT_CODEC_WCODE = 3 } zt_store_codec;

/* Open / read flags. */
enum {
    ZT_STORE_NO_VERIFY = 1u << 0,   /* skip chunk checksums when reading */
    ZT_STORE_TRUST_INDEX = 1u << 1, /* skip header+index checksums (fuzzing only) */
    ZT_STORE_TO_F16 = 1u << 2,      /* reads: convert each decoded chunk from bf16 to f16 (the fp16 path) */
};

typedef struct {
    uint64_t offset;        /* file offset, multiple of 4096 */
    uint64_t stored_bytes;  /* sum of the chunks' stored sizes */
    uint64_t read_bytes;    /* ALIGN_UP(stored_bytes, 4096): one O_DIRECT read */
    uint64_t image_bytes;   /* the unit's image size */
    uint64_t xxh64;         /* of the stored bytes */
    zt_store_codec codec;
    uint64_t first_chunk;   /* index into the chunk table */
    uint32_t n_chunks;
} zt_store_extent;

typedef struct {
    uint64_t at;            /* offset of the stored chunk inside its extent */
    uint32_t stored;        /* stored size */
    uint32_t raw;           /* image bytes it decodes to (codec 3: = stored, coded bytes) */
    uint64_t xxh64;
} zt_store_chunk;

typedef struct zt_store zt_store;

/* Open and validate a store file (see above). flags: ZT_STORE_*. */
int zt_store_open(const char *path, unsigned flags, zt_store **out, zt_err *e);
/* Validate from memory: `header` holds at least the first 256 bytes of the
 * file and `index` the index_size bytes of the index; file_size is the size
 * the file has. `name` is used in messages. The fuzz entry point. */
int zt_store_parse(const void *header, size_t header_len, const void *index, size_t index_len, uint64_t file_size,
                   const char *name, unsigned flags, zt_store **out, zt_err *e);
void zt_store_close(zt_store *s);

const char *zt_store_path(const zt_store *s);
const zt_catalog *zt_store_catalog(const zt_store *s);
const zt_store_extent *zt_store_extent_of(const zt_store *s, int unit);
const zt_store_chunk *zt_store_chunk_of(const zt_store *s, int unit, uint32_t k);
uint32_t zt_store_chunk_bytes(const zt_store *s);
/* Largest read_bytes of any extent (size of a staging buffer). */
uint64_t zt_store_max_read_bytes(const zt_store *s);
uint64_t zt_store_file_size(const zt_store *s);
unsigned zt_store_flags(const zt_store *s);
unsigned zt_store_version(const zt_store *s);
/* The files the store carries (section 6): file i's name, bytes and size;
 * i in [0, zt_store_n_files). The bytes live as long as the store. */
int zt_store_n_files(const zt_store *s);
const char *zt_store_file_name(const zt_store *s, int i);
const void *zt_store_file_data(const zt_store *s, int i, uint64_t *size);
/* Index of the file called `name`, or -1. */
int zt_store_file_find(const zt_store *s, const char *name);
/* 1 when `name` may name a stored file (the rules of section 6). */
int zt_store_file_name_ok(const char *name);

/* Check (unless ZT_STORE_NO_VERIFY in flags) and decode chunk k of `unit`
 * from the extent bytes `extent` (as read from the file, >= stored_bytes)
 * into its place in `image` (the unit image, >= image_bytes). `scratch`:
 * chunk_bytes bytes; `d`: a caller-owned zstd context. Thread-safe for
 * distinct (unit, k). Errors name the file, unit, chunk and file offset. */
int zt_store_decode_chunk(const zt_store *s, int unit, uint32_t k, const void *extent, void *image, ZSTD_DCtx *d,
                          void *scratch, unsigned flags, zt_err *e);
/* Read, check (unless ZT_STORE_NO_VERIFY) and decode one chunk of `unit`
 * into dst (the chunk's `raw` image bytes), synchronously. */
int zt_store_read_chunk(zt_store *s, int unit, uint32_t k, void *dst, unsigned flags, zt_err *e);
/* 1 when every chunk of `unit` is a plain copy (stored_bytes ==
 * image_bytes): the extent can be read straight into the image, and the
 * chunks then only need their checksums checked (decode_chunk with
 * extent == image does exactly that). */
int zt_store_extent_is_image(const zt_store *s, int unit);

/* Synchronous read of one unit image (pread + checks + decode on the
 * calling thread) into dst (>= image_bytes). Thread-safe. */
int zt_store_read_unit(zt_store *s, int unit, void *dst, uint64_t dst_bytes, unsigned flags, zt_err *e);

/* 1 when `unit` is stored coded (codec 3). */
int zt_store_unit_coded(const zt_store *s, int unit);
/* Synchronous read of a coded unit's coded image into dst (>= read_bytes,
 * 4 KiB aligned for O_DIRECT callers; the bytes past stored_bytes are the
 * extent's zero padding): chunk checksums (unless ZT_STORE_NO_VERIFY), then
 * the coded image's header and tables (always), *info filled. Thread-safe. */
struct zt_wcode_info;
int zt_store_read_coded(zt_store *s, int unit, void *dst, uint64_t dst_bytes, unsigned flags,
                        struct zt_wcode_info *info, zt_err *e);

/* Re-read the whole file and check every extent, chunk, padding byte and
 * the index; progress (may be NULL) after each unit. */
typedef void (*zt_store_progress_fn)(void *ctx, int units_done, int n_units, uint64_t bytes_done,
                                     uint64_t bytes_total);
int zt_store_verify(const char *path, zt_store_progress_fn progress, void *ctx, zt_err *e);

/* Pack a model source into a new store file.
 * Writes `out_path.tmp-XXXXXX` next to it, fsyncs, renames to out_path and
 * fsyncs the folder; on any failure the temporary file is removed and the
 * error names the path and the cause (e.g. ENOSPC): there is never a
 * partial store under the final name. */
/* A file to store (section 6): name, bytes, size. */
typedef struct {
    const char *name;
    const void *data;
    uint64_t size;
} zt_store_file_in;

typedef struct {
    int wcode;             /* 1: code every device unit (not host_only) with storage/wcode.h (codec 3)
                              when that is smaller; the rest as zstd_level says */
    int zstd_level;        /* 0: no compression (codec 0); 1..22: zstd */
    int threads;           /* compression threads; 0: number of CPUs (max 16) */
    uint32_t chunk_bytes;  /* 0: ZT_STORE_CHUNK_DEFAULT */
    volatile int *cancel;  /* optional: set non-zero (e.g. from a SIGINT handler) to
                              stop; pack then cleans up and returns ZT_ERR_INTERRUPTED */
    const zt_store_file_in *files; /* the files to store (section 6); zt_store_pack adds the
                                      source's own (zt_source_read_file) unless named here */
    int n_files;
} zt_pack_opts;

typedef struct {
    uint64_t image_bytes;  /* sum of the unit images */
    uint64_t stored_bytes; /* sum of the extents' stored bytes */
    uint64_t file_bytes;   /* size of the store file */
    double seconds;
} zt_pack_stats;

/* The store carries opts->files and, for each name of
 * zt_store_standard_files that opts->files does not give, the source's own
 * copy when it has one (a snapshot's tokenizer/tokenizer.json, a store's
 * stored file; ComfyUI files have none). */
int zt_store_pack(zt_source *src, const char *out_path, const zt_pack_opts *opts, zt_store_progress_fn progress,
                  void *ctx, zt_pack_stats *stats, zt_err *e);
/* The files a store takes from its source (ZT_STORE_FILE_TOKENIZER). */
extern const char *const zt_store_standard_files[];
extern const int zt_store_n_standard_files;
/* The same from any producer of unit images: read(read_ctx, unit, dst,
 * dst_bytes, e) fills the image of catalog unit `unit` (zt_store_pack
 * passes zt_source_read_unit). Called from the calling thread only. Stores
 * opts->files only. */
typedef int (*zt_unit_read_fn)(void *read_ctx, int unit, void *dst, uint64_t dst_bytes, zt_err *e);
int zt_store_pack_images(const zt_catalog *cat, zt_unit_read_fn read, void *read_ctx, const char *out_path,
                         const zt_pack_opts *opts, zt_store_progress_fn progress, void *ctx, zt_pack_stats *stats,
                         zt_err *e);

/* A zt_source (storage/source.h) backed by a store file: the catalog is the
 * store's, read_unit = read + checksum + decode into the destination. */
int zt_store_source_open(const char *path, zt_source **out, zt_err *e);
/* The store behind a store-backed source (NULL for other sources); the
 * streaming engine reads its extents asynchronously with storage/reader.h. */
zt_store *zt_store_of_source(zt_source *src);

#ifdef __cplusplus
}
#endif
#endif
