/* api/zturbo_internal.h — what the public API (zturbo.h) shares with the
 * command line's `zturbo plan`, which needs the pipeline's plan but must read
 * the options exactly as zturbo_create does. */
#ifndef ZT_API_ZTURBO_INTERNAL_H
#define ZT_API_ZTURBO_INTERNAL_H

#include "api/pipeline.h"
#include "api/zturbo.h"

typedef struct {
    zturbo_device device;           /* AUTO resolved */
    zturbo_precision precision;     /* DEFAULT resolved */
    zturbo_precision vae_precision; /* DEFAULT resolved */
} zturbo_resolved;

/* Validate o and turn it into the pipeline's options (zturbo_create's
 * first step). ZT_ERR_ARG / ZT_ERR_UNSUPPORTED with one line. */
int zturbo_pipeline_options(const zturbo_options *o, zt_pipeline_opts *po, zturbo_resolved *r, zt_err *e);

#endif
