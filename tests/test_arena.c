/* tests/test_arena.c — host arena: 2 MiB alignment, carving, out-of-space
 * report (needed vs available), pin hook accepted / refused / undone. */
#include <stdint.h>

#include "storage/arena.h"
#include "tests/zt_test.h"

typedef struct {
    int pins, unpins, refuse;
    void *p;
    size_t n;
} pin_log;

static int fake_pin(void *p, size_t n, void *ctx) {
    pin_log *l = ctx;
    l->pins++;
    l->p = p;
    l->n = n;
    return l->refuse ? -1 : 0;
}
static void fake_unpin(void *p, size_t n, void *ctx) {
    pin_log *l = ctx;
    l->unpins++;
    ZT_CHECK(p == l->p && n == l->n, "unpin gets what was pinned");
}

int main(void) {
    zt_err e = {0};
    zt_arena a;
    pin_log log = {0};
    zt_pin_hooks hooks = {fake_pin, fake_unpin, &log};

    /* 3 MiB asked -> 4 MiB reserved, 2 MiB aligned, pinned once. */
    int rc = zt_arena_init(&a, "staging", 3 * ZT_MiB, &hooks, &e);
    ZT_CHECK(rc == ZT_OK, "init: %s", e.msg);
    ZT_CHECK(a.capacity == 4 * ZT_MiB, "capacity %zu", a.capacity);
    ZT_CHECK(((uintptr_t)a.base & (ZT_ARENA_ALIGN - 1)) == 0, "base %p not 2 MiB aligned", (void *)a.base);
    ZT_CHECK(a.pinned == 1 && log.pins == 1 && log.p == a.base && log.n == a.capacity, "pinned whole arena");
    ZT_CHECK(zt_arena_warning(&a)[0] == 0, "no warning when pinned: %s", zt_arena_warning(&a));

    /* Carving respects alignment and does not overlap. */
    void *p1 = NULL, *p2 = NULL, *p3 = NULL;
    ZT_CHECK(zt_arena_alloc(&a, 100, 1, "a", &p1, &e) == ZT_OK, "alloc 100: %s", e.msg);
    ZT_CHECK(zt_arena_alloc(&a, 5000, 4096, "b", &p2, &e) == ZT_OK, "alloc 5000: %s", e.msg);
    ZT_CHECK(((uintptr_t)p2 & 4095) == 0, "4 KiB aligned");
    ZT_CHECK((uint8_t *)p2 >= (uint8_t *)p1 + 100, "no overlap");
    memset(p1, 0xab, 100);
    memset(p2, 0xcd, 5000);
    ZT_CHECK(((uint8_t *)p1)[99] == 0xab, "memory is writable");
    size_t used_before = a.used;
    size_t avail = zt_arena_available(&a, 4096);
    ZT_CHECK(avail == a.capacity - ZT_ALIGN_UP(used_before, 4096), "available %zu", avail);

    /* Out of space: code, message with needed and free bytes, arena unchanged. */
    rc = zt_arena_alloc(&a, 5 * ZT_MiB, 4096, "dit.layers.3", &p3, &e);
    ZT_CHECK(rc == ZT_ERR_NOMEM && e.code == ZT_ERR_NOMEM, "rc %d", rc);
    ZT_CHECK(strstr(e.msg, "'staging'") && strstr(e.msg, "dit.layers.3") && strstr(e.msg, "needs 5.00 MiB") &&
                 strstr(e.msg, "free") && strstr(e.msg, "of 4.00 MiB"),
             "message: %s", e.msg);
    ZT_CHECK(a.used == used_before, "failed alloc leaves the arena as it was");

    /* An exact fit succeeds; one more byte fails. */
    size_t rest = zt_arena_available(&a, 64);
    ZT_CHECK(zt_arena_alloc(&a, rest, 64, "rest", &p3, &e) == ZT_OK, "exact fit: %s", e.msg);
    ZT_CHECK(a.used == a.capacity, "full");
    ZT_CHECK(zt_arena_alloc(&a, 1, 1, "one", &p3, &e) == ZT_ERR_NOMEM, "full arena refuses 1 byte");
    ZT_CHECK(zt_arena_alloc(&a, 1, 3, "bad", &p3, &e) == ZT_ERR_INTERNAL, "alignment 3 rejected");

    /* Mark / release. */
    zt_arena_reset(&a);
    ZT_CHECK(a.used == 0 && a.high_water == a.capacity, "reset keeps the high water");
    size_t m = zt_arena_mark(&a);
    ZT_CHECK(zt_arena_alloc(&a, 1000, 8, "x", &p1, &e) == ZT_OK, "alloc after reset");
    zt_arena_release(&a, m);
    ZT_CHECK(a.used == m, "release to mark");

    zt_arena_free(&a);
    ZT_CHECK(log.unpins == 1, "unpinned on free");
    zt_arena_free(&a); /* twice is harmless */
    ZT_CHECK(log.unpins == 1, "no second unpin");

    /* Pinning refused: pageable memory plus a warning, no unpin later. */
    pin_log log2 = {.refuse = 1};
    zt_pin_hooks refuse = {fake_pin, fake_unpin, &log2};
    rc = zt_arena_init(&a, "resident", 1, &refuse, &e);
    ZT_CHECK(rc == ZT_OK, "init with refused pin still works: %s", e.msg);
    ZT_CHECK(a.pinned == 0 && log2.pins == 1, "not pinned");
    ZT_CHECK(strstr(zt_arena_warning(&a), "resident") && strstr(zt_arena_warning(&a), "pageable"),
             "warning: %s", zt_arena_warning(&a));
    ZT_CHECK(zt_arena_alloc(&a, ZT_ARENA_ALIGN, 1, "all", &p1, &e) == ZT_OK, "pageable arena carves");
    memset(p1, 1, ZT_ARENA_ALIGN);
    zt_arena_free(&a);
    ZT_CHECK(log2.unpins == 0, "refused pin is never undone");

    /* No hooks, empty class, absurd size. */
    ZT_CHECK(zt_arena_init(&a, "none", 0, NULL, &e) == ZT_OK, "empty arena");
    ZT_CHECK(zt_arena_alloc(&a, 1, 1, "x", &p1, &e) == ZT_ERR_NOMEM && strstr(e.msg, "0 B free"), "empty: %s", e.msg);
    zt_arena_free(&a);
    ZT_CHECK(zt_arena_init(&a, "huge", SIZE_MAX - 10, NULL, &e) == ZT_ERR_NOMEM && strstr(e.msg, "huge"),
             "absurd size refused: %s", e.msg);
    zt_arena_free(&a);
    return zt_test_finish("test_arena");
}
