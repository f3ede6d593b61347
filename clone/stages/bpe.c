/* kiln-bpe — learn a byte-level BPE vocabulary (GPT-2's pre-split) from text records. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "data/bpe.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "learn a byte-level BPE vocabulary from text (GPT-2's files)",
    .usage = "kiln bpe --vocab N --dir DIR [--special NAME]... [--field NAME]",
    .text =
        "Reads sample records, splits each text with GPT-2's pattern (letters, numbers,\n"
        "other runs, white space; lib/data/bpe.h) and counts the pieces; then merges the most\n"
        "frequent adjacent pair of tokens, again and again (ties: the smaller pair of ids),\n"
        "never across pieces, until the vocabulary has N ids: 256 bytes, the merges, then\n"
        "<|endoftext|> and the --special tokens.  Stops early when no pair occurs twice.\n"
        "Writes DIR/encoder.json and DIR/vocab.bpe in GPT-2's format, for\n"
        "`kiln tokenize --bpe DIR` and for other tools.  The same input gives the same files.\n",
    .notes = "example:\n"
             "  kiln load text:examples/data/moby-dick.txt --split paragraphs \\\n"
             "    | kiln bpe --vocab 4096 --dir runs/bpe4k\n"
             "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bpe runs/bpe4k\n",
};

typedef struct {
    const char *names[64];
    unsigned n;
} special_list;

static bool special_option(void *dest, const char *arg, char *err, size_t errsz) {
    special_list *s = dest;
    size_t len = strlen(arg);
    if (len == 0 || len > 200) return kiln_errf(err, errsz, 0, "--special wants 1..200 bytes");
    if (s->n >= 63) return kiln_errf(err, errsz, 0, "at most 63 --special tokens");
    s->names[s->n++] = arg;
    return true;
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    uint64_t vocab = 0;
    const char *dir = NULL, *field = "text";
    special_list sp = {{KBPE_EOT}, 1};
    kopt rows[] = {
        KOPT_U64(0, "vocab", &vocab, "N", 257, 1u << 20,
                 "ids in all: 256 bytes + merges + special tokens (e.g. 4096; GPT-2 has 50257)",
                 .flags = KOPT_REQUIRED),
        KOPT_STRING(0, "dir", &dir, "DIR",
                    "where encoder.json and vocab.bpe go (created if missing)",
                    .flags = KOPT_REQUIRED),
        KOPT_CALL(0, "special", &sp, special_option, "NAME",
                  "another special token after <|endoftext|> (repeatable)"),
        KOPT_STRING(0, "field", &field, "NAME", "the text field to learn from (default text)"),
        KOPT_GROUP("record streams"),
        KOPT_STREAM_IN(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);

    kreader *r = kiln_cli_reader(&cli);
    kbpe_learner *l = kbpe_learner_new();
    krec rec;
    double t0 = kiln_now();
    uint64_t bytes = 0;
    while (kreader_next(r, &rec)) {
        const char *s;
        size_t n;
        if (!krec_is(&rec, "sample") || !krec_str(&rec, field, &s, &n)) continue;
        kbpe_learner_add(l, (const uint8_t *)s, n);
        bytes += n;
        if (kiln_stop_signal()) break;
    }
    int stop = kreader_finish_for_file(r, "vocabulary");
    if (stop) return stop;
    if (!bytes) kiln_die(EX_KILN_DATA, "no text in field '%s' of any sample record", field);
    char err[512];
    kbpe *b = kbpe_learn(l, (uint32_t)vocab, sp.names, sp.n, err, sizeof err);
    if (!b) kiln_die(EX_KILN_USAGE, "%s", err);
    uint64_t distinct, total;
    kbpe_learner_counts(l, &distinct, &total);
    kbpe_learner_free(l);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        kiln_die(EX_KILN_IO, "%s: cannot create (%s)", dir, strerror(errno));
    if (!kbpe_save(b, dir, err, sizeof err)) kiln_die(EX_KILN_IO, "%s", err);
    uint32_t ids = kbpe_nbase(b) + kbpe_nspecials(b);
    if (ids < vocab)
        kiln_warn("only %u ids: no pair of tokens occurs twice after %u merges", ids,
                  kbpe_nmerges(b));
    kiln_warn("%u merges from %llu bytes (%llu pieces, %llu distinct) in %.1fs: %s",
              kbpe_nmerges(b), (unsigned long long)bytes, (unsigned long long)total,
              (unsigned long long)distinct, kiln_now() - t0, dir);
    kbpe_free(b);
    return EX_KILN_OK;
}
