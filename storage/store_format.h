/* storage/store_format.h — internals of the block store shared by
 * storage/store*.c, the fuzz harness and the tests that forge corrupt
 * stores: little-endian field access, the decoded header, the config record
 * table. The format itself is specified in storage/store.h. */
#ifndef ZT_STORAGE_STORE_FORMAT_H
#define ZT_STORAGE_STORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline uint32_t zt_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t zt_rd64(const uint8_t *p) { return (uint64_t)zt_rd32(p) | (uint64_t)zt_rd32(p + 4) << 32; }
static inline void zt_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void zt_wr64(uint8_t *p, uint64_t v) {
    zt_wr32(p, (uint32_t)v);
    zt_wr32(p + 4, (uint32_t)(v >> 32));
}

typedef struct {
    uint32_t version, flags;
    uint64_t file_size, index_offset, index_size, index_xxh64;
    uint32_t n_config, n_units, n_tensors, chunk_bytes;
    uint64_t n_chunks, names_size;
    uint32_t n_files;   /* version 2 */
    uint64_t files_size;
} zt_store_header;

enum { ZT_CFG_INT = 1, ZT_CFG_FLOAT = 2 };
typedef struct {
    const char *key;
    size_t offset; /* in zt_model_config */
    int type;
} zt_store_cfg_field;
extern const zt_store_cfg_field zt_store_cfg_fields[];
extern const int zt_store_n_cfg_fields;

/* Decode and check the 256-byte header against the file size (see store.h). */
int zt_store_header_decode(const uint8_t *h, size_t len, uint64_t file_size, const char *name, unsigned flags,
                           zt_store_header *out, zt_err *e);
/* Encode the header, header checksum included. */
void zt_store_header_encode(const zt_store_header *H, uint8_t h[ZT_STORE_HEADER_BYTES]);
/* Write the zt_store_n_cfg_fields config records (32 bytes each) at p. */
void zt_store_config_encode(const zt_model_config *cfg, uint8_t *p);
/* pread exactly n bytes, EINTR retried; end of file is ZT_ERR_FORMAT. */
int zt_store_pread_full(int fd, void *buf, uint64_t n, uint64_t off, const char *name, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
