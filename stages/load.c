/* kiln-load — read text, PNG folders, IDX files and JSON lines into `sample` records. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "data/loader.h"
#include "data/png.h"
#include "data/tokenizer.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "read text, PNG folders, IDX files and JSON lines into sample records",
    .usage = "kiln load [OPTIONS] SOURCE...",
    .text = "sources (read in the order given; each item gets id = its position in one pass):\n"
            "  text:PATH          a file, or every file below a directory (sorted by path)\n"
            "  png:DIR            every *.png below DIR, labelled by its first subfolder "
            "(cats/1.png)\n"
            "  idx:IMAGES[,LABELS]  IDX files (MNIST, Fashion-MNIST), gzipped or not\n"
            "  jsonl:PATH         one JSON object a line; its fields become record fields\n"
            "                     (text, prompt, chosen, rejected, label, ...; t/seq/id/epoch/src\n"
            "                     are kiln's own and dropped)\n",
    .notes = "example:\n"
             "  kiln load text:examples/data/moby-dick.txt --split paragraphs | kiln show | head\n"
             "  kiln load png:photos --channels 3 --size 64x64 --epochs 0 | kiln augment hflip "
             "...\n",
    .max_args = 1 << 16,
};

static bool split_option(void *dest, const char *arg, char *err, size_t errsz) {
    return ksplit_parse(arg, dest, err, errsz);
}

static bool size_option(void *dest, const char *arg, char *err, size_t errsz) {
    kloader *L = dest;
    if (kimage_parse_size(arg, &L->height, &L->width)) return true;
    return kiln_errf(err, errsz, 0, "--size wants HxW, e.g. 64x64, not '%s'", arg);
}

/* --shard I/N: 0 <= I < N. */
static bool shard_option(void *dest, const char *arg, char *err, size_t errsz) {
    kloader *L = dest;
    return kopt_parse_shard(arg, &L->shard_i, &L->shard_n, err, errsz);
}

static const char *const utf8_modes[] = {"replace", "reject", NULL};
static const char *const channel_counts[] = {"1", "3", "4", NULL};

static void parse_options(int argc, char **argv, kiln_cli *cli, kloader *L) {
    const char *utf8 = "replace", *channels = NULL;
    char err[512];
    ksplit_parse("docs", &L->split, err, sizeof err);
    kopt rows[] = {
        KOPT_CALL(0, "split", &L->split, split_option, "MODE",
                  "text pieces: docs (one per file, default), lines (non-empty), paragraphs "
                  "(blank-line separated), sep:STR (lines equal to STR separate pieces; sep:% "
                  "reads fortune files), chunk:N (at most N bytes, never cutting a UTF-8 "
                  "character)"),
        KOPT_CHOICE(0, "utf8", &utf8, "MODE", utf8_modes,
                    "invalid UTF-8 in text: replace (with U+FFFD, default) or reject"),
        KOPT_CHOICE(0, "channels", &channels, "C", channel_counts,
                    "images as 1 (gray), 3 (RGB) or 4 (RGBA); default: as stored (gray+alpha "
                    "PNGs become RGBA)"),
        KOPT_CALL(0, "size", L, size_option, "HxW",
                  "resize images (area averaging down, bilinear up)"),
        KOPT_U64(0, "max-pixels", &L->max_pixels, "N", 1, UINT64_MAX,
                 "refuse PNGs declaring more pixels (default 67108864)"),
        KOPT_STRING(0, "classes", &L->classes_path, "FILE",
                    "class names, one a line: IDX label k is line k+1; PNG labels must be "
                    "listed.  Written to the hdr as `classes` for kiln tokenize"),
        KOPT_U64(0, "epochs", &L->epochs, "N", 0, UINT64_MAX,
                 "passes over the sources (default 1; 0 = forever)"),
        KOPT_CALL(0, "shard", L, shard_option, "I/N",
                  "keep every N-th record starting at I (worker I of N)"),
        KOPT_U64(0, "skip", &L->skip, "K", 0, UINT64_MAX,
                 "skip the first K records (after --shard): resume from a batch cursor"),
        KOPT_U64(0, "limit", &L->limit, "N", 0, UINT64_MAX, "stop after N records"),
        KOPT_BOOL(0, "skip-bad", &L->skip_bad,
                  "a bad file or line becomes an `err` record (counted on stderr) instead of "
                  "ending the run with exit 65"),
        KOPT_U64(0, "seed", &L->seed, "S", 0, UINT64_MAX,
                 "the seed recorded in the hdr (default 0); with --shuffle, of the order"),
        KOPT_BOOL(0, "shuffle", &L->shuffle,
                  "each epoch in its own order, a permutation of the items (files, pieces, "
                  "lines, images) drawn from (seed, epoch): shuffled data that --skip still "
                  "resumes exactly; ids stay the items' positions in one unshuffled pass"),
        KOPT_GROUP("record streams"),
        KOPT_STREAM_OUT(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    L->utf8_reject = !strcmp(utf8, "reject");
    L->channels = channels ? atoi(channels) : 0;
    if (cli->nargs < 1) kiln_usage_error("no SOURCE given (e.g. text:corpus.txt)");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kloader L = {.epochs = 1, .shard_n = 1, .max_pixels = KPNG_MAX_PIXELS_DEFAULT};
    parse_options(argc, argv, &cli, &L);
    char err[512];
    int nsrc = cli.nargs;
    if (L.classes_path && !kclasses_load(L.classes_path, &L.classes, &L.nclasses, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s", err);

    kload_source *src = xcalloc((size_t)nsrc, sizeof *src);
    for (int i = 0; i < nsrc; i++) kload_source_open(&L, cli.args[i], &src[i]);
    L.w = kiln_cli_writer(&cli);
    kloader_hdr(&L, src, nsrc);
    L.tty = isatty(2);
    L.start = L.shown = kiln_now();

    kload_index *x = L.shuffle ? kload_index_build(&L, src, nsrc) : NULL;
    for (L.epoch = 0; (L.epochs == 0 || L.epoch < L.epochs) && !kloader_finished(&L); L.epoch++) {
        L.id = 0;
        if (x)
            kloader_shuffled(&L, src, x);
        else
            for (int i = 0; i < nsrc && !kloader_finished(&L); i++) kloader_pass(&L, &src[i]);
        /* An epoch that ended before its first record because the downstream had gone (or
         * a stop signal came) is no sign of empty sources. */
        if (L.id == 0 && !kloader_finished(&L))
            kiln_die(EX_KILN_DATA, "the sources hold no records");
    }
    kload_index_free(x, src, nsrc);

    if (L.tty && L.shown > L.start) kloader_progress(&L, true);
    if (L.bad)
        kiln_warn("%llu bad input%s skipped (err records in the stream)", (unsigned long long)L.bad,
                  L.bad == 1 ? "" : "s");
    for (int i = 0; i < nsrc; i++) kload_source_free(&src[i]);
    free(src);
    kloader_free(&L);
    kiln_finish(NULL, L.w);
}
