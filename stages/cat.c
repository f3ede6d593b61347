/* kiln-cat — copy records from one place to another: a bridge between pipes, files and
 * ZeroMQ sockets, and the collector of a fan-in. */
#include "stream/cli.h"

static const char HELP[] =
    "kiln-cat — copy a record stream (bridge pipes, files and ZeroMQ sockets)\n"
    "usage: kiln cat [--in URL] [--out URL] [--fan-in N] [--fan-out N]\n" KILN_CLI_HELP
    "examples:\n"
    "  kiln cat --in @tcp://*:5555 --fan-in 2 > all.rec     # collect from two workers\n"
    "  kiln cat --in all.rec --out @ipc:///tmp/feed --fan-out 4  # feed four workers\n";

int main(int argc, char **argv) {
    kiln_cli cli;
    static const struct option longopts[] = {KILN_CLI_LONGOPTS, {0}};
    kiln_cli_init(&cli, argc, argv, HELP);
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
        kiln_cli_option(&cli, c, optarg);
    if (optind < argc) kiln_usage_error("unexpected argument '%s'", argv[optind]);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(w, kreader_hdr(r), NULL, 0);
    kwriter_end(w);
    krec rec;
    while (kreader_next(r, &rec)) kwriter_pass(w, &rec);
    kiln_finish(r, w);
}
