/* cli — the options every stage shares: where records come from and go (--in, --out,
 * --fan-in, --fan-out), --help and --version.  A stage lists KILN_CLI_LONGOPTS in its
 * getopt_long table and hands unknown option codes to kiln_cli_option(). */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "stream/stream.h"
#include "core/util.h"

enum { KILN_OPT_IN = 1000, KILN_OPT_OUT, KILN_OPT_FAN_IN, KILN_OPT_FAN_OUT, KILN_OPT_VERSION };

#define KILN_CLI_LONGOPTS                                                                          \
    {"in", required_argument, 0, KILN_OPT_IN}, {"out", required_argument, 0, KILN_OPT_OUT},        \
        {"fan-in", required_argument, 0, KILN_OPT_FAN_IN},                                         \
        {"fan-out", required_argument, 0, KILN_OPT_FAN_OUT}, {"help", no_argument, 0, 'h'}, {      \
        "version", no_argument, 0, KILN_OPT_VERSION                                                \
    }

/* Text for a stage's --help describing the shared options. */
#define KILN_CLI_HELP                                                                              \
    "  --in URL        read records from URL (default stdin): a file, or ZeroMQ\n"                 \
    "                  tcp://HOST:PORT, ipc://PATH ('@' binds, '>' connects; default connect)\n"   \
    "  --out URL       write records to URL (default stdout; ZeroMQ default bind)\n"               \
    "  --fan-in N      a bound --in collects from N senders (default 1)\n"                         \
    "  --fan-out N     a bound --out feeds N receivers (default 1)\n"                              \
    "  -h, --help      this help;  --version  the version\n"

typedef struct {
    const char *in, *out;
    int fan_in, fan_out;
    const char *help; /* the stage's --help text */
} kiln_cli;

/* Set the program name, install signal handlers, fill defaults. */
void kiln_cli_init(kiln_cli *c, int argc, char **argv, const char *help);
/* Handle a shared option (or '?' from getopt, which exits 2).  false when c is not one. */
bool kiln_cli_option(kiln_cli *c, int opt, const char *arg);
/* Open the stage's streams as the options say. */
kreader *kiln_cli_reader(const kiln_cli *c);
kwriter *kiln_cli_writer(const kiln_cli *c);
/* Exit 2 with a message and a pointer to --help. */
_Noreturn void kiln_usage_error(const char *fmt, ...) KILN_PRINTF(1, 2);

#endif
