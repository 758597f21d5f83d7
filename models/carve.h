/* models/carve.h — carve one allocation into aligned pieces.
 *
 * The same layout function serves twice: with base == NULL it only measures
 * (every take returns NULL, c->used ends as the bytes needed); with a real
 * base it hands out the pieces. So the size a model asks for and the way it
 * cuts its workspace can never disagree. */
#ifndef ZT_MODELS_CARVE_H
#define ZT_MODELS_CARVE_H

#include <stddef.h>

#include "common/zt_common.h"

#define ZT_CARVE_ALIGN 256

typedef struct {
    char *base;    /* NULL: measuring pass */
    size_t size;   /* bytes available at base */
    size_t used;   /* bytes taken so far (aligned) */
} zt_carve;

static inline zt_carve zt_carve_init(void *base, size_t size) {
    zt_carve c = {(char *)base, size, 0};
    return c;
}

static inline void *zt_carve_take(zt_carve *c, size_t bytes) {
    size_t off = (size_t)ZT_ALIGN_UP(c->used, ZT_CARVE_ALIGN);
    c->used = off + (size_t)ZT_ALIGN_UP(bytes, ZT_CARVE_ALIGN);
    if (!c->base) return NULL;
    ZT_ASSERT(c->used <= c->size); /* the measuring pass sized it: a bug if not */
    return c->base + off;
}

#endif
