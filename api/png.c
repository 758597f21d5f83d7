/* api/png.c — PNG writer with text chunks (libpng), A1111 infotext. */
#include "api/png.h"
#include "api/png_err.h"

#include "common/zt_input.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- infotext ------------------------------------------------------------------ */


/* A1111 quote(): as-is unless it holds ',', ':' or '\n'; then
 * json.dumps(text, ensure_ascii=False). */
static void sb_quote(zt_buf *b, const char *v) {
    if (!strpbrk(v, ",:\n")) {
        zt_buf_str(b, v);
        return;
    }
    zt_buf_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': zt_buf_str(b, "\\\""); break;
        case '\\': zt_buf_str(b, "\\\\"); break;
        case '\n': zt_buf_str(b, "\\n"); break;
        case '\r': zt_buf_str(b, "\\r"); break;
        case '\t': zt_buf_str(b, "\\t"); break;
        case '\b': zt_buf_str(b, "\\b"); break;
        case '\f': zt_buf_str(b, "\\f"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                zt_buf_str(b, esc);
            } else {
                zt_buf_add(b, (const char *)p, 1);
            }
        }
    }
    zt_buf_str(b, "\"");
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *zt_png_infotext(const char *prompt, const char *negative, const char *const *keys, const char *const *values,
                      int n) {
    zt_buf b = {0};
    zt_buf_str(&b, prompt ? prompt : "");
    if (negative && *negative) {
        zt_buf_str(&b, "\nNegative prompt: ");
        zt_buf_str(&b, negative);
    }
    zt_buf_str(&b, "\n");
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!values[i]) continue;
        if (!first) zt_buf_str(&b, ", ");
        first = 0;
        if (!strcmp(keys[i], values[i])) {
            zt_buf_str(&b, keys[i]);
            continue;
        }
        zt_buf_str(&b, keys[i]);
        zt_buf_str(&b, ": ");
        sb_quote(&b, values[i]);
    }
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    /* Python str.strip() */
    size_t s = 0, e = b.n;
    while (s < e && is_space(b.data[s])) s++;
    while (e > s && is_space(b.data[e - 1])) e--;
    memmove(b.data, b.data + s, e - s);
    b.data[e - s] = 0;
    return b.data;
}

/* ---- writer --------------------------------------------------------------------- */

/* UTF-8 -> Latin-1 when every code point is < 256; returns NULL otherwise
 * (or on invalid UTF-8, which then goes to iTXt as bytes). */
static char *utf8_to_latin1(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *q = o;
    if (!o) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p < 0x80) {
            *q++ = (char)*p++;
        } else if ((p[0] == 0xC2 || p[0] == 0xC3) && (p[1] & 0xC0) == 0x80) {
            *q++ = (char)(((p[0] & 0x03) << 6) | (p[1] & 0x3F));
            p += 2;
        } else {
            free(o);
            return NULL;
        }
    }
    *q = 0;
    return o;
}

/* libpng's write callback: append to a growing buffer. */
static void on_png_write(png_structp png, png_bytep data, png_size_t len) { zt_buf_add(png_get_io_ptr(png), data, len); }

static void on_png_flush(png_structp png) { (void)png; }

int zt_png_encode(const uint8_t *rgb, int w, int h, const zt_png_text *texts, int n_texts, uint8_t **out,
                  size_t *out_len, zt_err *e) {
    *out = NULL;
    *out_len = 0;
    if (w < 1 || h < 1) return zt_err_set(e, ZT_ERR_ARG, "PNG: bad image size %dx%d", w, h);
    int rc = 0;
    for (int i = 0; i < n_texts; i++) {
        size_t kl = strlen(texts[i].key);
        if (kl < 1 || kl > 79) return zt_err_set(e, ZT_ERR_ARG, "PNG text key '%s' must have 1..79 characters", texts[i].key);
    }
    zt_png_errctx ec;
    ec.msg[0] = 0;
    zt_buf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ec, zt_png_on_error, zt_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_text *pt = calloc((size_t)n_texts + 1, sizeof *pt);
    char **conv = calloc((size_t)n_texts + 1, sizeof *conv);
    if (!png || !info || !pt || !conv) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "PNG: out of memory");
        goto done;
    }
    if (setjmp(ec.jb)) {
        rc = zt_err_set(e, ZT_ERR_INTERNAL, "libpng: %s", ec.msg);
        goto done;
    }
    png_set_write_fn(png, &m, on_png_write, on_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int i = 0; i < n_texts; i++) {
        pt[i].key = (png_charp)texts[i].key;
        conv[i] = utf8_to_latin1(texts[i].text);
        if (conv[i]) {
            pt[i].compression = PNG_TEXT_COMPRESSION_NONE;
            pt[i].text = conv[i];
        } else {
            pt[i].compression = PNG_ITXT_COMPRESSION_NONE;
            pt[i].text = (png_charp)texts[i].text;
            pt[i].lang = (png_charp) "";
            pt[i].lang_key = (png_charp) "";
        }
    }
    if (n_texts) png_set_text(png, info, pt, n_texts);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, info);
    if (m.oom) rc = zt_err_set(e, ZT_ERR_NOMEM, "PNG: out of memory");
done:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    for (int i = 0; conv && i < n_texts; i++) free(conv[i]);
    free(conv);
    free(pt);
    if (rc) {
        free(m.data);
        return rc;
    }
    *out = (uint8_t *)m.data;
    *out_len = m.n;
    return 0;
}

int zt_png_write_bytes(const char *path, const uint8_t *data, size_t len, volatile int *cancel, zt_err *e) {
    int rc0 = zt_output_check(path, e); /* no symbolic link, device or folder replaced */
    if (rc0) return rc0;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return zt_err_set(e, ZT_ERR_ARG, "%s: path too long", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return zt_err_set(e, ZT_ERR_IO, "%s: %s", tmp, strerror(errno));
    int rc = 0;
    if (fwrite(data, 1, len, fp) != len) rc = zt_err_set(e, ZT_ERR_IO, "%s: %s", tmp, strerror(errno));
    if ((fflush(fp) || fsync(fileno(fp))) && !rc) rc = zt_err_set(e, ZT_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (fclose(fp) && !rc) rc = zt_err_set(e, ZT_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!rc && cancel && *cancel) rc = zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted before writing %s", path);
    if (!rc && rename(tmp, path)) rc = zt_err_set(e, ZT_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int zt_png_write(const char *path, const uint8_t *rgb, int w, int h, const zt_png_text *texts, int n_texts,
                 volatile int *cancel, zt_err *e) {
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = zt_png_encode(rgb, w, h, texts, n_texts, &data, &len, e);
    if (rc) return zt_err_prefix(e, "%s", path);
    rc = zt_png_write_bytes(path, data, len, cancel, e);
    free(data);
    return rc;
}
