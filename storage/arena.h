/* storage/arena.h — a host memory arena: one allocation per memory class
 * (e.g. "resident", "staging"), mmap'ed and 2 MiB aligned so the kernel can
 * back it with huge pages, carved by a bump allocator. Nothing is freed
 * piecewise: the whole arena is reset or released at once.
 *
 * Pinning (page-locking for DMA) is the caller's business: storage/ never
 * touches CUDA. The caller passes hooks (stream/ wraps cudaHostRegister /
 * cudaHostUnregister). When pinning is refused the arena keeps pageable
 * memory and records a one-line warning the command line can print.
 * Never prints. Not thread-safe (carve at planning time, from one thread). */
#ifndef ZT_STORAGE_ARENA_H
#define ZT_STORAGE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_ARENA_ALIGN (2u * 1024u * 1024u)

typedef struct {
    /* Return 0 when [p, p+n) is now pinned; anything else = refused. */
    int (*pin)(void *p, size_t n, void *ctx);
    /* Undo pin (called by zt_arena_free only when pin succeeded). */
    void (*unpin)(void *p, size_t n, void *ctx);
    void *ctx;
} zt_pin_hooks;

typedef struct {
    char name[32];        /* memory class, used in messages */
    uint8_t *base;        /* 2 MiB aligned */
    size_t capacity;      /* usable bytes (a multiple of 2 MiB) */
    size_t used;          /* bump pointer */
    size_t high_water;    /* largest `used` seen */
    int pinned;           /* 1 when the pin hook accepted the whole arena */
    zt_pin_hooks hooks;
    char warning[256];    /* "" or one line: why the memory is pageable */
    void *map;            /* what mmap returned (unaligned) */
    size_t map_bytes;
} zt_arena;

/* Reserve `bytes` (rounded up to 2 MiB) for class `name`. hooks may be NULL
 * (no pinning, no warning). Fails with ZT_ERR_NOMEM naming the class and
 * the size. */
int zt_arena_init(zt_arena *a, const char *name, size_t bytes, const zt_pin_hooks *hooks, zt_err *e);
/* Unpin (if pinned) and unmap. Safe on a zeroed or already freed arena. */
void zt_arena_free(zt_arena *a);

/* Carve `bytes` aligned to `align` (a power of two, >= 1). `what` names the
 * user in the failure message, which reports bytes needed vs available:
 *   "host arena 'staging': dit.layers.3 needs 354.00 MiB, 120.00 MiB of 1.00 GiB free"
 * Returns ZT_ERR_NOMEM without changing the arena on failure. */
int zt_arena_alloc(zt_arena *a, size_t bytes, size_t align, const char *what, void **out, zt_err *e);
/* Bytes still available for an allocation with this alignment. */
size_t zt_arena_available(const zt_arena *a, size_t align);
/* Mark / roll back (stack discipline), and reset to empty. */
static inline size_t zt_arena_mark(const zt_arena *a) { return a->used; }
void zt_arena_release(zt_arena *a, size_t mark);
static inline void zt_arena_reset(zt_arena *a) { zt_arena_release(a, 0); }
/* "" or the pinning warning. */
static inline const char *zt_arena_warning(const zt_arena *a) { return a->warning; }

#ifdef __cplusplus
}
#endif
#endif
