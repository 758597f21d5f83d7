/* api/stfile.h — whole-file safetensors for small files: the pipeline's
 * --dump output, the oracle goldens the tests compare with, and --noise.
 * Reading goes through storage/safetensors.h (validation); writing is here
 * because dumps carry a __metadata__ map (size, steps, precision) that
 * tools/ref/check_golden.py reads.
 *
 * Format (spec §1.3): u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *  "__metadata__": {...}}, then the data section. The writer pads the header
 * with spaces to a multiple of 8 and lays tensors out in insertion order. */
#ifndef ZT_API_STFILE_H
#define ZT_API_STFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "common/zt_dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *name;
    char dtype[12];       /* as in the file: "F32", "BF16", "I64", "F64"... */
    int ndim;
    int64_t shape[8];
    size_t nbytes;
    void *data;           /* host copy, nbytes */
} zt_stf_tensor;

typedef struct {
    int n, cap;
    zt_stf_tensor *t;
    int n_meta;
    char *meta[32][2];    /* __metadata__ key/value strings (writer only) */
} zt_stf;

/* Read every tensor of `path` (validated by storage/safetensors.h;
 * __metadata__ is not kept). */
int zt_stf_load(const char *path, zt_stf *f, zt_err *e);
const zt_stf_tensor *zt_stf_find(const zt_stf *f, const char *name);
/* Element count of a tensor. */
int64_t zt_stf_numel(const zt_stf_tensor *t);
/* Tensor converted to f32 (F32, BF16, F16, F64, I32, I64, U8 sources) into a
 * fresh malloc'd array; NULL if the dtype is unknown or memory is short. */
float *zt_stf_to_f32(const zt_stf_tensor *t);
/* Append a copy of data (dtype string as in the file). */
int zt_stf_add(zt_stf *f, const char *name, const char *dtype, int ndim, const int64_t *shape, const void *data,
               size_t nbytes, zt_err *e);
/* Set a __metadata__ string (at most 32 keys; later values replace). */
int zt_stf_meta(zt_stf *f, const char *key, const char *value, zt_err *e);
/* Write to path via path.tmp.PID + rename (nothing half-written is left). */
int zt_stf_save(const zt_stf *f, const char *path, zt_err *e);
void zt_stf_free(zt_stf *f);

#ifdef __cplusplus
}
#endif
#endif
