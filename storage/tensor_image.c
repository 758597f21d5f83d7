/* storage/tensor_image.c — see tensor_image.h. */
#include "storage/tensor_image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ELEMS (1u << 20)

/* BF16 of every F8_E4M3 (fn: no infinities, S.1111.111 is NaN) and F8_E5M2
 * (the top byte of an F16) value: all widen exactly; NaNs become the quiet
 * NaN 0x7fc0 with their sign. */
static void f8_table(zt_st_dtype dt, uint16_t tab[256]) {
    for (int b = 0; b < 256; b++) {
        uint16_t sign = (uint16_t)((b & 0x80) << 8);
        if (dt == ZT_ST_F8_E5M2) {
            int nan = (b & 0x7c) == 0x7c && (b & 3); /* one canonical NaN, like E4M3's */
            tab[b] = nan ? (uint16_t)(sign | 0x7fc0) : zt_f32_to_bf16(zt_f16_to_f32((uint16_t)(b << 8)));
            continue;
        }
        int e = (b >> 3) & 15, m = b & 7;
        if (e == 15 && m == 7) {
            tab[b] = (uint16_t)(sign | 0x7fc0);
            continue;
        }
        float v = e ? ldexpf((float)(8 + m), e - 10) : ldexpf((float)m, -9);
        tab[b] = (uint16_t)(sign | zt_f32_to_bf16(v));
    }
}

static int read_bf16(const zt_tensor_loc *l, uint64_t first, uint64_t n, uint16_t *dst, void *scratch, zt_err *e) {
    zt_st_dtype dt = l->t->dtype;
    unsigned es = zt_st_dtype_size(dt);
    first += l->elem_off;
    if (dt == ZT_ST_BF16) return zt_st_pread(l->f, l->t, first * 2, dst, n * 2, e);
    uint16_t tab[256];
    if (es == 1) f8_table(dt, tab);
    for (uint64_t done = 0; done < n;) {
        uint64_t c = ZT_MIN(n - done, (uint64_t)CHUNK_ELEMS);
        int rc = zt_st_pread(l->f, l->t, (first + done) * es, scratch, c * es, e);
        if (rc) return rc;
        uint16_t *d = dst + done;
        if (dt == ZT_ST_F32) {
            const float *s = scratch;
            for (uint64_t i = 0; i < c; i++) d[i] = zt_f32_to_bf16(s[i]);
        } else if (dt == ZT_ST_F16) { /* exact to f32, then one rounding */
            const uint16_t *s = scratch;
            for (uint64_t i = 0; i < c; i++) d[i] = zt_f32_to_bf16(zt_f16_to_f32(s[i]));
        } else {
            const uint8_t *s = scratch;
            for (uint64_t i = 0; i < c; i++) d[i] = tab[s[i]];
        }
        done += c;
    }
    return ZT_OK;
}

int zt_tensor_loc_read_bf16(const zt_tensor_loc *l, uint64_t first, uint64_t n, uint16_t *dst, zt_err *e) {
    void *scratch = malloc((size_t)ZT_MIN(n, (uint64_t)CHUNK_ELEMS) * 4 + 4);
    if (!scratch) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", l->f->path);
    int rc = read_bf16(l, first, n, dst, scratch, e);
    free(scratch);
    return rc;
}

static int fill_tensor(const zt_tensor_desc *td, const zt_tensor_loc *l, uint8_t *dst, void *scratch, zt_err *e) {
    uint64_t n = td->nbytes / 2;
    if (!td->permute_ohwi) return read_bf16(l, 0, n, (uint16_t *)dst, scratch, e);
    /* [Cout, Cin, kh, kw] (file) -> [Cout, kh, kw, Cin] (image) */
    int64_t co = td->shape[0], kh = td->shape[1], kw = td->shape[2], ci = td->shape[3];
    uint16_t *tmp = malloc(n * 2);
    if (!tmp) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for tensor '%s'", l->f->path, td->name);
    int rc = read_bf16(l, 0, n, tmp, scratch, e);
    if (!rc) {
        uint16_t *d = (uint16_t *)dst;
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < ci; i++)
                for (int64_t y = 0; y < kh; y++)
                    for (int64_t x = 0; x < kw; x++)
                        d[((o * kh + y) * kw + x) * ci + i] = tmp[((o * ci + i) * kh + y) * kw + x];
    }
    free(tmp);
    return rc;
}

int zt_tensor_image_fill_unit(const zt_catalog *cat, int unit, const zt_tensor_loc *locs, void *dst, const char *what,
                              zt_err *e) {
    const zt_unit_desc *u = &cat->units[unit];
    void *scratch = malloc((size_t)CHUNK_ELEMS * 4);
    if (!scratch) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory reading unit %s", what, u->name);
    uint8_t *d = dst;
    uint64_t cur = 0;
    int rc = ZT_OK;
    for (int i = u->first_tensor; i < u->first_tensor + u->n_tensors && !rc; i++) {
        const zt_tensor_desc *td = &cat->tensors[i];
        if (td->offset > cur) memset(d + cur, 0, td->offset - cur);
        rc = fill_tensor(td, &locs[i], d + td->offset, scratch, e);
        cur = td->offset + td->nbytes;
    }
    if (!rc && u->nbytes > cur) memset(d + cur, 0, u->nbytes - cur);
    free(scratch);
    if (rc) zt_err_prefix(e, "unit %s", u->name);
    return rc;
}

int zt_tensor_image_embed_rows(const zt_tensor_loc *embed, uint64_t hidden, const int32_t *ids, int n, uint16_t *dst,
                               zt_err *e) {
    void *scratch = malloc(hidden * 4);
    if (!scratch) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", embed->f->path);
    int rc = ZT_OK;
    for (int i = 0; i < n && !rc; i++) rc = read_bf16(embed, (uint64_t)ids[i] * hidden, hidden, dst + (uint64_t)i * hidden, scratch, e);
    free(scratch);
    return rc;
}
