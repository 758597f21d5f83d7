/* tools/zturbo/options.h — one table per command drives parsing, --help
 * and the printed configuration, so the three can never disagree.
 *
 * A command declares `static const cli_option k_opts[N]` (indexed by its own
 * enum) and a `cli_value v[N]`; cli_options_parse fills v from the defaults
 * and then argv, rejecting bad values with the allowed range (never
 * clamping); cli_options_help prints the usage; cli_options_print prints the
 * resolved values (a command may overwrite v[i] after resolving "auto"
 * defaults, and mark it resolved). */
#ifndef ZT_CLI_OPTIONS_H
#define ZT_CLI_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    CLI_FLAG,   /* no value: set = 1 */
    CLI_INT,    /* integer in lo..hi, a multiple of `multiple` when non-zero -> .i */
    CLI_U64,    /* 0..2^64-1 -> .u */
    CLI_SIZE,   /* K/M/G/T (zt_parse_size), at least lo bytes -> .u */
    CLI_REAL,   /* a number in (lo, hi), exclusive -> .d */
    CLI_STRING, /* -> .s */
    CLI_ENUM,   /* one of choices "a|b|c" -> .s */
} cli_kind;

typedef struct {
    const char *name;     /* "--width" */
    const char *short_name; /* "-m" or NULL */
    cli_kind kind;
    const char *metavar;  /* shown in --help: "N", "SIZE", "FILE" */
    long long lo, hi;
    int multiple;
    const char *choices;  /* CLI_ENUM: "cpu|cuda" */
    const char *def;      /* default, parsed like a value; NULL: unset */
    const char *def_help; /* default as --help says it when def is NULL or needs words */
    const char *help;     /* '\n' starts a continuation line */
    const char *section;  /* heading printed before this option in --help, or NULL */
    int hidden;           /* test knobs: parsed, not listed */
    int repeat;           /* CLI_STRING given any number of times (up to CLI_MAX_REPEAT): .list */
} cli_option;

#define CLI_MAX_REPEAT 16

typedef struct {
    int set;              /* given on the command line (or resolved = 2) */
    long long i;
    uint64_t u;
    double d;
    const char *s;
    int n;                /* repeat options: values in .list (the last one also in .s) */
    const char *list[CLI_MAX_REPEAT];
} cli_value;

/* Returns 0, or the exit code of a usage error (already printed as
 * "zturbo CMD: ..."). Stops at "-h"/"--help" when the table has "--help"
 * (that entry's value is then set). */
int cli_options_parse(const char *cmd, const cli_option *t, int n, int argc, char **argv, cli_value *v);
void cli_options_help(FILE *f, const char *usage, const cli_option *t, int n);
/* "name value" lines, one per listed option; "(default)" marks unset values. */
void cli_options_print(FILE *f, const cli_option *t, int n, const cli_value *v);
/* --vae-bands LEVEL,ROWS: LEVEL 1..16, ROWS 1..65536; 0 or the usage error's exit code. */
int cli_parse_bands(const char *cmd, const char *s, int *level, int *rows);

/* generate's table (cmd_generate.c): `serve` takes its model, device,
 * streaming and image options by name, so the two never disagree. */
const cli_option *generate_options(int *n);

#endif
