/* tools/zturbo/options.h — one table per command drives parsing, --help
 * and the printed configuration, so the three can never disagree. Every
 * command of bin/zturbo parses with this (generate and plan share one table,
 * gen_options.h).
 *
 * Conventions (those of getopt_long, stable-diffusion.cpp and A1111):
 *   --name VALUE and --name=VALUE for every long option; -x VALUE and -xVALUE
 *   for short ones; a value may start with '-' (--seed -1); "--" ends the
 *   options; "-" alone is an argument (stdin). The last of a repeated option
 *   wins, except for options marked repeat (--lora), which collect every
 *   value in order. -h/--help and --version exist in every command.
 *   Numbers follow common/zt_input.h (decimal, no blanks or '+'); sizes
 *   zt_parse_size (K/M/G/T 1024-based, a unit required). A bad value is
 *   refused with the allowed range ("--width 17 not allowed: must be a
 *   multiple of 16 in 16..2048"), never clamped.
 *
 * A command declares `static const cli_option k_opts[N]` (indexed by its own
 * enum), a cli_spec and a `cli_value v[N]`; cli_parse fills v from the
 * defaults and then argv. A command may overwrite v[i] after resolving an
 * "auto" default (set = CLI_RESOLVED) for cli_print_config. */
#ifndef ZT_CLI_OPTIONS_H
#define ZT_CLI_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    CLI_FLAG,       /* no value: set = 1 */
    CLI_INT,        /* integer in lo..hi, a multiple of `multiple` when non-zero -> .i */
    CLI_U64,        /* 0..2^64-1 -> .u */
    CLI_SEED,       /* 0..2^64-1, or -1: random (.random = 1, .u drawn below 2^53) -> .u */
    CLI_SIZE,       /* zt_parse_size, at least lo bytes -> .u */
    CLI_REAL,       /* a finite number in (lo, hi), exclusive -> .d */
    CLI_STRING,     /* -> .s */
    CLI_ENUM,       /* one of choices "a|b|c" -> .s */
    CLI_POSITIONAL, /* an argument that is not an option, in table order -> .s; name is its metavar */
} cli_kind;

typedef struct {
    const char *name;       /* "--width" (CLI_POSITIONAL: "MODEL_DIR") */
    const char *short_name; /* "-W" or NULL */
    cli_kind kind;
    const char *metavar;    /* shown in --help: "N", "SIZE", "FILE" */
    long long lo, hi;
    int multiple;
    const char *choices;    /* CLI_ENUM: "cpu|cuda" */
    const char *def;        /* default, parsed like a value; NULL: unset */
    const char *def_help;   /* default as --help says it when def is NULL or needs words */
    const char *help;       /* '\n' starts a continuation line */
    const char *section;    /* heading printed before this option in --help, or NULL */
    int hidden;             /* test knobs: parsed, not listed */
    unsigned scope;         /* commands sharing the table that take it (cli_spec.scope bits); 0: all */
    const char *comfy;      /* the ComfyUI input it stands for, shown in --help, or NULL */
    int repeat;             /* CLI_STRING given any number of times (up to CLI_MAX_REPEAT): .list, .n */
} cli_option;

#define CLI_MAX_REPEAT 16

enum { CLI_UNSET = 0, CLI_GIVEN = 1, CLI_RESOLVED = 2, CLI_AT_RUN = 3 };

typedef struct {
    int set;                /* CLI_UNSET (default), CLI_GIVEN, CLI_RESOLVED, CLI_AT_RUN (only known once running) */
    long long i;
    uint64_t u;
    double d;
    const char *s;
    int random;             /* CLI_SEED: -1 given, or unset */
    const char *note;       /* --print-config: how a resolved value was found ("measured"), or NULL */
    const char *text;       /* --print-config: words shown instead of the value, or NULL */
    int n;                  /* repeat options: the values given, in order, in .list (the last also in .s) */
    const char *list[CLI_MAX_REPEAT];
} cli_value;

typedef struct {
    const char *cmd;        /* "generate" */
    const char *usage;      /* the first lines of --help */
    const char *epilog;     /* lines after the options, or NULL */
    const cli_option *opts;
    int n;
    unsigned scope;         /* this command's bit among the table's users (0: all) */
} cli_spec;

/* Exit "successfully now": --help or --version was printed. */
#define CLI_DONE (-1)

/* Returns 0, CLI_DONE, or the exit code of a usage error (already printed
 * as "zturbo CMD: ..."). */
int cli_parse(const cli_spec *sp, int argc, char **argv, cli_value *v);
void cli_help(FILE *f, const cli_spec *sp);
/* "name  value  (note)" lines, one per listed option. */
void cli_print_config(FILE *f, const cli_spec *sp, const cli_value *v);
/* The option's name as given in messages: "-m/--model" style for the
 * required-option messages ("missing -m MODEL"). */
int cli_missing(const cli_spec *sp, int k);
/* --vae-bands LEVEL,ROWS: LEVEL 1..16, ROWS 1..65536; 0 or the usage
 * error's exit code. */
int cli_parse_bands(const char *cmd, const char *s, int *level, int *rows);

#endif
