/* storage/md5.h — MD5 (RFC 1321) and the md5 manifest of the official
 * Z-Image-Turbo release, for `zturbo verify`.
 *
 * MD5 is used only to compare downloads with the published manifest (spec
 * §1.1: the 16 files of src/config/manifests/z-image-turbo.txt of the
 * official repository, md5 of each whole file); it is not a security
 * check. zt_md5_file hashes with large sequential reads (8 MiB) and reports
 * progress after each one, so a caller can show it and cancel.
 *
 * A file checks as (zt_manifest_check):
 *   OK          present, readable and (full check) its md5 matches, or
 *               (quick check) its header is sound: a .json file is valid
 *               JSON (an index also a valid weight_map), a .safetensors file
 *               has a valid header whose data section ends exactly at the
 *               end of the file;
 *   MISSING     no such file (a dangling symlink counts as missing);
 *   CORRUPT     md5 differs, or (quick) the header or size is wrong;
 *   UNREADABLE  present but cannot be opened or read (permissions, I/O
 *               error, a folder in its place).
 * Never prints. */
#ifndef ZT_STORAGE_MD5_H
#define ZT_STORAGE_MD5_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t s[4];    /* A, B, C, D */
    uint64_t n;       /* bytes hashed so far */
    uint8_t buf[64];  /* pending partial block (n % 64 bytes) */
} zt_md5;

void zt_md5_init(zt_md5 *m);
void zt_md5_update(zt_md5 *m, const void *data, size_t n);
void zt_md5_final(zt_md5 *m, uint8_t digest[16]);
/* 32 lowercase hex digits and a NUL. */
void zt_md5_hex(const uint8_t digest[16], char out[33]);

/* Called after each read with the bytes just hashed; a nonzero return stops
 * the hash (ZT_ERR_INTERRUPTED). Must be thread-safe if files are hashed in
 * parallel. */
typedef int (*zt_md5_progress_fn)(void *ctx, uint64_t bytes);

/* MD5 of a whole file. ZT_ERR_MISSING / ZT_ERR_IO naming the file. */
int zt_md5_file(const char *path, zt_md5_progress_fn progress, void *ctx, uint8_t digest[16], zt_err *e);

/* ---- the official release ---------------------------------------------- */

typedef struct {
    const char *path; /* relative to the snapshot folder */
    const char *md5;  /* 32 lowercase hex digits */
} zt_manifest_entry;

#define ZT_MANIFEST_FILES 16
extern const zt_manifest_entry zt_manifest_zimage_turbo[ZT_MANIFEST_FILES];

typedef enum {
    ZT_FILE_OK = 0,
    ZT_FILE_MISSING = 1,
    ZT_FILE_CORRUPT = 2,
    ZT_FILE_UNREADABLE = 3,
} zt_file_status;

const char *zt_file_status_name(zt_file_status s); /* "OK", "MISSING", ... */

/* Read a manifest in md5sum(1) format: one "<32 hex digits>  <path>" (or
 * " *<path>") per line; blank lines and lines starting with '#' are
 * skipped; paths are relative, without "." or ".." components. At most
 * 65536 entries. Free with zt_manifest_free. ZT_ERR_FORMAT names the file
 * and the line. */
int zt_manifest_load(const char *path, zt_manifest_entry **entries, int *n, zt_err *e);
void zt_manifest_free(zt_manifest_entry *entries, int n);

typedef struct {
    zt_file_status status;
    uint64_t size;       /* bytes, when the file could be stat'ed */
    char md5[33];        /* what the file hashes to (full check), else "" */
    char detail[400];    /* why it is not OK (one line), else "" */
} zt_file_check;

/* Check root/entry->path. quick: no hashing (see the top of this file).
 * Returns ZT_OK with the verdict in *out, or ZT_ERR_INTERRUPTED when the
 * progress callback stopped it (other failures are verdicts, not errors). */
int zt_manifest_check(const char *root, const zt_manifest_entry *entry, int quick, zt_md5_progress_fn progress,
                      void *ctx, zt_file_check *out, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
