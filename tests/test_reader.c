/* tests/test_reader.c — the asynchronous reader on a plain file, with both
 * engines (io_uring, pread threads): many requests in flight split into
 * small segments, odd offsets/sizes/buffers (buffered path), injected short
 * reads, EAGAIN, EINTR, EIO, EINVAL on O_DIRECT, end of file, the request
 * limit, the io_uring-unavailable and O_DIRECT-unsupported fallbacks with
 * their notices, the engine option, ZT_IO_FAULT parsing, and closing with reads in
 * flight. Content is checked byte for byte against the file's pattern. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage/reader.h"
#include "tests/test_store_util.h"

#define FILE_BYTES (8u << 20)

static uint8_t pattern(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13 ^ (i >> 12)); }

static int check_range(const uint8_t *buf, uint64_t off, uint64_t len) {
    for (uint64_t i = 0; i < len; i++)
        if (buf[i] != pattern(off + i)) return 0;
    return 1;
}

static char g_path[1200];

static zt_reader *open_reader(zt_io_engine engine, const char *faults, int qd, zt_err *e) {
    zt_reader_opts o = {.engine = engine, .queue_depth = qd, .segment_bytes = 64 * 1024, .decode_threads = 1,
                        .ignore_env = 1, .faults = faults};
    zt_reader *r = NULL;
    int rc = zt_reader_open(g_path, &o, &r, e);
    ZT_CHECK(rc == ZT_OK, "open (engine %d, faults %s): %s", engine, faults ? faults : "-", e->msg);
    return rc ? NULL : r;
}

/* Read the whole file as n_req aligned requests, all in flight; return the
 * number of requests that failed (their messages in last_err). */
static int read_all(zt_reader *r, int n_req, uint8_t *buf, zt_err *last_err) {
    zt_err e = {0};
    uint64_t per = FILE_BYTES / (uint64_t)n_req;
    for (int i = 0; i < n_req; i++) {
        int rc = zt_reader_submit(r, per * (uint64_t)i, per, buf + per * (uint64_t)i, (uint64_t)i, &e);
        ZT_CHECK(rc == ZT_OK, "submit %d: %s", i, e.msg);
    }
    int failed = 0, got = 0;
    while (got < n_req) {
        zt_read_done d[4];
        int n = zt_reader_wait(r, d, 4, 1);
        ZT_CHECK(n >= 1, "wait returns something");
        if (n < 1) break;
        for (int i = 0; i < n; i++) {
            if (d[i].status) {
                failed++;
                *last_err = d[i].err;
            } else if (!check_range(buf + per * d[i].tag, per * d[i].tag, per)) {
                failed++;
                zt_err_set(last_err, ZT_ERR_INTERNAL, "request %llu: wrong bytes", (unsigned long long)d[i].tag);
            }
        }
        got += n;
    }
    return failed;
}

