/* common/zt_input.h — the rules for input from outside the program, in one
 * place, so the command line, the library and the server apply the same
 * ones with the same words.
 *
 * Numbers: decimal digits only, no blanks, no '+', no hex, no thousands
 *   separators; a leading '-' only where negative values exist (i64, real).
 *   Reals are finite: "inf", "nan" and hex floats are refused. The parsers
 *   return ZT_OK, ZT_ERR_ARG (not a number of that kind) or ZT_ERR_RANGE (a
 *   number outside what the type holds) and never write a message: the
 *   caller names the option.
 * Text: UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates,
 *   nothing above U+10FFFF).
 * Files read: stat first, then opened with O_NONBLOCK (a FIFO or a device
 *   can neither block the open nor be read): anything but a regular file is
 *   refused as "not a regular file (a FIFO)". A file read whole has a cap,
 *   and the message names it. Failed stat/open calls report their errno
 *   (ENOENT/ENOTDIR: ZT_ERR_MISSING, anything else: ZT_ERR_IO).
 * Files written: an output path must name a regular file or nothing yet
 *   (no symbolic link, folder, device, FIFO or socket), in an existing folder
 *   the process can write into. Writers check it before any work and write
 *   through a temporary name in the same folder and a rename, which replaces
 *   the directory entry: a symbolic link would be replaced rather than
 *   followed, hence refused. */
#ifndef ZT_INPUT_H
#define ZT_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

int zt_parse_i64(const char *s, int64_t *out);
int zt_parse_u64(const char *s, uint64_t *out);
int zt_parse_real(const char *s, double *out);

/* 1 when s[0..n) is valid UTF-8; else 0 and *bad_offset (may be NULL) is
 * the offset of the first byte that does not start a valid sequence. */
int zt_utf8_valid(const char *s, size_t n, size_t *bad_offset);

/* "a folder", "a FIFO", "a character device", "a block device", "a socket",
 * "a symbolic link", "a regular file" for a st_mode. */
const char *zt_file_kind(unsigned mode);
/* Record a failed system call on path: "PATH: WHAT: strerror(err)" with
 * ZT_ERR_MISSING for ENOENT/ENOTDIR, else ZT_ERR_IO. Returns the code. */
int zt_err_errno(zt_err *e, int err, const char *path, const char *what);

/* Open a regular file for reading (O_CLOEXEC, blocking reads). *size may
 * be NULL. */
int zt_file_open(const char *path, int *fd, uint64_t *size, zt_err *e);
/* Read a regular file whole into a malloc'd, NUL-terminated buffer. A file
 * over cap bytes is refused: "PATH: 2.00 GiB is over the 64.00 MiB cap for
 * WHAT" (ZT_ERR_FORMAT). */
int zt_file_read_all(const char *path, uint64_t cap, const char *what, char **buf, size_t *len, zt_err *e);
/* The same for a stream (stdin, a pipe) named `name`. */
int zt_fd_read_all(int fd, const char *name, uint64_t cap, const char *what, char **buf, size_t *len, zt_err *e);

/* Check an output path before any work (rules above). ZT_ERR_IO with one
 * line naming the path and the cause. */
int zt_output_check(const char *path, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
