/* storage/md5.c — MD5 as specified by RFC 1321 (storage/md5.h), and the
 * hash of a whole file with large sequential reads. */
#include "common/zt_input.h"
#include "storage/md5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 §3.4. */
static const uint32_t k_t[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu, 0xf57c0fafu, 0x4787c62au, 0xa8304613u, 0xfd469501u,
    0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu, 0x6b901122u, 0xfd987193u, 0xa679438eu, 0x49b40821u,
    0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau, 0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u,
    0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu, 0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au,
    0xfffa3942u, 0x8771f681u, 0x6d9d6122u, 0xfde5380cu, 0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u, 0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u,
    0xf4292244u, 0x432aff97u, 0xab9423a7u, 0xfc93a039u, 0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
    0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u, 0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u,
};

static inline uint32_t rotl(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

/* The four auxiliary functions of §3.4. */
#define MD5_F(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define MD5_G(x, y, z) (((x) & (z)) | ((y) & ~(z)))
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))
/* a = b + ((a + fn(b, c, d) + X[k] + T[i]) <<< s) */
#define MD5_STEP(fn, a, b, c, d, k, i, s) (a) = (b) + rotl((a) + fn((b), (c), (d)) + x[(k)] + k_t[(i)], (s))

/* Process 64-byte blocks. */
static void blocks(uint32_t st[4], const uint8_t *p, size_t n_blocks) {
    for (; n_blocks--; p += 64) {
        uint32_t x[16];
        for (int j = 0; j < 16; j++)
            x[j] = (uint32_t)p[4 * j] | (uint32_t)p[4 * j + 1] << 8 | (uint32_t)p[4 * j + 2] << 16 |
                   (uint32_t)p[4 * j + 3] << 24;
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        /* round 1: X[i], shifts 7 12 17 22 */
        MD5_STEP(MD5_F, a, b, c, d, 0, 0, 7);    MD5_STEP(MD5_F, d, a, b, c, 1, 1, 12);
        MD5_STEP(MD5_F, c, d, a, b, 2, 2, 17);   MD5_STEP(MD5_F, b, c, d, a, 3, 3, 22);
        MD5_STEP(MD5_F, a, b, c, d, 4, 4, 7);    MD5_STEP(MD5_F, d, a, b, c, 5, 5, 12);
        MD5_STEP(MD5_F, c, d, a, b, 6, 6, 17);   MD5_STEP(MD5_F, b, c, d, a, 7, 7, 22);
        MD5_STEP(MD5_F, a, b, c, d, 8, 8, 7);    MD5_STEP(MD5_F, d, a, b, c, 9, 9, 12);
        MD5_STEP(MD5_F, c, d, a, b, 10, 10, 17); MD5_STEP(MD5_F, b, c, d, a, 11, 11, 22);
        MD5_STEP(MD5_F, a, b, c, d, 12, 12, 7);  MD5_STEP(MD5_F, d, a, b, c, 13, 13, 12);
        MD5_STEP(MD5_F, c, d, a, b, 14, 14, 17); MD5_STEP(MD5_F, b, c, d, a, 15, 15, 22);
        /* round 2: X[(1 + 5i) mod 16], shifts 5 9 14 20 */
        MD5_STEP(MD5_G, a, b, c, d, 1, 16, 5);   MD5_STEP(MD5_G, d, a, b, c, 6, 17, 9);
        MD5_STEP(MD5_G, c, d, a, b, 11, 18, 14); MD5_STEP(MD5_G, b, c, d, a, 0, 19, 20);
        MD5_STEP(MD5_G, a, b, c, d, 5, 20, 5);   MD5_STEP(MD5_G, d, a, b, c, 10, 21, 9);
        MD5_STEP(MD5_G, c, d, a, b, 15, 22, 14); MD5_STEP(MD5_G, b, c, d, a, 4, 23, 20);
        MD5_STEP(MD5_G, a, b, c, d, 9, 24, 5);   MD5_STEP(MD5_G, d, a, b, c, 14, 25, 9);
        MD5_STEP(MD5_G, c, d, a, b, 3, 26, 14);  MD5_STEP(MD5_G, b, c, d, a, 8, 27, 20);
        MD5_STEP(MD5_G, a, b, c, d, 13, 28, 5);  MD5_STEP(MD5_G, d, a, b, c, 2, 29, 9);
        MD5_STEP(MD5_G, c, d, a, b, 7, 30, 14);  MD5_STEP(MD5_G, b, c, d, a, 12, 31, 20);
        /* round 3: X[(5 + 3i) mod 16], shifts 4 11 16 23 */
        MD5_STEP(MD5_H, a, b, c, d, 5, 32, 4);   MD5_STEP(MD5_H, d, a, b, c, 8, 33, 11);
        MD5_STEP(MD5_H, c, d, a, b, 11, 34, 16); MD5_STEP(MD5_H, b, c, d, a, 14, 35, 23);
        MD5_STEP(MD5_H, a, b, c, d, 1, 36, 4);   MD5_STEP(MD5_H, d, a, b, c, 4, 37, 11);
        MD5_STEP(MD5_H, c, d, a, b, 7, 38, 16);  MD5_STEP(MD5_H, b, c, d, a, 10, 39, 23);
        MD5_STEP(MD5_H, a, b, c, d, 13, 40, 4);  MD5_STEP(MD5_H, d, a, b, c, 0, 41, 11);
        MD5_STEP(MD5_H, c, d, a, b, 3, 42, 16);  MD5_STEP(MD5_H, b, c, d, a, 6, 43, 23);
        MD5_STEP(MD5_H, a, b, c, d, 9, 44, 4);   MD5_STEP(MD5_H, d, a, b, c, 12, 45, 11);
        MD5_STEP(MD5_H, c, d, a, b, 15, 46, 16); MD5_STEP(MD5_H, b, c, d, a, 2, 47, 23);
        /* round 4: X[7i mod 16], shifts 6 10 15 21 */
        MD5_STEP(MD5_I, a, b, c, d, 0, 48, 6);   MD5_STEP(MD5_I, d, a, b, c, 7, 49, 10);
        MD5_STEP(MD5_I, c, d, a, b, 14, 50, 15); MD5_STEP(MD5_I, b, c, d, a, 5, 51, 21);
        MD5_STEP(MD5_I, a, b, c, d, 12, 52, 6);  MD5_STEP(MD5_I, d, a, b, c, 3, 53, 10);
        MD5_STEP(MD5_I, c, d, a, b, 10, 54, 15); MD5_STEP(MD5_I, b, c, d, a, 1, 55, 21);
        MD5_STEP(MD5_I, a, b, c, d, 8, 56, 6);   MD5_STEP(MD5_I, d, a, b, c, 15, 57, 10);
        MD5_STEP(MD5_I, c, d, a, b, 6, 58, 15);  MD5_STEP(MD5_I, b, c, d, a, 13, 59, 21);
        MD5_STEP(MD5_I, a, b, c, d, 4, 60, 6);   MD5_STEP(MD5_I, d, a, b, c, 11, 61, 10);
        MD5_STEP(MD5_I, c, d, a, b, 2, 62, 15);  MD5_STEP(MD5_I, b, c, d, a, 9, 63, 21);
        st[0] += a;
        st[1] += b;
        st[2] += c;
        st[3] += d;
    }
}

