/* kiln-show — print a record stream as JSON lines, one record a line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "data/mpjson.h"
#include "plot/progress.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "print a record stream as JSON lines (tensors summarised)",
    .usage = "kiln show [--all] [--full] [--progress [--total N]] [--trl] [--in URL]",
    .notes =
        "Tensors print as {dtype, shape, min, max, mean}; with --full as {dtype, shape, data}.\n"
        "Binary values that are not tensors print as {\"$bin\": BASE64}.  `kiln import` reads\n"
        "this output back (use --full for tensors).\n"
        "--trl writes preference pairs as TRL's dataset lines "
        "{\"prompt\",\"chosen\",\"rejected\"}:\n"
        "one line for each record with those three text fields (pref records, or `kiln load\n"
        "jsonl:` of such lines), nothing else; `kiln load jsonl:FILE` reads them back.\n"
        "example:\n"
        "  printf '{\"t\":\"sample\",\"text\":\"hi\"}\\n' | kiln import | kiln show\n"
        "  kiln train ... | kiln ckpt --dir runs/a | kiln show --progress\n"
        "  kiln label --labels l.jsonl < roll.rec | kiln show --trl > prefs.jsonl\n",
};

/* A write to stdout failed: `kiln show | head` is fine (0), anything else is 74. */
static void stdout_check(bool failed) {
    if (!failed) return;
    if (errno == EPIPE) exit(EX_KILN_OK);
    kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
}

static void put_record(const krec *r, bool full) {
    mpjson_put(stdout, r->map, full);
    putchar('\n');
    stdout_check(ferror(stdout) || (isatty(1) && fflush(stdout) != 0));
}

/* --trl: a preference pair as TRL's JSON line; false for a record that is not one. */
static bool put_trl(const krec *r) {
    bool pair = mpjson_put_trl(stdout, r);
    stdout_check(ferror(stdout));
    return pair;
}

typedef struct options {
    bool all, full, progress, trl;
    uint64_t total;
} options;

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){0};
    kopt rows[] = {
        KOPT_BOOL('a', "all", &o->all, "include the hdr and eos records"),
        KOPT_BOOL('f', "full", &o->full,
                  "print tensor values as nested arrays instead of a summary"),
        KOPT_BOOL('p', "progress", &o->progress,
                  "a training run at a glance on stderr instead of the records: one live line "
                  "(step/total, a bar, train and eval loss, tokens/s, ETA; off a terminal every "
                  "10 s and at every eval), then a summary: steps, time, train and eval loss, "
                  "tokens/s, checkpoints written, the best one"),
        KOPT_BOOL(0, "trl", &o->trl,
                  "preference pairs as TRL's JSON lines {\"prompt\",\"chosen\",\"rejected\"}, "
                  "from every record with those three text fields; other records are left out",
                  .conflicts = "progress"),
        KOPT_U64(0, "total", &o->total, "N", 0, UINT64_MAX,
                 "with --progress: the steps of the whole run, for the bar and the ETA (default: "
                 "the hdr's `steps`, which kiln train --steps writes)"),
        KOPT_GROUP("record streams"),
        KOPT_STREAM_IN(cli),
        KOPT_STRING(0, "out", &cli->out, "URL",
                    "ignored: the JSON lines go to stdout (scripts pass --out /dev/null)"),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o;
    parse_options(argc, argv, &cli, &o);
    kprogress prog;
    kprogress_start(&prog, o.total, isatty(2));
    kreader *r = kiln_cli_reader(&cli);
    if (!prog.total) krec_u64(kreader_hdr(r), "steps", &prog.total);
    bool all = o.all && !o.progress && !o.trl; /* the records themselves */
    uint64_t not_pairs = 0;
    if (all) put_record(kreader_hdr(r), o.full);
    krec rec;
    while (kreader_next(r, &rec)) {
        if (o.progress)
            kprogress_record(&prog, &rec);
        else if (o.trl)
            not_pairs += !put_trl(&rec);
        else
            put_record(&rec, o.full);
    }
    if (o.progress) kprogress_summary(&prog);
    if (not_pairs)
        kiln_warn("--trl: %llu records without prompt, chosen and rejected texts left out",
                  (unsigned long long)not_pairs);
    if (all && kreader_status(r)) put_record(&rec, o.full); /* the eos */
    stdout_check(fflush(stdout) != 0);
    int sig = kiln_stop_signal();
    const char *status = kreader_status(r);
    bool up_failed = status && strcmp(status, "error") == 0;
    if (!sig && up_failed)
        kiln_warn("%s: the upstream failed (its end of stream says error)", kreader_name(r));
    kreader_close(r);
    return sig ? kiln_stop_status(sig) : up_failed ? EX_KILN_IO : EX_KILN_OK;
}
