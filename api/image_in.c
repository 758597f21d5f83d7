/* api/image_in.c — PNG/JPEG decoding to RGB8, EXIF orientation, PIL's
 * Lanczos resize, and the VAE / mask tensors (api/image_in.h). */
#include "api/image_in.h"
#include "api/png_err.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>

#define JPEG_MAX_SCANS 500

void zt_image_free(zt_image *im) {
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

static int check_size(const char *name, const char *kind, uint64_t w, uint64_t h, uint64_t max_pixels, zt_err *e) {
    if (w < 1 || h < 1) return zt_err_set(e, ZT_ERR_FORMAT, "%s: %s of %llux%llu pixels", name, kind,
                                          (unsigned long long)w, (unsigned long long)h);
    if (w > ZT_IMAGE_MAX_SIDE || h > ZT_IMAGE_MAX_SIDE || w * h > max_pixels)
        return zt_err_set(e, ZT_ERR_RANGE,
                          "%s: %s of %llux%llu pixels is larger than allowed (at most %d per side and %llu pixels); "
                          "not decoded",
                          name, kind, (unsigned long long)w, (unsigned long long)h, ZT_IMAGE_MAX_SIDE,
                          (unsigned long long)max_pixels);
    return ZT_OK;
}

/* ---- EXIF orientation ------------------------------------------------------------ */

static unsigned rd16x(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32x(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Orientation tag (0x0112) of IFD0 of a TIFF-structured EXIF block (with or
 * without the "Exif\0\0" prefix); 1 when absent or malformed. */
static int exif_orientation(const uint8_t *p, size_t n) {
    if (n >= 6 && !memcmp(p, "Exif\0\0", 6)) {
        p += 6;
        n -= 6;
    }
    if (n < 8) return 1;
    int le;
    if (p[0] == 'I' && p[1] == 'I') le = 1;
    else if (p[0] == 'M' && p[1] == 'M') le = 0;
    else return 1;
    if (rd16x(p + 2, le) != 42) return 1;
    uint32_t ifd = rd32x(p + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = rd16x(p + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > n) break;
        if (rd16x(p + at, le) != 0x0112) continue;
        unsigned type = rd16x(p + at + 2, le);
        uint32_t cnt = rd32x(p + at + 4, le);
        unsigned v = type == 3 ? rd16x(p + at + 8, le) : type == 4 ? rd32x(p + at + 8, le) : 0;
        return cnt >= 1 && v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* PIL exif_transpose: out(x, y) = in(src(x, y)). */
static int apply_orientation(zt_image *im, int orient, const char *name, zt_err *e) {
    if (orient <= 1 || orient > 8) return ZT_OK;
    const int W = im->w, H = im->h, swap = orient >= 5;
    const int ow = swap ? H : W, oh = swap ? W : H;
    uint8_t *o = malloc((size_t)ow * oh * 3);
    if (!o) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the EXIF rotation", name);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (orient) {
            case 2: sx = W - 1 - x; sy = y; break;          /* mirror */
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;  /* rotate 180 */
            case 4: sx = x; sy = H - 1 - y; break;          /* flip */
            case 5: sx = y; sy = x; break;                  /* transpose */
            case 6: sx = y; sy = H - 1 - x; break;          /* rotate 90 clockwise */
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;  /* transverse */
            default: sx = W - 1 - y; sy = x; break;         /* 8: rotate 90 counter-clockwise */
            }
            memcpy(o + ((size_t)y * ow + x) * 3, im->rgb + ((size_t)sy * W + sx) * 3, 3);
        }
    free(im->rgb);
    im->rgb = o;
    im->w = ow;
    im->h = oh;
    return ZT_OK;
}

/* out takes rgb (w x h, malloc'd), turned by the EXIF orientation; freed on failure. */
static int take_image(zt_image *out, int w, int h, uint8_t *rgb, int orient, const char *name, zt_err *e) {
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    const int rc = apply_orientation(out, orient, name, e);
    if (rc) zt_image_free(out);
    return rc;
}

/* ---- PNG -------------------------------------------------------------------------- */

typedef struct {
    zt_png_errctx err;
    const uint8_t *p;
    size_t n, off;
} png_rd;

static void png_read_mem(png_structp png, png_bytep out, size_t len) {
    png_rd *r = png_get_io_ptr(png);
    if (len > r->n - r->off) png_error(png, "truncated file (premature end of data)");
    memcpy(out, r->p + r->off, len);
    r->off += len;
}

static int decode_png(const uint8_t *data, size_t n, const char *name, uint64_t max_pixels, zt_image *out,
                      zt_err *e) {
    png_rd rd;
    memset(&rd, 0, sizeof rd);
    rd.p = data;
    rd.n = n;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &rd.err, zt_png_on_error, zt_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* volatile: assigned after setjmp and used after a longjmp */
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    uint8_t *volatile rgb = NULL;
    volatile int rc = ZT_OK;
    if (!png || !info) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    if (setjmp(rd.err.jb)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: corrupt or truncated PNG (%s)", name, rd.err.msg);
        goto done;
    }
    png_set_read_fn(png, &rd, png_read_mem);
    png_set_chunk_cache_max(png, 1000);          /* ancillary-chunk bombs */
    png_set_chunk_malloc_max(png, 16u << 20);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((rc = check_size(name, "PNG", w, h, max_pixels, e))) goto done;
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* the high byte */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int ch = png_get_channels(png, info);
    const size_t rb = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rb != (size_t)w * ch) {
        rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: PNG layout not supported (%d-bit, %d channels)", name,
                        png_get_bit_depth(png, info), ch);
        goto done;
    }
    raw = malloc(rb * h);
    rows = malloc(sizeof(png_bytep) * h);
    rgb = malloc((size_t)w * h * 3);
    if (!raw || !rows || !rgb) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for a %ux%u image", name, (unsigned)w, (unsigned)h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = raw + rb * y;
    png_read_image(png, rows);
    /* gray -> replicated, alpha dropped (PIL convert("RGB")) */
    for (size_t i = 0, np = (size_t)w * h; i < np; i++) {
        const uint8_t *s = raw + i * ch;
        uint8_t *d = rgb + i * 3;
        if (ch >= 3) {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        } else {
            d[0] = d[1] = d[2] = s[0];
        }
    }
    volatile int orient = 1;
    /* chunks after the image data (an eXIf may come last); a damaged tail is
     * not an error once every pixel was read */
    if (!setjmp(rd.err.jb)) png_read_end(png, info);
#ifdef PNG_eXIf_SUPPORTED
    {
        png_uint_32 ne = 0;
        png_bytep ex = NULL;
        if (png_get_eXIf_1(png, info, &ne, &ex) && ex) orient = exif_orientation(ex, ne);
    }
#endif
    rc = take_image(out, (int)w, (int)h, rgb, orient, name, e);
    rgb = NULL;
done:
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    free(raw);
    free(rows);
    free(rgb);
    return rc;
}

/* ---- JPEG ------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
} jpeg_rd;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_rd *r = (jpeg_rd *)cinfo->err;
    char m[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, m);
    snprintf(r->msg, sizeof r->msg, "%s", m);
    longjmp(r->jb, 1);
}

/* Warnings: a premature end of the data is an error (PIL: "image file is
 * truncated"); the others (extraneous bytes...) are ignored as PIL does. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

static void jpeg_on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_rd *r = (jpeg_rd *)cinfo->err;
        snprintf(r->msg, sizeof r->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(r->jb, 1);
    }
}

static int decode_jpeg(const uint8_t *data, size_t n, const char *name, uint64_t max_pixels, zt_image *out,
                       zt_err *e) {
    struct jpeg_decompress_struct ci;
    jpeg_rd rd;
    memset(&ci, 0, sizeof ci);
    memset(&rd, 0, sizeof rd);
    ci.err = jpeg_std_error(&rd.pub);
    rd.pub.error_exit = jpeg_on_error;
    rd.pub.emit_message = jpeg_on_message;
    rd.progress.progress_monitor = jpeg_on_progress;
    uint8_t *volatile rgb = NULL;
    volatile int rc = ZT_OK, made = 0;
    if (n > 0xffffffffu) return zt_err_set(e, ZT_ERR_RANGE, "%s: JPEG file too large", name);
    if (setjmp(rd.jb)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: corrupt or truncated JPEG (%s)", name, rd.msg);
        goto done;
    }
    jpeg_create_decompress(&ci);
    made = 1;
    ci.progress = &rd.progress;
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&ci, TRUE);
    if ((rc = check_size(name, "JPEG", ci.image_width, ci.image_height, max_pixels, e))) goto done;
    switch (ci.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: break;
    case JCS_CMYK:
    case JCS_YCCK:
        rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: CMYK JPEG not supported (convert it to RGB first)", name);
        goto done;
    default:
        rc = zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: JPEG with %d colour components not supported", name,
                        ci.num_components);
        goto done;
    }
    ci.out_color_space = JCS_RGB;
    jpeg_start_decompress(&ci);
    if (ci.output_components != 3 || ci.output_width != ci.image_width || ci.output_height != ci.image_height) {
        rc = zt_err_set(e, ZT_ERR_INTERNAL, "%s: libjpeg gave %d components", name, ci.output_components);
        goto done;
    }
    const size_t w = ci.output_width, h = ci.output_height;
    rgb = malloc(w * h * 3);
    if (!rgb) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for a %zux%zu image", name, w, h);
        goto done;
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = rgb + (size_t)ci.output_scanline * w * 3;
        if (jpeg_read_scanlines(&ci, &row, 1) != 1) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: JPEG decoding stopped at row %u", name, ci.output_scanline);
            goto done;
        }
    }
    int orient = 1;
    for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && !memcmp(m->data, "Exif\0\0", 6)) {
            orient = exif_orientation(m->data, m->data_length);
            break; /* the first one, as PIL */
        }
    jpeg_finish_decompress(&ci);
    rc = take_image(out, (int)w, (int)h, rgb, orient, name, e);
    rgb = NULL;
