/* tools/zturbo/plan_print.h — the plan `zturbo plan` prints, made and
 * printed the same way for `generate --print-config` and `generate -v`. */
#ifndef ZT_CLI_PLAN_PRINT_H
#define ZT_CLI_PLAN_PRINT_H

#include <stdio.h>

#include "api/pipeline.h"
#include "tools/zturbo/gen_options.h"

typedef struct {
    zt_pipeline_opts po;
    zt_plan plan;
    zt_plan_input in;
    size_t vae_host;  /* 0: whole-image VAE decode */
    zt_source *src;   /* for the unit names */
} gen_plan;

/* The plan of these options (zo from gen_resolve; v for plan's own
 * --context and --disk-bw), without loading weights. */
int gen_plan_make(const cli_value *v, const zturbo_options *zo, gen_plan *gp, zt_err *e);
void gen_plan_free(gen_plan *gp);
void gen_plan_print(FILE *f, const cli_value *v, const gen_plan *gp, int verbose, const char *indent);

#endif