void zt_md5_init(zt_md5 *m) {
    m->s[0] = 0x67452301u; /* §3.3 */
    m->s[1] = 0xefcdab89u;
    m->s[2] = 0x98badcfeu;
    m->s[3] = 0x10325476u;
    m->n = 0;
}

void zt_md5_update(zt_md5 *m, const void *data, size_t n) {
    const uint8_t *p = data;
    size_t have = (size_t)(m->n & 63);
    m->n += n;
    if (have) {
        size_t take = ZT_MIN(n, 64 - have);
        memcpy(m->buf + have, p, take);
        p += take;
        n -= take;
        if (have + take < 64) return;
        blocks(m->s, m->buf, 1);
    }
    blocks(m->s, p, n / 64);
    p += n / 64 * 64;
    memcpy(m->buf, p, n % 64);
}

void zt_md5_final(zt_md5 *m, uint8_t digest[16]) {
    /* §3.1-3.2: a 1 bit, zeros to 56 mod 64 bytes, the bit length (LE u64) */
    uint64_t bits = m->n * 8;
    uint8_t pad[72] = {0x80};
    size_t have = (size_t)(m->n & 63), padn = (have < 56 ? 56 : 120) - have;
    for (int i = 0; i < 8; i++) pad[padn + (size_t)i] = (uint8_t)(bits >> (8 * i));
    zt_md5_update(m, pad, padn + 8);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) digest[4 * i + j] = (uint8_t)(m->s[i] >> (8 * j));
}

void zt_md5_hex(const uint8_t digest[16], char out[33]) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[digest[i] >> 4];
        out[2 * i + 1] = hx[digest[i] & 15];
    }
    out[32] = 0;
}

#define READ_BYTES (8u << 20)

int zt_md5_file(const char *path, zt_md5_progress_fn progress, void *ctx, uint8_t digest[16], zt_err *e) {
    int fd;
    int rc0 = zt_file_open(path, &fd, NULL, e); /* regular files only: a FIFO cannot block */
    if (rc0) return rc0;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint8_t *buf = malloc(READ_BYTES);
    if (!buf) {
        close(fd);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the read buffer", path);
    }
    zt_md5 m;
    zt_md5_init(&m);
    int rc = ZT_OK;
    for (;;) {
        ssize_t r = read(fd, buf, READ_BYTES);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = zt_err_set(e, ZT_ERR_IO, "%s: read failed at byte %llu: %s", path, (unsigned long long)m.n,
                            strerror(errno));
            break;
        }
        if (r == 0) break;
        zt_md5_update(&m, buf, (size_t)r);
        if (progress && progress(ctx, (uint64_t)r)) {
            rc = zt_err_set(e, ZT_ERR_INTERRUPTED, "%s: interrupted", path);
            break;
        }
    }
    free(buf);
    close(fd);
    if (!rc) zt_md5_final(&m, digest);
    return rc;
}