static void engine_tests(zt_io_engine engine) {
    zt_err e = {0};
    const char *ename = engine == ZT_IO_URING ? "io_uring" : "pread";
    uint8_t *buf = aligned_alloc(4096, FILE_BYTES + 8192);

    /* 1. Plain: 8 requests of 1 MiB in 64 KiB segments, queue depth 4. */
    zt_reader *r = open_reader(engine, NULL, 4, &e);
    if (!r) return;
    ZT_CHECK(!strncmp(zt_reader_engine(r), ename, strlen(ename)), "engine %s", zt_reader_engine(r));
    memset(buf, 0, FILE_BYTES);
    int failed = read_all(r, 8, buf, &e);
    ZT_CHECK(failed == 0, "%s: plain reads: %s", ename, e.msg);
    zt_reader_stats st;
    zt_reader_get_stats(r, &st);
    ZT_CHECK(st.segments == FILE_BYTES / (64 * 1024) && st.bytes == FILE_BYTES, "%s: %llu segments", ename,
             (unsigned long long)st.segments);
    ZT_CHECK(st.direct_reads > 0 || strstr(zt_reader_notice(r), "O_DIRECT"), "%s: O_DIRECT used or a notice says why",
             ename);

    /* 2. Odd offsets, sizes and buffers: buffered path, exact bytes. */
    uint64_t offs[] = {1, 4095, 4097, 12345, 65535, FILE_BYTES - 3};
    uint64_t lens[] = {1, 7, 4095, 65537, 1000003, 3};
    uint8_t *odd = malloc(1000003 + 1);
    int bad = 0;
    for (size_t i = 0; i < ZT_ARRAY_LEN(offs); i++) {
        memset(odd, 0, lens[i] + 1);
        int rc = zt_reader_submit(r, offs[i], lens[i], odd + 1, 1000 + i, &e);
        zt_read_done d;
        int n = zt_reader_wait(r, &d, 1, 1);
        if (rc || n != 1 || d.status || d.tag != 1000 + i || !check_range(odd + 1, offs[i], lens[i]) || odd[0]) bad++;
    }
    ZT_CHECK(bad == 0, "%s: odd-sized reads exact (%d bad)", ename, bad);
    zt_reader_get_stats(r, &st);
    ZT_CHECK(st.buffered_reads > 0, "%s: unaligned requests went buffered", ename);

    /* 3. End of file: a read past the end is an error naming the offset. */
    int rc = zt_reader_submit(r, FILE_BYTES - 4096, 8192, buf, 77, &e);
    zt_read_done d;
    int n = zt_reader_wait(r, &d, 1, 1);
    ZT_CHECK(rc == ZT_OK && n == 1 && d.tag == 77 && d.status == ZT_ERR_IO && strstr(d.err.msg, "end of file") &&
                 strstr(d.err.msg, g_path),
             "%s: EOF: %s", ename, d.err.msg);
    /* A zero-length request completes at once; wait never hangs when asked
     * for more than is outstanding. */
    rc = zt_reader_submit(r, 0, 0, buf, 78, &e);
    n = zt_reader_wait(r, &d, 1, 5);
    ZT_CHECK(rc == ZT_OK && n == 1 && d.status == ZT_OK && d.tag == 78, "%s: empty request", ename);
    ZT_CHECK(zt_reader_wait(r, &d, 1, 3) == 0 && zt_reader_outstanding(r) == 0, "%s: nothing outstanding", ename);
    zt_reader_close(r);

    /* 4. Injected short reads, EAGAIN, EINTR: data still exact. */
    r = open_reader(engine, "short@1048576,short@2101248x2,eagain@3145728,eintr@4194304x2,short@4194305", 4, &e);
    if (!r) return;
    memset(buf, 0, FILE_BYTES);
    failed = read_all(r, 8, buf, &e);
    ZT_CHECK(failed == 0, "%s: reads with faults: %s", ename, e.msg);
    zt_reader_get_stats(r, &st);
    ZT_CHECK(st.faults == 7 && st.short_reads == 4 && st.retries == 3, "%s: faults %llu, short %llu, retries %llu",
             ename, (unsigned long long)st.faults, (unsigned long long)st.short_reads,
             (unsigned long long)st.retries);
    zt_reader_close(r);

    /* 5. EIO fails exactly the request that covers it, naming the offset. */
    r = open_reader(engine, "eio@5242880", 4, &e);
    if (!r) return;
    zt_err last = {0};
    failed = read_all(r, 8, buf, &last);
    ZT_CHECK(failed == 1 && last.code == ZT_ERR_IO && strstr(last.msg, g_path) && strstr(last.msg, "5242880") &&
                 strstr(last.msg, "Input/output error"),
             "%s: EIO: %d failed, '%s'", ename, failed, last.msg);
    zt_reader_close(r);

    /* 6. EINVAL on an O_DIRECT read: switch to buffered, say so. */
    r = open_reader(engine, "einval@0", 2, &e);
    if (!r) return;
    int was_direct = strstr(zt_reader_engine(r), "O_DIRECT") != NULL;
    failed = read_all(r, 4, buf, &e);
    ZT_CHECK(failed == 0, "%s: einval: %s", ename, e.msg);
    if (was_direct)
        ZT_CHECK(strstr(zt_reader_notice(r), "O_DIRECT") && strstr(zt_reader_engine(r), "buffered"),
                 "%s: notice '%s', engine '%s'", ename, zt_reader_notice(r), zt_reader_engine(r));
    zt_reader_close(r);

    /* 7. O_DIRECT unsupported at open. */
    r = open_reader(engine, "nodirect", 2, &e);
    if (!r) return;
    ZT_CHECK(strstr(zt_reader_notice(r), "O_DIRECT not supported") && strstr(zt_reader_notice(r), g_path) &&
                 strstr(zt_reader_engine(r), "buffered"),
             "%s: nodirect notice '%s'", ename, zt_reader_notice(r));
    failed = read_all(r, 2, buf, &e);
    ZT_CHECK(failed == 0, "%s: buffered reads: %s", ename, e.msg);
    zt_reader_close(r);

    /* 8. Request limit, then close with reads in flight. */
    zt_reader_opts o = {.engine = engine, .queue_depth = 1, .segment_bytes = 4096, .max_requests = 2,
                        .ignore_env = 1};
    rc = zt_reader_open(g_path, &o, &r, &e);
    ZT_CHECK(rc == ZT_OK, "open: %s", e.msg);
    if (!rc) {
        ZT_CHECK(zt_reader_submit(r, 0, FILE_BYTES / 2, buf, 1, &e) == ZT_OK, "submit 1");
        ZT_CHECK(zt_reader_submit(r, FILE_BYTES / 2, FILE_BYTES / 2, buf + FILE_BYTES / 2, 2, &e) == ZT_OK,
                 "submit 2");
        rc = zt_reader_submit(r, 0, 4096, buf, 3, &e);
        ZT_CHECK(rc == ZT_ERR_RANGE && strstr(e.msg, "outstanding"), "third request refused: %s", e.msg);
        zt_reader_close(r); /* 2048 segments each: most not started yet */
    }
    free(odd);
    free(buf);
}

