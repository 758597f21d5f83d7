/* tests/fuzz/fuzz_safetensors.c — libFuzzer harness for the safetensors
 * header parser (zt_st_parse, from memory) and the sharded-index parser
 * (zt_st_index_parse, same bytes). Whatever the bytes, the parsers must
 * return a code with a one-line message, and on success the tensor table
 * must be self-consistent (sorted names, spans inside the data section,
 * span = shape x dtype). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zt_st_file f;
    zt_err e = {0};
    int rc = zt_st_parse("fuzz.safetensors", data, size, size, &f, &e);
    if (rc == ZT_OK) {
        uint64_t data_size = f.file_size - f.data_offset;
        for (int i = 0; i < f.n_tensors; i++) {
            const zt_st_tensor *t = &f.tensors[i];
            uint64_t n = zt_dtype_size(t->dtype);
            for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
            if (t->end > data_size || t->end - t->begin != n) abort();
            if (i && strcmp(f.tensors[i - 1].name, t->name) >= 0) abort();
            if (zt_st_find(&f, t->name) != t) abort();
        }
        zt_st_close(&f);
    } else if (!e.msg[0] || strchr(e.msg, '\n')) {
        abort();
    }
    int n;
    char **ts, **ss;
    rc = zt_st_index_parse("fuzz.index.json", data, size, &n, &ts, &ss, &e);
    if (rc == ZT_OK) {
        for (int i = 0; i < n; i++)
            if (strchr(ss[i], '/') || ss[i][0] == '.') abort();
        zt_st_index_free(n, ts, ss);
    }
    return 0;
}