done:
    if (made) jpeg_destroy_decompress(&ci);
    free(rgb);
    return rc;
}

/* ---- entry points ----------------------------------------------------------------- */

int zt_image_decode(const void *data, size_t n, const char *name, uint64_t max_pixels, zt_image *out, zt_err *e) {
    memset(out, 0, sizeof *out);
    const uint8_t *p = data;
    if (!max_pixels) max_pixels = ZT_IMAGE_MAX_PIXELS;
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) return decode_png(p, n, name, max_pixels, out, e);
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return decode_jpeg(p, n, name, max_pixels, out, e);
    return zt_err_set(e, ZT_ERR_FORMAT, "%s: not a PNG or JPEG file", name);
}

int zt_image_load(const char *path, zt_image *out, zt_err *e) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return zt_err_set(e, ZT_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return zt_err_set(e, ZT_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > ZT_IMAGE_MAX_FILE) {
        fclose(f);
        return zt_err_set(e, ZT_ERR_RANGE, "%s: %lld bytes, more than the %llu-byte limit for an image file", path,
                          (long long)sb.st_size, (unsigned long long)ZT_IMAGE_MAX_FILE);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n || rerr) {
        free(buf);
        return zt_err_set(e, ZT_ERR_IO, "%s: read failed", path);
    }
    int rc = zt_image_decode(buf, n, path, 0, out, e);
    free(buf);
    return rc;
}

