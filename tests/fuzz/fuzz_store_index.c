/* tests/fuzz/fuzz_store_index.c — libFuzzer harness for the block store
 * index parser (storage/store.h), from memory.
 *
 * Input: the 256-byte header followed by the index bytes. The file size
 * given to the parser is the one the header claims, so that mutations get
 * past the size check and reach the section, unit, tensor, chunk, file
 * and catalog checks. Each input is parsed twice: with the header and index
 * checksums checked (a damaged input must be refused there) and with them
 * trusted (ZT_STORE_TRUST_INDEX), which exercises everything behind them.
 * An accepted store must be internally consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"
#include "storage/store_format.h"

static void check_accepted(const zt_store *s, uint64_t file_size) {
    const zt_catalog *cat = zt_store_catalog(s);
    uint64_t max_read = 0;
    for (int u = 0; u < cat->n_units; u++) {
        const zt_store_extent *x = zt_store_extent_of(s, u);
        if (!x || x->offset % ZT_STORE_ALIGN || x->offset + x->read_bytes > file_size ||
            x->image_bytes != cat->units[u].nbytes || x->stored_bytes > x->image_bytes)
            abort();
        uint64_t sum = 0;
        for (uint32_t k = 0; k < x->n_chunks; k++) {
            const zt_store_chunk *c = zt_store_chunk_of(s, u, k);
            if (!c || c->at != sum || c->stored > c->raw || c->stored == 0) abort();
            sum += c->stored;
        }
        if (sum != x->stored_bytes || zt_store_chunk_of(s, u, x->n_chunks)) abort();
        if (x->read_bytes > max_read) max_read = x->read_bytes;
        if (zt_catalog_unit(cat, cat->units[u].name) != &cat->units[u]) abort();
    }
    if (zt_store_max_read_bytes(s) != max_read || zt_store_extent_of(s, cat->n_units) || zt_store_extent_of(s, -1))
        abort();
    /* the stored files: valid unique names, bytes inside what was copied */
    const int nf = zt_store_n_files(s);
    if (nf < 0 || (unsigned)nf > ZT_STORE_FILES_MAX || (zt_store_version(s) == 1 && nf)) abort();
    for (int i = 0; i < nf; i++) {
        const char *name = zt_store_file_name(s, i);
        uint64_t n = 1;
        const uint8_t *d = zt_store_file_data(s, i, &n);
        if (!name || !d || !zt_store_file_name_ok(name) || n > ZT_STORE_FILE_MAX || zt_store_file_find(s, name) != i)
            abort();
        volatile uint8_t touch = 0; /* ASan: the bytes are readable */
        if (n) touch ^= d[0] ^ d[n - 1];
        (void)touch;
    }
    uint64_t n = 1;
    if (zt_store_file_name(s, nf) || zt_store_file_data(s, nf, &n) || n || zt_store_file_data(s, -1, NULL)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < ZT_STORE_HEADER_BYTES) {
        zt_store *s = NULL;
        zt_err e;
        if (zt_store_parse(data, size, NULL, 0, size, "fuzz", 0, &s, &e) == ZT_OK) abort();
        return 0;
    }
    uint64_t file_size = zt_rd64(data + 16);
    const uint8_t *index = data + ZT_STORE_HEADER_BYTES;
    size_t index_len = size - ZT_STORE_HEADER_BYTES;
    /* Copy the index so that ASan sees reads past its end. */
    uint8_t *copy = malloc(index_len ? index_len : 1);
    if (!copy) return 0;
    memcpy(copy, index, index_len);
    for (unsigned flags = 0; flags <= ZT_STORE_TRUST_INDEX; flags += ZT_STORE_TRUST_INDEX) {
        zt_store *s = NULL;
        zt_err e;
        int rc = zt_store_parse(data, ZT_STORE_HEADER_BYTES, copy, index_len, file_size, "fuzz", flags, &s, &e);
        if (rc == ZT_OK) {
            if (!s) abort();
            check_accepted(s, file_size);
            zt_store_close(s);
        } else if (s || !e.msg[0] || strchr(e.msg, '\n')) {
            abort(); /* failure: no object, one line of message */
        }
    }
    free(copy);
    return 0;
}