int main(void) {
    zt_err e = {0};
    const char *dir = store_test_dir("test_reader");
    snprintf(g_path, sizeof g_path, "%s/data.bin", dir);
    uint8_t *data = malloc(FILE_BYTES);
    for (uint64_t i = 0; i < FILE_BYTES; i++) data[i] = pattern(i);
    if (write_whole(g_path, data, FILE_BYTES)) {
        fprintf(stderr, "cannot write %s\n", g_path);
        return 1;
    }
    free(data);

    engine_tests(ZT_IO_URING);
    engine_tests(ZT_IO_PREAD);

    /* io_uring unavailable: AUTO falls back with a notice, URING fails. */
    zt_reader *r = open_reader(ZT_IO_AUTO, "nouring", 3, &e);
    if (r) {
        ZT_CHECK(!strncmp(zt_reader_engine(r), "pread", 5), "fallback engine %s", zt_reader_engine(r));
        ZT_CHECK(strstr(zt_reader_notice(r), "io_uring unavailable") && strstr(zt_reader_notice(r), "3 pread threads"),
                 "notice '%s'", zt_reader_notice(r));
        uint8_t *buf = aligned_alloc(4096, FILE_BYTES);
        ZT_CHECK(read_all(r, 4, buf, &e) == 0, "fallback reads: %s", e.msg);
        free(buf);
        zt_reader_close(r);
    }
    zt_reader_opts o = {.engine = ZT_IO_URING, .ignore_env = 1, .faults = "nouring"};
    int rc = zt_reader_open(g_path, &o, &r, &e);
    ZT_CHECK(rc == ZT_ERR_UNSUPPORTED && strstr(e.msg, "io_uring unavailable"), "forced io_uring: %s", e.msg);

    /* The engine is an option (the environment does not choose it). */
    zt_reader_opts env = {0};
    char auto_engine[64] = "";
    rc = zt_reader_open(g_path, &env, &r, &e);
    if (!rc) snprintf(auto_engine, sizeof auto_engine, "%s", zt_reader_engine(r)), zt_reader_close(r);
    setenv("ZT_IO", !strncmp(auto_engine, "io_uring", 8) ? "pread" : "uring", 1);
    rc = zt_reader_open(g_path, &env, &r, &e);
    ZT_CHECK(rc == ZT_OK && !strcmp(zt_reader_engine(r), auto_engine), "ZT_IO chose the engine: %s (auto: %s)",
             rc ? e.msg : zt_reader_engine(r), auto_engine);
    if (!rc) zt_reader_close(r);
    unsetenv("ZT_IO");
    o = (zt_reader_opts){.engine = ZT_IO_PREAD, .buffered = 1, .ignore_env = 1};
    rc = zt_reader_open(g_path, &o, &r, &e);
    ZT_CHECK(rc == ZT_OK && !strcmp(zt_reader_engine(r), "pread (buffered)"), "engine pread, buffered: %s",
             rc ? e.msg : zt_reader_engine(r));
    if (!rc) zt_reader_close(r);
    o = (zt_reader_opts){.engine = (zt_io_engine)7, .ignore_env = 1};
    rc = zt_reader_open(g_path, &o, &r, &e);
    ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "engine 7"), "bad engine: %s", e.msg);
    setenv("ZT_IO_FAULT", "boom@12", 1);
    rc = zt_reader_open(g_path, &env, &r, &e);
    ZT_CHECK(rc == ZT_ERR_ARG && strstr(e.msg, "boom"), "bad ZT_IO_FAULT: %s", e.msg);
    setenv("ZT_IO_FAULT", "short@x", 1);
    rc = zt_reader_open(g_path, &env, &r, &e);
    ZT_CHECK(rc == ZT_ERR_ARG, "bad fault offset: %s", e.msg);
    unsetenv("ZT_IO_FAULT");
    rc = zt_reader_open("/nonexistent/file", &env, &r, &e);
    ZT_CHECK(rc == ZT_ERR_MISSING && strstr(e.msg, "/nonexistent/file"), "missing file: %s", e.msg);
    o = (zt_reader_opts){.segment_bytes = 1000, .ignore_env = 1};
    rc = zt_reader_open(g_path, &o, &r, &e);
    ZT_CHECK(rc == ZT_ERR_ARG, "segment size not a multiple of 4096: %s", e.msg);
    return zt_test_finish("test_reader");
}
