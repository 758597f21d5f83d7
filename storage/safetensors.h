/* storage/safetensors.h — read and write safetensors files and sharded
 * checkpoints (spec §1.3).
 *
 * FILE FORMAT
 *   u64 LE  N = header length
 *   N bytes UTF-8 JSON object, right-padded with spaces:
 *             "__metadata__": {string: string, ...}        (optional, skipped)
 *             "<tensor>": {"dtype": "BF16", "shape": [d0, ...],
 *                          "data_offsets": [begin, end]}  (relative to the
 *                          data section, half-open, end - begin =
 *                          prod(shape) x dtype size)
 *   data section: bytes [8 + N, file end), tensors dense, row-major, LE.
 * SHARDED: "<base>.safetensors.index.json" =
 *   {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>", ...}};
 *   shard names are plain file names in the same folder.
 *
 * Validation (every violation is ZT_ERR_FORMAT, ZT_ERR_UNSUPPORTED for an
 * unknown dtype, ZT_ERR_MISSING / ZT_ERR_IO for absent / unreadable files,
 * with one line naming the file, the tensor if any, and the cause):
 * 8-byte length vs file size and ZT_ST_MAX_HEADER; JSON (UTF-8, no
 * duplicate keys) that is an object of objects; __metadata__ a string map;
 * each tensor exactly {dtype, shape, data_offsets}; dtype known; shape ints
 * in [0, 2^53) with at most ZT_ST_MAX_DIMS dims; span == shape x dtype
 * (no overflow); offsets inside the data section; no two tensors overlap.
 * Index: object with an object weight_map of string values; shard names
 * without path separators, "..", leading dots or control characters; every
 * mapped tensor present in its shard.
 *
 * The writer lays out tensors in sorted key order (the header keys are
 * sorted too, "__metadata__": {"format": "pt"} first) and pads the header
 * with spaces so the data section starts at a multiple of 8. It streams:
 * the caller feeds each tensor's bytes in the order zt_st_writer_next says.
 * Never prints. */
#ifndef ZT_STORAGE_SAFETENSORS_H
#define ZT_STORAGE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "common/zt_dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_ST_MAX_DIMS 8
#define ZT_ST_MAX_HEADER (100ull * 1024 * 1024) /* same cap as the reference library */
#define ZT_ST_MAX_INDEX (64ull << 20)            /* *.safetensors.index.json (the real ones: < 100 KiB) */

/* Element types: zt_dtype (common/zt_dtype.h), one enum and one size table
 * for the files and the engine. */

typedef struct {
    const char *name;
    zt_dtype dtype;
    int ndim;
    int64_t shape[ZT_ST_MAX_DIMS];
    uint64_t begin, end;  /* relative to the data section */
} zt_st_tensor;

typedef struct {
    char *path;            /* as given; used in every message */
    int fd;                /* -1 when parsed from memory */
    uint64_t file_size;
    uint64_t data_offset;  /* 8 + N */
    int n_tensors;
    zt_st_tensor *tensors; /* sorted by name */
    char *names;
} zt_st_file;

/* Open and validate one file (reads only its header). */
int zt_st_open(const char *path, zt_st_file *f, zt_err *e);
/* Validate a header from memory: `buf` holds the first `len` bytes of a
 * file of `file_size` bytes (len >= 8 + N is needed; len may be the whole
 * file). `label` names the file in messages. f->fd is -1. The fuzz entry. */
int zt_st_parse(const char *label, const void *buf, size_t len, uint64_t file_size, zt_st_file *f, zt_err *e);
void zt_st_close(zt_st_file *f);
const zt_st_tensor *zt_st_find(const zt_st_file *f, const char *name);
/* pread n bytes at byte `off` of tensor t's data into dst (short reads
 * retried; a file shorter than its header claims is an error). */
int zt_st_pread(const zt_st_file *f, const zt_st_tensor *t, uint64_t off, void *dst, uint64_t n, zt_err *e);

/* A component folder: "<dir>/<base>.safetensors.index.json" + shards, or
 * the single file "<dir>/<base>.safetensors". */
typedef struct {
    const char *name;
    int file;              /* index into files */
    const zt_st_tensor *t;
} zt_st_entry;

typedef struct {
    char *dir;
    char *index_path;      /* NULL for a single file */
    int n_files;
    zt_st_file *files;
    int n_entries;
    zt_st_entry *entries;  /* sorted by name */
} zt_st_set;

int zt_st_set_open(const char *dir, const char *base, zt_st_set *s, zt_err *e);
void zt_st_set_close(zt_st_set *s);
const zt_st_entry *zt_st_set_find(const zt_st_set *s, const char *name);
/* Parse an index from memory into the shard names of its weight_map:
 * *names (malloc'ed, one per tensor, in the order of *tensors) — used by
 * zt_st_set_open and by tests. Free both with zt_st_index_free. */
int zt_st_index_parse(const char *label, const void *buf, size_t len, int *n, char ***tensors, char ***shards,
                      zt_err *e);
void zt_st_index_free(int n, char **tensors, char **shards);

/* Streaming writer. */
typedef struct {
    const char *name;
    zt_dtype dtype;
    int ndim;
    int64_t shape[ZT_ST_MAX_DIMS];
} zt_st_wtensor;

typedef struct zt_st_writer zt_st_writer;

/* Create `path` (truncating) and write its header. `ts` must stay valid
 * until close. Duplicate names are ZT_ERR_ARG. */
int zt_st_writer_open(const char *path, const zt_st_wtensor *ts, int n, zt_st_writer **out, zt_err *e);
/* Index into ts of the tensor whose bytes come next; -1 when all are done. */
int zt_st_writer_next(const zt_st_writer *w);
/* Append bytes of the current tensor (may cross into the following ones). */
int zt_st_writer_write(zt_st_writer *w, const void *data, size_t n, zt_err *e);
/* Flush, check every byte was written, close. Frees w. On error the file
 * is removed. */
int zt_st_writer_close(zt_st_writer *w, zt_err *e);
/* Close and remove the file. Frees w (NULL is fine). */
void zt_st_writer_abort(zt_st_writer *w);
/* Total data bytes of the tensors (the data section). */
uint64_t zt_st_writer_data_bytes(const zt_st_writer *w);

#ifdef __cplusplus
}
#endif
#endif
