/* kiln-cat — copy records from one place to another: a bridge between pipes, files and
 * ZeroMQ sockets, the collector of a fan-in, and (--prepend) the way an earlier segment of
 * a run rejoins its stream on resume (pipelines/pretrain.sh). */
#include <string.h>

#include "stream/options.h"

static const kopt_info HELP = {
    .about = "copy a record stream (bridge pipes, files and ZeroMQ sockets)",
    .usage = "kiln cat [--prepend FILE] [--in URL] [--out URL] [--fan-in N] [--fan-out N]",
    .text = "--prepend FILE writes the records of the record file FILE (not its hdr and eos)\n"
            "after the input's hdr and before the input's records: pipelines/pretrain.sh puts a\n"
            "resumed run's history in front of the new records, so kiln plot and kiln show\n"
            "--progress see the whole run.\n",
    .notes = "examples:\n"
             "  kiln cat --in @tcp://*:5555 --fan-in 2 > all.rec     # collect from two workers\n"
             "  kiln cat --in all.rec --out @ipc:///tmp/feed --fan-out 4  # feed four workers\n"
             "  kiln train ... | kiln cat --prepend history.rec | kiln plot --png loss.png | ...\n",
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    const char *prepend = NULL;
    kopt rows[] = {
        KOPT_STRING(0, "prepend", &prepend, "FILE",
                    "first copy the records of this record file (a run's earlier metrics)"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(w, kreader_hdr(r), NULL, 0);
    kwriter_end(w);
    krec rec;
    if (prepend) {
        kreader *p = kreader_open(prepend, 1);
        while (!kwriter_gone(w) && kreader_next(p, &rec)) kwriter_pass(w, &rec);
        const char *status = kreader_status(p);
        if (!kiln_stop_signal() && !kwriter_gone(w) && (!status || strcmp(status, "ok") != 0))
            kiln_die(EX_KILN_DATA, "--prepend %s: the stream ended with eos '%s', not 'ok'",
                     prepend, status ? status : "?");
        kreader_close(p);
    }
    while (kreader_next(r, &rec)) kwriter_pass(w, &rec);
    kiln_finish(r, w);
}
