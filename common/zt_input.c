/* common/zt_input.c — numbers, UTF-8, files read and written (zt_input.h). */
#include "common/zt_input.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Digits only, accumulated with overflow detection: ZT_ERR_ARG on any other
 * character (or none), ZT_ERR_RANGE past UINT64_MAX. */
static int parse_digits(const char *s, uint64_t *out) {
    if (!s || !is_digit(*s)) return ZT_ERR_ARG;
    uint64_t v = 0;
    int over = 0;
    for (; *s; s++) {
        if (!is_digit(*s)) return ZT_ERR_ARG;
        const unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) over = 1;
        else v = v * 10 + d;
    }
    if (over) return ZT_ERR_RANGE;
    *out = v;
    return ZT_OK;
}

int zt_parse_u64(const char *s, uint64_t *out) { return parse_digits(s, out); }

int zt_parse_i64(const char *s, int64_t *out) {
    if (!s) return ZT_ERR_ARG;
    const int neg = *s == '-';
    uint64_t v;
    int rc = parse_digits(s + neg, &v);
    if (rc) return rc;
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return ZT_ERR_RANGE;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return ZT_OK;
}

int zt_parse_real(const char *s, double *out) {
    if (!s) return ZT_ERR_ARG;
    const char *p = s;
    if (*p == '-') p++;
    int mant = 0;
    while (is_digit(*p)) p++, mant++;
    if (*p == '.') {
        p++;
        while (is_digit(*p)) p++, mant++;
    }
    if (!mant) return ZT_ERR_ARG;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!is_digit(*p)) return ZT_ERR_ARG;
        while (is_digit(*p)) p++;
    }
    if (*p) return ZT_ERR_ARG;
    errno = 0;
    const double v = strtod(s, NULL);
    if (errno == ERANGE || !isfinite(v)) return ZT_ERR_RANGE;
    *out = v;
    return ZT_OK;
}

int zt_utf8_valid(const char *str, size_t n, size_t *bad_offset) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        const unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c < 0x80) len = 1;
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;      /* overlong */
            else if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;      /* overlong */
            else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else len = 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = k == 1 ? s[i + 1] >= lo && s[i + 1] <= hi : (s[i + k] & 0xC0) == 0x80;
        if (!ok) {
            if (bad_offset) *bad_offset = i;
            return 0;
        }
        i += len;
    }
    return 1;
}

const char *zt_file_kind(unsigned mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a file";
}

int zt_err_errno(zt_err *e, int err, const char *path, const char *what) {
    return zt_err_set(e, err == ENOENT || err == ENOTDIR ? ZT_ERR_MISSING : ZT_ERR_IO, "%s: %s: %s", path, what,
                      strerror(err));
}

int zt_file_open(const char *path, int *fd_out, uint64_t *size, zt_err *e) {
    *fd_out = -1;
    struct stat st;
    if (!path || !*path) return zt_err_set(e, ZT_ERR_ARG, "no file name given");
    /* stat before open: opening a device can have effects of its own */
    if (stat(path, &st)) return zt_err_errno(e, errno, path, "cannot open");
    if (!S_ISREG(st.st_mode)) return zt_err_set(e, ZT_ERR_IO, "%s: not a regular file (%s)", path, zt_file_kind(st.st_mode));
    /* O_NONBLOCK: if it was swapped for a FIFO since, the open cannot hang */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return zt_err_errno(e, errno, path, "cannot open");
    if (fstat(fd, &st)) {
        const int err = errno;
        close(fd);
        return zt_err_errno(e, err, path, "cannot stat");
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return zt_err_set(e, ZT_ERR_IO, "%s: not a regular file (%s)", path, zt_file_kind(st.st_mode));
    }
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
        const int err = errno;
        close(fd);
        return zt_err_errno(e, err, path, "cannot open");
    }
    *fd_out = fd;
    if (size) *size = (uint64_t)st.st_size;
    return ZT_OK;
}

