/* kiln-cat — copy records from one place to another: a bridge between pipes, files and
 * ZeroMQ sockets, and the collector of a fan-in. */
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "copy a record stream (bridge pipes, files and ZeroMQ sockets)",
    .usage = "kiln cat [--in URL] [--out URL] [--fan-in N] [--fan-out N]",
    .notes = "examples:\n"
             "  kiln cat --in @tcp://*:5555 --fan-in 2 > all.rec     # collect from two workers\n"
             "  kiln cat --in all.rec --out @ipc:///tmp/feed --fan-out 4  # feed four workers\n",
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kopt rows[] = {KOPT_STREAM(&cli), KOPT_END()};
    kiln_cli_parse(&cli, rows, argc, argv);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(w, kreader_hdr(r), NULL, 0);
    kwriter_end(w);
    krec rec;
    while (kreader_next(r, &rec)) kwriter_pass(w, &rec);
    kiln_finish(r, w);
}
