/* common/zt_common.c — error context, logging, size parsing. */
#include "common/zt_common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void zt_one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int zt_err_set(zt_err *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        zt_one_line(e->msg); /* names quoted from input may hold newlines */
        e->code = code;
    }
    return code;
}

int zt_err_prefix(zt_err *e, const char *fmt, ...) {
    if (!e) return ZT_ERR_INTERNAL;
    char ctx[ZT_ERR_MSG], old[ZT_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(ctx);
    if (n > sizeof e->msg - 3) n = sizeof e->msg - 3;
    memcpy(e->msg, ctx, n);
    e->msg[n] = ':';
    e->msg[n + 1] = ' ';
    size_t m = strlen(old);
    if (m > sizeof e->msg - n - 3) m = sizeof e->msg - n - 3;
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = 0;
    zt_one_line(e->msg);
    return e->code;
}

void zt_err_clear(zt_err *e) {
    if (e) {
        e->code = ZT_OK;
        e->msg[0] = 0;
    }
}

const char *zt_code_name(int code) {
    switch (code) {
    case ZT_OK: return "ok";
    case ZT_ERR_ARG: return "bad argument";
    case ZT_ERR_IO: return "i/o error";
    case ZT_ERR_FORMAT: return "bad format";
    case ZT_ERR_CHECKSUM: return "checksum mismatch";
    case ZT_ERR_NOMEM: return "out of memory";
    case ZT_ERR_MISSING: return "missing";
    case ZT_ERR_UNSUPPORTED: return "unsupported";
    case ZT_ERR_INTERRUPTED: return "interrupted";
    case ZT_ERR_RANGE: return "out of range";
    case ZT_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}

double zt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int zt_parse_size(const char *s, const char *what, uint64_t *out, zt_err *e) {
    if (!s || !*s) return zt_err_set(e, ZT_ERR_ARG, "%s: empty size", what);
    /* the number: digits with an optional fraction, nothing else (no sign, blanks, exponent) */
    const char *p = s;
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' is not a size (examples: 8G, 512M, 0)", what, s);
    char num[64];
    if ((size_t)(p - s) >= sizeof num) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' is too large", what, s);
    memcpy(num, s, (size_t)(p - s));
    num[p - s] = 0;
    const double v = strtod(num, NULL);
    double mul = 1;
    if (!*p) {
        /* a bare number is a unit forgotten more often than a byte count meant */
        if (v != 0)
            return zt_err_set(e, ZT_ERR_ARG,
                              "%s: '%s' has no unit: %sM? (K, M, G, T are 1024-based, 8G = 8 GiB; bytes: %sB)", what, s,
                              num, num);
    } else {
        switch (toupper((unsigned char)*p)) {
        case 'B': mul = 1; break;
        case 'K': mul = 1024.0; break;
        case 'M': mul = 1024.0 * 1024; break;
        case 'G': mul = 1024.0 * 1024 * 1024; break;
        case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
        default: return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' has an unknown unit (use K, M, G or T)", what, s);
        }
        if (toupper((unsigned char)*p) != 'B') {
            p++;
            if (*p == 'i' || *p == 'I') p++;
            if (*p == 'B' || *p == 'b') p++;
        } else p++;
        if (*p) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' has trailing characters after the unit", what, s);
    }
    const double b = v * mul;
    if (!isfinite(b) || b > 9.0e18) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' is too large", what, s);
    if (mul == 1 && b != floor(b)) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' is not a whole number of bytes", what, s);
    *out = (uint64_t)(b + 0.5);
    return ZT_OK;
}

const char *zt_fmt_bytes(uint64_t bytes, char *buf, size_t n) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int i = 0;
    while (v >= 1024.0 && i < 4) {
        v /= 1024.0;
        i++;
    }
    if (i == 0) snprintf(buf, n, "%llu B", (unsigned long long)bytes);
    else snprintf(buf, n, "%.2f %s", v, u[i]);
    return buf;
}

void *zt_grow(void *p, int *cap, int need, size_t elt) {
    if (need <= *cap) return p;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(p, (size_t)nc * elt);
    if (q) *cap = nc;
    return q;
}

int zt_buf_reserve(zt_buf *b, size_t more) {
    if (b->oom) return -1;
    if (b->n + more + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1) cap *= 2;
    char *t = realloc(b->data, cap);
    if (!t) {
        b->oom = 1;
        return -1;
    }
    b->data = t;
    b->cap = cap;
    return 0;
}

void zt_buf_add(zt_buf *b, const void *p, size_t n) {
    if (zt_buf_reserve(b, n)) return;
    memcpy(b->data + b->n, p, n);
    b->n += n;
    b->data[b->n] = 0;
}

void zt_buf_str(zt_buf *b, const char *s) { zt_buf_add(b, s, strlen(s)); }

void zt_buf_printf(zt_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || zt_buf_reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void zt_die_assert(const char *file, int line, const char *what) {
    fprintf(stderr, "zturbo: internal error at %s:%d: assertion failed: %s\n", file, line, what);
    abort();
}
