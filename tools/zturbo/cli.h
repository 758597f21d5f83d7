/* tools/zturbo/cli.h — shared helpers of the command line: the only code in
 * zturbo that prints errors and decides exit codes. */
#ifndef ZT_CLI_H
#define ZT_CLI_H

#include "common/zt_common.h"

#define ZT_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "tools/zturbo/commands.h"
#undef ZT_COMMAND

/* Exit codes, the same in every command:
 *   0   ok
 *   1   the files, the model or the machine: a file missing, unreadable, not
 *       a regular file, malformed or over its cap; a config value out of
 *       range; an output that cannot be written; out of memory; a GPU error
 *   2   the command line: an unknown option, a value out of its range,
 *       options that exclude each other, a required option missing, a prompt
 *       that is not UTF-8 — decided before any file is read — and --ids
 *       beyond the vocabulary (once the model is loaded)
 *   130 interrupted (SIGINT): the image in progress was not written */
enum { ZT_EXIT_OK = 0, ZT_EXIT_FAIL = 1, ZT_EXIT_USAGE = 2, ZT_EXIT_INTERRUPTED = 130 };

/* Print "zturbo: <msg>" for a library error and return its exit code: 130
 * for ZT_ERR_INTERRUPTED, else 1 (what the library sees comes from files,
 * the model or the machine: the command line checked its flags before). */
int cli_fail(const zt_err *e);
/* Print "zturbo <cmd>: <message>" (usage errors) and return ZT_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Why CUDA cannot run here ("no NVIDIA driver found (libcuda.so.1
 * missing)", "no CUDA device found"), or NULL when it can. */
const char *cli_cuda_missing(void);

#endif
