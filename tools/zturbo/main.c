/* tools/zturbo/main.c — `zturbo <command> [options]`: dispatch to the
 * subcommands listed in commands.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    if (e->code == ZT_ERR_INTERRUPTED) return ZT_EXIT_INTERRUPTED;
    if (e->code == ZT_ERR_ARG || e->code == ZT_ERR_RANGE) return ZT_EXIT_USAGE;
    return ZT_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zturbo %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return ZT_EXIT_USAGE;
}

static void print_usage(FILE *f) {
    fprintf(f, "usage: zturbo <command> [options]   (zturbo <command> --help for its options)\n\ncommands:\n");
    for (const cli_command *c = k_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
    }
    for (const cli_command *c = k_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "zturbo: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return ZT_EXIT_USAGE;
}
