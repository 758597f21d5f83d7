/* tools/zturbo/main.c — `zturbo <command> [options]`: dispatch to the
 * subcommands listed in commands.h. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/zturbo.h"
#include "tools/zturbo/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} cli_command;

static const cli_command k_commands[] = {
#define ZT_COMMAND(name, fn, summary) {#name, fn, summary},
#include "tools/zturbo/commands.h"
#undef ZT_COMMAND
    {NULL, NULL, NULL},
};

int cli_fail(const zt_err *e) {
    fprintf(stderr, "zturbo: %s\n", e->msg[0] ? e->msg : zt_code_name(e->code));
    return e->code == ZT_ERR_INTERRUPTED ? ZT_EXIT_INTERRUPTED : ZT_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    zt_one_line(msg); /* values quoted from the command line may hold newlines */
    fprintf(stderr, "zturbo %s: %s\n", cmd, msg);
    return ZT_EXIT_USAGE;
}

const char *cli_cuda_missing(void) {
    /* the CUDA runtime words a missing driver as "driver version is
     * insufficient": look for the driver library first */
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!h) return "no NVIDIA driver found (libcuda.so.1 missing)";
    dlclose(h);
    return zturbo_cuda_available() ? NULL : "no usable CUDA device found";
}

static void print_usage(FILE *f) {
    fprintf(f, "usage: zturbo <command> [options]   (zturbo <command> --help for its options)\n\ncommands:\n");
    for (const cli_command *c = k_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\nzturbo --version prints the version. Exit codes: 0 ok, 1 files/model/machine, 2 command line,\n"
               "130 interrupted.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("zturbo %s\n", zturbo_version());
        return ZT_EXIT_OK;
    }
    for (const cli_command *c = k_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "zturbo: unknown command '%s' (see zturbo --help)\n", argv[1]);
    return ZT_EXIT_USAGE;
}
