/* tests/fuzz/fuzz_server_request.c — libFuzzer harness of the server's
 * request parser (api/server_request.h). The first input byte picks the
 * body kind (txt2img, images/generations, options, img2img); the rest is the body,
 * passed without a terminating NUL. Invariants: a refusal is 400 or 404 with
 * a one-line message and nothing left allocated; an accepted request obeys
 * every limit (sizes multiples of 16 within the server's, steps 1..100,
 * batch_size x n_iter = n_images <= max_images), its prompt is valid
 * UTF-8 without NUL, and a txt2img or img2img echo is JSON that parses
 * again; an accepted img2img holds the decoded bytes of an image that
 * decodes (strength in (0, 1], invert 0 or 1, a mask only of the init
 * image's size), a refused one holds no image. The body
 * bytes are also read as a "WxH" size. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_in.h"
#include "api/server_request.h"

static void check(int ok) {
    if (!ok) abort();
}

static int valid_utf8(const unsigned char *s) {
    while (*s) {
        int n = *s < 0x80 ? 0 : (*s >> 5) == 6 ? 1 : (*s >> 4) == 14 ? 2 : (*s >> 3) == 30 ? 3 : -1;
        if (n < 0) return 0;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xC0) != 0x80) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const zt_sreq_limits lim = {64, 48, 2, 512, 256, 6, "z-image-turbo"};
    const zt_sreq_kind kind = (zt_sreq_kind)(data[0] % 4);
    const size_t n = size - 1;
    char *body = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
    if (!body) return 0;
    memcpy(body, data + 1, n);
    zt_sreq r;
    zt_sreq_error e;
    int rc = zt_sreq_parse(kind, body, n, &lim, &r, &e);
    if (rc) {
        check((rc == 400 || rc == 404) && e.status == rc && e.msg[0] && !strchr(e.msg, '\n'));
        check(!r.prompt && !r.body_json && !r.init_image && !r.mask);
    } else if (kind != ZT_SREQ_OPTIONS) {
        check(r.prompt && valid_utf8((const unsigned char *)r.prompt));
        check(r.width >= 16 && r.width <= lim.max_width && r.width % 16 == 0);
        check(r.height >= 16 && r.height <= lim.max_height && r.height % 16 == 0);
        check(r.steps >= 1 && r.steps <= 100);
        check(r.batch_size >= 1 && r.n_iter >= 1 && r.n_images == r.batch_size * r.n_iter && r.n_images <= lim.max_images);
        check(r.n_ignored >= 0 && r.n_ignored <= ZT_SREQ_IGNORED_MAX);
        if (kind == ZT_SREQ_IMG2IMG) {
            check(r.init_image && r.init_image_bytes > 0 && r.strength > 0 && r.strength <= 1);
            check(r.image_w >= 1 && r.image_h >= 1 && (r.mask_invert == 0 || r.mask_invert == 1));
            check(!r.mask == !r.mask_bytes && (r.mask || !r.mask_invert));
            zt_image im;
            zt_err ie = {0};
            check(zt_image_decode(r.init_image, r.init_image_bytes, "fuzz", 0, &im, &ie) == 0);
            check(im.w == r.image_w && im.h == r.image_h);
            zt_image_free(&im);
            if (r.mask) {
                check(zt_image_decode(r.mask, r.mask_bytes, "fuzz", 0, &im, &ie) == 0);
                check(im.w == r.image_w && im.h == r.image_h);
                zt_image_free(&im);
            }
        } else {
            check(!r.init_image && !r.mask);
        }
        if (kind == ZT_SREQ_TXT2IMG || kind == ZT_SREQ_IMG2IMG) {
            check(r.body_json != NULL);
            json_error_t je;
            json_t *again = json_loads(r.body_json, 0, &je);
            check(again && json_is_object(again));
            json_decref(again);
        }
    }
    zt_sreq_free(&r);
    char *text = malloc(n + 1);
    if (text) {
        memcpy(text, data + 1, n);
        text[n] = 0;
        int w = -1, h = -1;
        if (!zt_sreq_parse_size(text, &w, &h)) check(w >= 0 && w <= 99999 && h >= 0 && h <= 99999);
        free(text);
    }
    free(body);
    return 0;
}
