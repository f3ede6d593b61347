/* cli — shared stage options. */
#include "stream/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"

void kiln_cli_init(kiln_cli *c, int argc, char **argv, const char *help) {
    (void)argc;
    kiln_set_prog(argv[0]);
    kiln_signals_init();
    c->in = c->out = NULL;
    c->fan_in = c->fan_out = 1;
    c->help = help;
}

static int peers_arg(const char *opt, const char *arg) {
    uint64_t v = opt_u64(opt, arg);
    if (v < 1 || v > 256) kiln_usage_error("%s wants 1 to 256 peers", opt);
    return (int)v;
}

bool kiln_cli_option(kiln_cli *c, int opt, const char *arg) {
    switch (opt) {
    case KILN_OPT_IN:
        c->in = arg;
        return true;
    case KILN_OPT_OUT:
        c->out = arg;
        return true;
    case KILN_OPT_FAN_IN:
        c->fan_in = peers_arg("--fan-in", arg);
        return true;
    case KILN_OPT_FAN_OUT:
        c->fan_out = peers_arg("--fan-out", arg);
        return true;
    case 'h':
        fputs(c->help, stdout);
        exit(EX_KILN_OK);
    case KILN_OPT_VERSION:
        kiln_print_version();
        exit(EX_KILN_OK);
    case '?':
        fprintf(stderr, "Try '%s --help'.\n", kiln_prog());
        exit(EX_KILN_USAGE);
    default:
        return false;
    }
}

kreader *kiln_cli_reader(const kiln_cli *c) {
    return kreader_open(c->in, c->fan_in);
}

kwriter *kiln_cli_writer(const kiln_cli *c) {
    return kwriter_open(c->out, c->fan_out);
}

void kiln_usage_error(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help'.\n", kiln_prog(), buf, kiln_prog());
    exit(EX_KILN_USAGE);
}
