/* tests/fuzz/fuzz_wcode.c — libFuzzer harness for the coded-weight format
 * (storage/wcode.h): encoder, validator and CPU decoder.
 *
 * Input: a selector byte, then payload.
 *   selector even: the payload (minus its last 8 bytes) is a run of words.
 *     They are coded, the image must validate fully and decode to the same
 *     words. Then the last 8 bytes pick an edit of the image (offset, xor
 *     mask, whether the checksums are recomputed so the edit gets past
 *     them); the edited image is validated at every level, decoded when its
 *     tables pass (the decoder must stay inside the image: ASan), whole and
 *     chunk by chunk from exact-size pieces (the same words), and when it
 *     passes every check and its image checksum, it must decode to the
 *     original words.
 *   selector odd: the payload is taken as an image as it is (checksums
 *     recomputed when the selector's bit 1 is set) and validated / decoded.
 * The image is copied into an allocation of its exact size so that ASan sees
 * a read past its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "storage/store_format.h"
#include "storage/wcode.h"

static void fix_checksums(uint8_t *img, size_t len, int body) {
    if (len < ZT_WCODE_ALIGN) return;
    uint64_t total = zt_rd64(img + 48);
    if (body && total >= ZT_WCODE_ALIGN && total <= len)
        zt_wr64(img + 64, XXH64(img + ZT_WCODE_ALIGN, total - ZT_WCODE_ALIGN, 0));
    zt_wr64(img + 120, XXH64(img, 120, 0));
}

/* Validate at every level; decode when the tables pass. Returns 1 when the
 * image passed everything, the image checksum included. */
static int exercise(const uint8_t *img, size_t len, uint16_t **out, uint64_t *n_out) {
    zt_err e;
    zt_wcode_info L;
    *out = NULL;
    if (zt_wcode_validate(img, len, 0, "fuzz", &L, &e)) {
        if (zt_wcode_validate(img, len, ZT_WCODE_CHECK_BODY | ZT_WCODE_CHECK_CONTENT, "fuzz", &L, &e) == ZT_OK)
            abort(); /* stricter checks accepted what the tables refused */
        return 0;
    }
    if (L.total_bytes > len || L.n_words == 0) abort();
    if (L.n_words > (1u << 24)) return 0;
    uint16_t *dst = malloc(L.n_words * 2);
    if (!dst) return 0;
    int verified = zt_wcode_decode(img, &L, dst, 1, 1, "fuzz", &e) == ZT_OK;
    /* the same chunk by chunk from exact-size copies of each (the stream's pieces) */
    uint16_t *dst2 = malloc(L.n_words * 2);
    for (uint32_t c = 0; dst2 && c < L.n_chunks; c++) {
        const uint64_t base = zt_wcode_dir(img, c), plen = zt_wcode_dir(img, c + 1) - base;
        uint8_t *piece = malloc(plen ? plen : 1);
        if (!piece) break;
        memcpy(piece, img + base, plen);
        zt_wcode_decode_chunks(img, piece, base, plen, &L, c, c + 1, dst2);
        free(piece);
    }
    if (dst2 && memcmp(dst, dst2, L.n_words * 2)) abort(); /* pieces decode as the whole image does */
    free(dst2);
    int full = zt_wcode_validate(img, len, ZT_WCODE_CHECK_BODY | ZT_WCODE_CHECK_CONTENT, "fuzz", &L, &e) == ZT_OK;
    *out = dst;
    *n_out = L.n_words;
    return full && verified;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t sel = data[0];
    data++;
    size--;
    if (sel & 1) {
        if (size > (64u << 20)) return 0;
        uint8_t *img = malloc(size ? size : 1);
        if (!img) return 0;
        memcpy(img, data, size);
        if (sel & 2) fix_checksums(img, size, 1);
        uint16_t *dst;
        uint64_t n;
        exercise(img, size, &dst, &n);
        free(dst);
        free(img);
        return 0;
    }
    if (size < 10) return 0;
    uint64_t n = (size - 8) / 2;
    if (n > (1u << 20)) n = 1u << 20;
    const uint8_t *tail = data + size - 8;
    uint16_t *words = malloc(n * 2);
    memcpy(words, data, n * 2);
    uint64_t cap = zt_wcode_bound(n), bytes = 0;
    uint8_t *buf = malloc(cap);
    zt_err e;
    if (zt_wcode_encode(words, n, buf, cap, 1 + (sel >> 6), &bytes, &e)) abort();
    uint8_t *img = malloc(bytes);
    memcpy(img, buf, bytes);
    free(buf);
    uint16_t *dst;
    uint64_t m;
    if (!exercise(img, bytes, &dst, &m) || m != n || memcmp(dst, words, n * 2)) abort(); /* round trip */
    free(dst);
    /* one edit */
    uint64_t off = zt_rd32(tail) % bytes;
    img[off] ^= tail[4] ? tail[4] : 1;
    if (tail[5] & 1) img[(off + zt_rd32(tail + 4) / 256) % bytes] ^= tail[6];
    if (tail[7] & 1) fix_checksums(img, bytes, (tail[7] >> 1) & 1);
    if (exercise(img, bytes, &dst, &m) && (m != n || memcmp(dst, words, n * 2)))
        abort(); /* passed every check and the image checksum, yet decoded to other words */
    free(dst);
    free(img);
    free(words);
    return 0;
}