/* have == 0: a stream, whose size is not known */
static int over_cap(zt_err *e, const char *name, uint64_t have, uint64_t cap, const char *what) {
    char b1[32], b2[32];
    if (!have) return zt_err_set(e, ZT_ERR_FORMAT, "%s: over the %s cap for %s", name, zt_fmt_bytes(cap, b2, sizeof b2), what);
    return zt_err_set(e, ZT_ERR_FORMAT, "%s: %s, over the %s cap for %s", name, zt_fmt_bytes(have, b1, sizeof b1),
                      zt_fmt_bytes(cap, b2, sizeof b2), what);
}

/* Read fd to its end, at most cap bytes (one more byte read tells "over"). */
static int read_capped(int fd, const char *name, uint64_t cap, const char *what, char **buf, size_t *len, zt_err *e) {
    size_t n = 0, alloc = 0;
    char *b = NULL;
    for (;;) {
        if (n + 1 >= alloc) {
            const size_t limit = cap < SIZE_MAX - 2 ? (size_t)cap + 2 : SIZE_MAX;
            size_t want = alloc ? (alloc < SIZE_MAX / 2 ? alloc * 2 : SIZE_MAX) : 1 << 16;
            if (want > limit) want = limit;
            char *nb = want > alloc ? realloc(b, want) : NULL;
            if (!nb) {
                free(b);
                return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of host memory reading it", name);
            }
            b = nb;
            alloc = want;
        }
        const ssize_t k = read(fd, b + n, alloc - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            const int err = errno;
            free(b);
            return zt_err_errno(e, err, name, "read failed");
        }
        if (k == 0) break;
        n += (size_t)k;
        if (n > cap) {
            free(b);
            return over_cap(e, name, 0, cap, what);
        }
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return ZT_OK;
}

int zt_file_read_all(const char *path, uint64_t cap, const char *what, char **buf, size_t *len, zt_err *e) {
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int rc = zt_file_open(path, &fd, &size, e);
    if (rc) return rc;
    if (size > cap) rc = over_cap(e, path, size, cap, what);
    else rc = read_capped(fd, path, cap, what, buf, len, e); /* the file may grow meanwhile: capped again */
    close(fd);
    return rc;
}

int zt_fd_read_all(int fd, const char *name, uint64_t cap, const char *what, char **buf, size_t *len, zt_err *e) {
    *buf = NULL;
    *len = 0;
    return read_capped(fd, name, cap, what, buf, len, e);
}

int zt_output_check(const char *path, zt_err *e) {
    if (!path || !*path) return zt_err_set(e, ZT_ERR_ARG, "no output file name given");
    const size_t n = strlen(path);
    if (path[n - 1] == '/') return zt_err_set(e, ZT_ERR_IO, "%s: names a folder: give a file name", path);
    struct stat st;
    if (!lstat(path, &st)) {
        if (S_ISLNK(st.st_mode))
            return zt_err_set(e, ZT_ERR_IO,
                              "%s: is a symbolic link: outputs are replaced by a rename, which would replace the "
                              "link, so links are refused (give the path it points to)",
                              path);
        if (S_ISDIR(st.st_mode)) return zt_err_set(e, ZT_ERR_IO, "%s: is a folder: give a file name in it", path);
        if (!S_ISREG(st.st_mode))
            return zt_err_set(e, ZT_ERR_IO, "%s: is %s, not a regular file: outputs are regular files only", path,
                              zt_file_kind(st.st_mode));
    } else if (errno != ENOENT) {
        return zt_err_set(e, ZT_ERR_IO, "%s: cannot write it: %s", path, strerror(errno));
    }
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return zt_err_set(e, ZT_ERR_ARG, "%.64s...: path too long", path);
    if (stat(dir, &st)) return zt_err_set(e, ZT_ERR_IO, "%s: cannot write into the folder %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return zt_err_set(e, ZT_ERR_IO, "%s: %s is %s, not a folder", path, dir, zt_file_kind(st.st_mode));
    if (access(dir, W_OK | X_OK))
        return zt_err_set(e, ZT_ERR_IO, "%s: cannot write into the folder %s: %s", path, dir, strerror(errno));
    return ZT_OK;
}
