/* storage/arena.c — mmap'ed, 2 MiB aligned bump arena (see arena.h). */
#include "storage/arena.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int zt_arena_init(zt_arena *a, const char *name, size_t bytes, const zt_pin_hooks *hooks, zt_err *e) {
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name ? name : "host");
    if (bytes == 0) return ZT_OK; /* an empty class: every alloc reports 0 available */
    char b1[32];
    if (bytes > SIZE_MAX - 2 * (size_t)ZT_ARENA_ALIGN)
        return zt_err_set(e, ZT_ERR_NOMEM, "host arena '%s': %zu bytes is too large", a->name, bytes);
    size_t cap = (size_t)ZT_ALIGN_UP(bytes, ZT_ARENA_ALIGN);
    /* Over-map by 2 MiB, then trim both ends to get an aligned block. */
    size_t map_bytes = cap + ZT_ARENA_ALIGN;
    void *m = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return zt_err_set(e, ZT_ERR_NOMEM, "host arena '%s': cannot map %s: %s", a->name,
                          zt_fmt_bytes(cap, b1, sizeof b1), strerror(errno));
    uintptr_t start = (uintptr_t)m, aligned = (uintptr_t)ZT_ALIGN_UP(start, ZT_ARENA_ALIGN);
    size_t head = aligned - start, tail = map_bytes - head - cap;
    if (head) munmap(m, head);
    if (tail) munmap((void *)(aligned + cap), tail);
    a->map = (void *)aligned;
    a->map_bytes = cap;
    a->base = (uint8_t *)aligned;
    a->capacity = cap;
#ifdef MADV_HUGEPAGE
    madvise(a->base, cap, MADV_HUGEPAGE); /* a hint; failure is harmless */
#endif
    if (hooks) a->hooks = *hooks;
    if (a->hooks.pin) {
        if (a->hooks.pin(a->base, cap, a->hooks.ctx) == 0) a->pinned = 1;
        else
            snprintf(a->warning, sizeof a->warning,
                     "host arena '%s': pinning %s was refused; using pageable memory (host-to-device copies will be slower)",
                     a->name, zt_fmt_bytes(cap, b1, sizeof b1));
    }
    return ZT_OK;
}

void zt_arena_free(zt_arena *a) {
    if (a->map) {
        if (a->pinned && a->hooks.unpin) a->hooks.unpin(a->base, a->capacity, a->hooks.ctx);
        munmap(a->map, a->map_bytes);
    }
    a->map = NULL;
    a->base = NULL;
    a->capacity = a->used = 0;
    a->pinned = 0;
}

size_t zt_arena_available(const zt_arena *a, size_t align) {
    if (align == 0) align = 1;
    uint64_t at = ZT_ALIGN_UP((uintptr_t)a->base + a->used, align) - (uintptr_t)a->base;
    return at >= a->capacity ? 0 : a->capacity - (size_t)at;
}

int zt_arena_alloc(zt_arena *a, size_t bytes, size_t align, const char *what, void **out, zt_err *e) {
    if (align == 0 || (align & (align - 1)))
        return zt_err_set(e, ZT_ERR_INTERNAL, "host arena '%s': alignment %zu is not a power of two", a->name, align);
    size_t avail = zt_arena_available(a, align);
    if (bytes > avail) {
        char b1[32], b2[32], b3[32];
        return zt_err_set(e, ZT_ERR_NOMEM, "host arena '%s': %s needs %s, %s of %s free", a->name,
                          what ? what : "allocation", zt_fmt_bytes(bytes, b1, sizeof b1),
                          zt_fmt_bytes(avail, b2, sizeof b2), zt_fmt_bytes(a->capacity, b3, sizeof b3));
    }
    size_t at = a->capacity - avail;
    *out = a->base + at;
    a->used = at + bytes;
    if (a->used > a->high_water) a->high_water = a->used;
    return ZT_OK;
}

void zt_arena_release(zt_arena *a, size_t mark) {
    if (mark <= a->used) a->used = mark;
}
