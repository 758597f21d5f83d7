/* storage/reader.h — asynchronous reads of a file into caller-supplied
 * buffers, and of whole store units (read + chunk checksums + zstd decode
 * into the destination image).
 *
 * Engines:
 *   io_uring  one I/O thread owns a ring with up to `queue_depth` reads in
 *             flight (a request larger than `segment_bytes` is split so that
 *             one large unit also fills the queue);
 *   pread     `queue_depth` threads calling pread(2): used when
 *             io_uring_queue_init fails (ENOSYS on old kernels, EPERM under
 *             seccomp) or when asked for (engine = ZT_IO_PREAD).
 * Reads use O_DIRECT when the offset, size and buffer are 4 KiB aligned and
 * the file system supports it; otherwise (EINVAL: tmpfs, some FUSE) the
 * reader falls back to buffered reads. Each fallback leaves a one-line
 * notice (zt_reader_notice) for the caller to print; nothing is printed.
 * Short reads are resubmitted for the remainder; -EAGAIN / -EINTR are
 * retried; end of file before the requested size is an error.
 *
 * Unit requests: the extent is read into the caller's staging buffer (or,
 * when the extent is a plain copy of the image and dst is aligned, straight
 * into dst), then `decode_threads` workers check each chunk's checksum and
 * decode it into dst (storage/store.h). A coded unit (codec 3) is read
 * straight into dst and only checked: dst receives its coded bytes, which
 * the caller validates (zt_wcode_validate) and decodes (on the GPU).
 *
 * Completions are reported per request through zt_reader_wait, in any
 * order, with the caller's tag, a status code and a one-line message.
 *
 * Environment, test builds only (compiled with -DZT_TEST_HOOKS: the tests
 * and bin/test-zturbo): ZT_IO_FAULT = fault injection, see zt_reader_opts.
 *
 * Thread safety: submit / wait / poll from one thread (the owner). */
#ifndef ZT_STORAGE_READER_H
#define ZT_STORAGE_READER_H

#include <stdint.h>

#include "common/zt_common.h"
#include "storage/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ZT_IO_AUTO = 0, ZT_IO_URING = 1, ZT_IO_PREAD = 2 } zt_io_engine;

typedef struct {
    zt_io_engine engine;    /* AUTO: io_uring, else pread threads */
    int queue_depth;        /* reads in flight; 0: 8 */
    uint32_t segment_bytes; /* largest single read; 0: 8 MiB (multiple of 4 KiB) */
    int decode_threads;     /* checksum/zstd workers for unit requests; 0: CPUs (max 16) */
    int max_requests;       /* requests submitted and not yet returned by wait; 0: 64 */
    int buffered;           /* 1: never O_DIRECT */
    int ignore_env;         /* 1: do not read ZT_IO_FAULT */
    /* Fault injection (tests): comma-separated KIND@OFFSET[xCOUNT], where
     * KIND is short, eio, eagain, eintr, einval or eof. The first COUNT
     * (default 1) reads whose range contains file offset OFFSET get: short =
     * a count that stops just before OFFSET (at least 1 byte), eio = -EIO,
     * eagain / eintr = that error, einval = EINVAL on an O_DIRECT read (the
     * reader then goes buffered), eof = 0 bytes (the file ended early, as one
     * truncated while it is read). Words: nouring (io_uring_queue_init fails with
     * ENOSYS), nodirect (open with O_DIRECT fails with EINVAL).
     * NULL: $ZT_IO_FAULT. Test builds only: elsewhere a non-empty value
     * fails the open with ZT_ERR_UNSUPPORTED. */
    const char *faults;
} zt_reader_opts;

typedef struct {
    uint64_t tag;           /* the caller's tag */
    int status;             /* ZT_OK or a zt_code */
    zt_err err;             /* message when status != ZT_OK */
} zt_read_done;

typedef struct {
    uint64_t requests, segments, bytes;
    uint64_t short_reads;   /* resubmitted remainders */
    uint64_t retries;       /* EAGAIN / EINTR */
    uint64_t faults;        /* injected faults that fired */
    uint64_t direct_reads, buffered_reads;
} zt_reader_stats;

typedef struct zt_reader zt_reader;

/* Open `path` for reading. Fails only when the file cannot be opened, the
 * options are invalid, or io_uring was forced and is unavailable. */
int zt_reader_open(const char *path, const zt_reader_opts *opts, zt_reader **out, zt_err *e);
/* Cancel what was not started, wait for what is in flight, free. */
void zt_reader_close(zt_reader *r);

/* Read len bytes at offset into buf. ZT_ERR_RANGE when max_requests are
 * outstanding (wait first). */
int zt_reader_submit(zt_reader *r, uint64_t offset, uint64_t len, void *buf, uint64_t tag, zt_err *e);
/* Read unit `unit` of store `s` (which must be the reader's file) into dst
 * (>= image_bytes; a coded unit: >= read_bytes, its coded bytes). staging: >= extent read_bytes (zt_store_max_read_bytes),
 * 4 KiB aligned for O_DIRECT; may be NULL when the extent is a plain copy
 * and dst is at least read_bytes. flags: ZT_STORE_NO_VERIFY skips checksums. */
int zt_reader_submit_unit(zt_reader *r, const zt_store *s, int unit, void *dst, uint64_t dst_bytes, void *staging,
                          uint64_t staging_bytes, unsigned flags, uint64_t tag, zt_err *e);

/* Collect finished requests: blocks until at least min(min_done, requests
 * outstanding) have finished, returns how many were stored (<= max).
 * min_done = 0 polls. */
int zt_reader_wait(zt_reader *r, zt_read_done *done, int max, int min_done);
/* Requests submitted and not yet returned by wait. */
int zt_reader_outstanding(const zt_reader *r);

/* "io_uring" or "pread", with " + O_DIRECT" or " (buffered)". */
const char *zt_reader_engine(const zt_reader *r);
/* "" or the fallback notices, "; "-separated, one line. */
const char *zt_reader_notice(const zt_reader *r);
void zt_reader_get_stats(const zt_reader *r, zt_reader_stats *st);

#ifdef __cplusplus
}
#endif
#endif
