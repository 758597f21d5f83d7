/* common/zt_common.c — error context, logging, size parsing. */
#include "common/zt_common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int zt_err_set(zt_err *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
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
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' is not a size (examples: 8G, 512M, 0)", what, s);
    double mul = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'B': mul = 1; break;
        case 'K': mul = 1024.0; break;
        case 'M': mul = 1024.0 * 1024; break;
        case 'G': mul = 1024.0 * 1024 * 1024; break;
        case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
        default:
            return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' has an unknown unit (use K, M, G or T)", what, s);
        }
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'B' || *end == 'b') end++;
        if (*end) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' has trailing characters", what, s);
    }
    double b = v * mul;
    if (b > 9.0e18) return zt_err_set(e, ZT_ERR_ARG, "%s: '%s' is too large", what, s);
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

void zt_die_assert(const char *file, int line, const char *what) {
    fprintf(stderr, "zturbo: internal error at %s:%d: assertion failed: %s\n", file, line, what);
    abort();
}
