/* common/zt_common.h — error codes, error context, logging and small helpers
 * shared by every module of zturbo.
 *
 * Error protocol (design.md invariant 5):
 *   - storage/, sched/, models/ and stream/ functions that can fail for a
 *     reason outside the program (bad file, short read, OOM at planning...)
 *     return an int status: ZT_OK (0) or a negative zt_code, and fill a
 *     caller-supplied zt_err with ONE line naming the thing and the cause,
 *     e.g. "transformer/config.json: missing key 'dim'".
 *   - They never print and never exit. Only tools/ (the command line) prints.
 *   - GPU API failures are programming/driver faults: they abort with
 *     file:line and the failing call (see common/zt_cuda.h).
 */
#ifndef ZT_COMMON_H
#define ZT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZT_OK = 0,
    ZT_ERR_ARG = -1,         /* bad argument / value out of range           */
    ZT_ERR_IO = -2,          /* open/read/write/fsync/rename failed          */
    ZT_ERR_FORMAT = -3,      /* malformed file (header, JSON, index, magic)  */
    ZT_ERR_CHECKSUM = -4,    /* stored checksum does not match the bytes     */
    ZT_ERR_NOMEM = -5,       /* host or device memory could not be had       */
    ZT_ERR_MISSING = -6,     /* expected file/tensor/key is absent           */
    ZT_ERR_UNSUPPORTED = -7, /* valid but not supported (dtype, version...)  */
    ZT_ERR_INTERRUPTED = -8, /* stopped by SIGINT/SIGTERM                    */
    ZT_ERR_RANGE = -9,       /* value outside the model's limits             */
    ZT_ERR_INTERNAL = -10,   /* invariant broken: a bug                      */
} zt_code;

#define ZT_ERR_MSG 512

typedef struct {
    int code;               /* zt_code of the first error recorded */
    char msg[ZT_ERR_MSG];   /* one line, no trailing newline        */
} zt_err;

/* Record an error (first one wins if the context already holds one? no:
 * the latest call overwrites, callers add context by zt_err_prefix).
 * Returns `code` so that `return zt_err_set(e, ZT_ERR_IO, "...")` works.
 * `e` may be NULL. */
int zt_err_set(zt_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend context: "ctx: <old message>". Returns e->code. */
int zt_err_prefix(zt_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void zt_err_clear(zt_err *e);
/* Make s one line: control characters (a newline in a quoted file name or
 * value) become '?'. zt_err_set and zt_err_prefix apply it. */
void zt_one_line(char *s);
/* Short name of a code: "io", "format", ... */
const char *zt_code_name(int code);

/* Monotonic clock in seconds. */
double zt_now(void);

/* Size helpers. */
#define ZT_ALIGN_UP(x, a) ((((uint64_t)(x)) + ((uint64_t)(a)) - 1) / ((uint64_t)(a)) * ((uint64_t)(a)))
#define ZT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ZT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define ZT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ZT_KiB (1024ull)
#define ZT_MiB (1024ull * 1024ull)
#define ZT_GiB (1024ull * 1024ull * 1024ull)

/* Parse "8G", "512M", "1.5G", "4096B", "0". The units K, M, G, T are
 * 1024-based, written alone or as KiB/KB, MiB/MB, GiB/GB, TiB/TB (a GPU sold
 * as "8 GB" holds 8 GiB); B is bytes. A number without a unit is refused
 * unless it is 0 ("8000" suggests "8000M"). Returns ZT_OK or ZT_ERR_ARG with
 * a message naming `what`. */
int zt_parse_size(const char *s, const char *what, uint64_t *out, zt_err *e);
/* Format bytes as "1.23 GiB" into buf. Returns buf. */
const char *zt_fmt_bytes(uint64_t bytes, char *buf, size_t n);

/* Growing arrays. zt_grow: p (an array of *cap elements of elt bytes) with room for at least
 * `need`, doubling from 64; NULL when realloc fails (p is then still valid and *cap unchanged). */
void *zt_grow(void *p, int *cap, int need, size_t elt);

/* A growing byte buffer (text or binary), kept NUL-terminated after its n bytes. An allocation that
 * fails sets oom, after which every add is dropped: check oom once at the end. Start from {0}; the
 * owner frees data. */
typedef struct zt_buf {
    char *data;
    size_t n, cap;
    int oom;
} zt_buf;
/* Room for `more` bytes (and the NUL) after n: 0, or -1 with oom set. */
int zt_buf_reserve(zt_buf *b, size_t more);
void zt_buf_add(zt_buf *b, const void *p, size_t n);
void zt_buf_str(zt_buf *b, const char *s);
void zt_buf_printf(zt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Abort with file:line for broken invariants (bugs, not user errors). */
#define ZT_ASSERT(cond)                                                          \
    do {                                                                         \
        if (!(cond)) zt_die_assert(__FILE__, __LINE__, #cond);                   \
    } while (0)
void zt_die_assert(const char *file, int line, const char *what) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
