/* kiln-label — a person's preferences between two completions of a prompt, at a terminal:
 * rollout records in, `pref` records out (docs/stages-rlhf.md, "kiln label").  Every decision
 * is on disk (lib/data/labelfile.h) before the next pair is shown. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/labeller.h"
#include "data/labelui.h"
#include "data/rlhf.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "label pairs of completions at a terminal: pref records out",
    .usage = "kiln label --labels FILE [--all-pairs] [--shuffle] [--skipped] [--png-dir DIR]\n"
             "                  [--export] [--in URL] [--out URL]",
    .text =
        "Reads rollout records (kiln rollout); consecutive records with the same id are one\n"
        "prompt's completions.  Shows each pair on the terminal (/dev/tty, so the records can\n"
        "come on stdin): the prompt, the two completions side by side (images in colour with\n"
        "half blocks).  Keys: 1, h or left arrow: left is better; 2, l or right arrow: right;\n"
        "t tie; s skip; u undo the last decision; q quit; j/k, space/b scroll.\n"
        "Each decision is appended to the --labels file and fsync'd at once; a restart with the\n"
        "same file shows only the pairs not yet decided.  At the end (q, all decided, or\n"
        "Ctrl-C) a pref record (by \"person\") goes out for every pair of the input decided left\n"
        "or right, in the earlier sessions too; ties and skips stay in the label file only.\n",
    .notes = "exit codes: 2 no terminal to label on (pass --export to write what is labelled);\n"
             "65 no rollout records, or a rollout without id/prompt/completion; 74 the label\n"
             "file cannot be written.\n"
             "example:\n"
             "  kiln rollout ... > roll.rec\n"
             "  kiln label --labels labels.jsonl < roll.rec > prefs.rec\n"
             "  kiln show --trl < prefs.rec > prefs.jsonl    # TRL's prompt/chosen/rejected\n",
};

/* ---- main ------------------------------------------------------------------------------- */

static void read_input(klabeller *S, kreader *r, kwriter *w) {
    krec rec;
    while (kreader_next(r, &rec)) {
        if (krec_is(&rec, KROLLOUT)) {
            klabeller_add(S, &rec);
        } else {
            S->others++;
            kwriter_pass(w, &rec);
        }
    }
}

static void summary(const klabeller *S, uint64_t prefs) {
    uint64_t n[4];
    size_t done = klabeller_decided(S, n);
    kiln_warn("%zu of %zu pairs labelled (left %llu, right %llu, tie %llu, skip %llu): %llu pref "
              "records",
              done, S->np, (unsigned long long)n[0], (unsigned long long)n[1],
              (unsigned long long)n[2], (unsigned long long)n[3], (unsigned long long)prefs);
    if (S->lonely)
        kiln_warn("%llu prompts with a single completion skipped (no pair to show)",
                  (unsigned long long)S->lonely);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    klabeller S = {0};
    const char *labels = NULL;
    bool all_pairs = false, export_only = false;
    kopt rows[] = {
        KOPT_STRING(0, "labels", &labels, "FILE",
                    "the label file: every decision appended as a JSON line and fsync'd at once; "
                    "pairs already decided in it are not shown again",
                    .flags = KOPT_REQUIRED),
        KOPT_BOOL(0, "all-pairs", &all_pairs,
                  "every pair of a prompt's K completions (K(K-1)/2), not just the first two"),
        KOPT_BOOL(0, "shuffle", &S.shuffle,
                  "put the first completion of a pair on the right half of the time (chosen "
                  "by a hash of the pair's texts: the same in every session), so a habit of "
                  "picking one side favours no completion"),
        KOPT_BOOL(0, "skipped", &S.skipped,
                  "show the pairs skipped in earlier sessions again (a new decision replaces "
                  "the skip)"),
        KOPT_STRING(0, "png-dir", &S.png_dir, "DIR",
                    "image rollouts: also write the pair shown as DIR/left.png and "
                    "DIR/right.png, for an image viewer"),
        KOPT_BOOL(0, "export", &export_only,
                  "label nothing: write the pref records of the decisions in the label file"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    if ((!cli.in || !strcmp(cli.in, "-")) && isatty(0))
        kiln_usage_error("reads rollout records on stdin or --in, and stdin is a terminal");
    if (S.png_dir && mkdir(S.png_dir, 0777) != 0 && errno != EEXIST)
        kiln_die(EX_KILN_IO, "--png-dir %s: %s", S.png_dir, strerror(errno));
    char err[1024];
    int rc = klabels_open(labels, &S.L, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(w, kreader_hdr(r), KPREF, krec_u64_or(kreader_hdr(r), "seed", 0));
    kwriter_end(w);
    read_input(&S, r, w);
    if (!S.ng && !kiln_stop_signal()) {
        snprintf(err, sizeof err,
                 "%s: no rollout records (%llu records of other types): kiln label reads kiln "
                 "rollout's output",
                 kreader_name(r), (unsigned long long)S.others);
        kiln_fail(r, w, EX_KILN_DATA, err);
    }
    klabeller_pairs(&S, all_pairs);
    if (!export_only && !kiln_stop_signal() && klabeller_next(&S, 0) >= 0) {
        rc = klabel_ui_run(&S, err, sizeof err);
        if (rc) kiln_fail(r, w, rc, err);
    }
    summary(&S, klabeller_write_prefs(&S, w));
    klabeller_free(&S);
    kiln_finish(r, w);
}