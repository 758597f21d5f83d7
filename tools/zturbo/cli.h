/* tools/zturbo/cli.h — shared helpers of the command line: the only code in
 * zturbo that prints errors and decides exit codes. */
#ifndef ZT_CLI_H
#define ZT_CLI_H

#include "common/zt_common.h"

#define ZT_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "tools/zturbo/commands.h"
#undef ZT_COMMAND

/* Exit codes: 0 ok, 1 runtime failure (I/O, model, GPU), 2 usage error,
 * 130 interrupted (SIGINT). */
enum { ZT_EXIT_OK = 0, ZT_EXIT_FAIL = 1, ZT_EXIT_USAGE = 2, ZT_EXIT_INTERRUPTED = 130 };

/* Print "zturbo: <msg>" for a library error and return the exit code that
 * matches its code. */
int cli_fail(const zt_err *e);
/* Print "zturbo <cmd>: <message>" (usage errors) and return ZT_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