/* ---- PIL LANCZOS resize ----------------------------------------------------------
 * Same arithmetic as Pillow's libImaging/Resample.c for 8-bit images: the
 * coefficients are computed in double, normalised to sum 1, rounded half
 * away from zero to 22 fractional bits; each pass accumulates in integers
 * from 2^21 (the rounding) and clips (floor >> 22) to 0..255. */

#define RS_BITS 22

static double rs_sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double rs_lanczos(double x) { return (-3.0 <= x && x < 3.0) ? rs_sinc(x) * rs_sinc(x / 3) : 0.0; }

typedef struct {
    int ksize;
    int *bounds;   /* [out][2]: first input index, count */
    int32_t *k;    /* [out][ksize] */
} rs_coeffs;

static int rs_coeffs_make(int in_size, int out_size, rs_coeffs *c) {
    const float in0 = 0.0f, in1 = (float)in_size;
    const double scale = (double)(in1 - in0) / out_size;
    const double fs = scale < 1.0 ? 1.0 : scale;
    const double support = 3.0 * fs;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->k = calloc((size_t)out_size * c->ksize, sizeof *c->k);
    double *w = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        return ZT_ERR_NOMEM;
    }
    for (int xx = 0; xx < out_size; xx++) {
        const double center = in0 + (xx + 0.5) * scale, ss = 1.0 / fs;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = rs_lanczos((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            if (ww != 0.0) w[x] /= ww;
            const double v = w[x] * (1 << RS_BITS);
            c->k[(size_t)xx * c->ksize + x] = (int32_t)(v < 0 ? -0.5 + v : 0.5 + v);
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return ZT_OK;
}

static void rs_coeffs_free(rs_coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static inline uint8_t rs_clip8(int64_t s) {
    if (s < 0) return 0;
    s >>= RS_BITS;
    return (uint8_t)(s > 255 ? 255 : s);
}

int zt_image_resize(const zt_image *in, int w, int h, zt_image *out, zt_err *e) {
    memset(out, 0, sizeof *out);
    if (w < 1 || h < 1 || w > ZT_IMAGE_MAX_SIDE || h > ZT_IMAGE_MAX_SIDE)
        return zt_err_set(e, ZT_ERR_ARG, "resize: bad size %dx%d", w, h);
    const size_t np = (size_t)w * h * 3;
    out->rgb = malloc(np);
    if (!out->rgb) return zt_err_set(e, ZT_ERR_NOMEM, "resize: out of memory for %dx%d", w, h);
    out->w = w;
    out->h = h;
    if (w == in->w && h == in->h) {
        memcpy(out->rgb, in->rgb, np);
        return ZT_OK;
    }
    rs_coeffs cv = {0}, chz = {0};
    uint8_t *tmp = NULL;
    int rc = rs_coeffs_make(in->h, h, &cv);
    /* rows of the input the vertical pass reads */
    const int y0 = rc ? 0 : cv.bounds[0], y1 = rc ? 0 : cv.bounds[2 * (h - 1)] + cv.bounds[2 * (h - 1) + 1];
    const uint8_t *src = in->rgb; /* rows [src_row0, ...) of width src_w */
    int src_w = in->w, src_row0 = 0;
    if (!rc && w != in->w) {
        rc = rs_coeffs_make(in->w, w, &chz);
        tmp = rc ? NULL : malloc((size_t)w * (y1 - y0) * 3);
        if (!rc && !tmp) rc = ZT_ERR_NOMEM;
        for (int y = y0; !rc && y < y1; y++) {
            const uint8_t *row = in->rgb + (size_t)y * in->w * 3;
            uint8_t *o = tmp + (size_t)(y - y0) * w * 3;
            for (int xx = 0; xx < w; xx++) {
                const int xmin = chz.bounds[2 * xx], n = chz.bounds[2 * xx + 1];
                const int32_t *k = chz.k + (size_t)xx * chz.ksize;
                int64_t s0 = 1 << (RS_BITS - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < n; x++) {
                    const uint8_t *p = row + (size_t)(x + xmin) * 3;
                    s0 += (int64_t)p[0] * k[x];
                    s1 += (int64_t)p[1] * k[x];
                    s2 += (int64_t)p[2] * k[x];
                }
                o[3 * xx] = rs_clip8(s0);
                o[3 * xx + 1] = rs_clip8(s1);
                o[3 * xx + 2] = rs_clip8(s2);
            }
        }
        src = tmp;
        src_w = w;
        src_row0 = y0;
    }
    if (!rc && h != in->h) {
        for (int yy = 0; yy < h; yy++) {
            const int ymin = cv.bounds[2 * yy], n = cv.bounds[2 * yy + 1];
            const int32_t *k = cv.k + (size_t)yy * cv.ksize;
            uint8_t *o = out->rgb + (size_t)yy * w * 3;
            for (int xx = 0; xx < w * 3; xx++) {
                int64_t s = 1 << (RS_BITS - 1);
                for (int y = 0; y < n; y++) s += (int64_t)src[(size_t)(y + ymin - src_row0) * src_w * 3 + xx] * k[y];
                o[xx] = rs_clip8(s);
            }
        }
    } else if (!rc) { /* horizontal only: the temporary holds every row */
        ZT_ASSERT(src_row0 == 0 && y1 - y0 == h);
        memcpy(out->rgb, src, np);
    }
    rs_coeffs_free(&cv);
    rs_coeffs_free(&chz);
    free(tmp);
    if (rc) {
        zt_image_free(out);
        return zt_err_set(e, ZT_ERR_NOMEM, "resize: out of memory for %dx%d", w, h);
    }
    return ZT_OK;
}

int zt_image_resize_inplace(zt_image *im, int w, int h, zt_err *e) {
    if (im->w == w && im->h == h) return ZT_OK;
    zt_image o;
    int rc = zt_image_resize(im, w, h, &o, e);
    if (rc) return rc;
    zt_image_free(im);
    *im = o;
    return ZT_OK;
}

void zt_image_default_size(const zt_image *im, int multiple, int *w, int *h) {
    *w = im->w - im->w % multiple;
    *h = im->h - im->h % multiple;
}

void zt_image_to_tensor(const zt_image *im, float *chw) {
    const size_t np = (size_t)im->w * im->h;
    for (size_t i = 0; i < np; i++)
        for (int c = 0; c < 3; c++) {
            const float x = (float)im->rgb[i * 3 + c] / 255.0f;
            chw[(size_t)c * np + i] = 2.0f * x - 1.0f;
        }
}

void zt_image_to_gray(const zt_image *im, uint8_t *gray) {
    const size_t np = (size_t)im->w * im->h;
    for (size_t i = 0; i < np; i++) {
        const uint8_t *p = im->rgb + i * 3;
        gray[i] = (uint8_t)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 + (uint32_t)p[2] * 7471 + 0x8000) >> 16);
    }
}

void zt_image_binarize(const uint8_t *gray, size_t n, float *mask) {
    for (size_t i = 0; i < n; i++) mask[i] = (float)gray[i] / 255.0f >= 0.5f ? 1.0f : 0.0f;
}
