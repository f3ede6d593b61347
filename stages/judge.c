/* kiln-judge — rollouts in; scores (--score) or preference pairs (--pairs) out, from a
 * built-in judge (lib/data/judge.h) or any program (--cmd). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/judge.h"
#include "data/rlhf.h"
#include "data/sample.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "score rollouts, or turn each prompt's rollouts into a preference pair",
    .usage = "kiln judge [--pairs | --score] afinn|words|repetition|length|brightness|reward\n"
             "                  [OPTIONS]\n"
             "       kiln judge [--pairs | --score] --cmd PROGRAM",
    .max_args = 1,
    .notes =
        "Judges (a higher score is better):\n"
        "  afinn       the mean AFINN-165 valence per word (--sum: the sum); words not in the\n"
        "              lexicon count as 0.  --lexicon FILE, \"phrase<TAB>score\" lines\n"
        "              (default: the cache's afinn-165.txt that tools/afinn.sh installs)\n"
        "  words       the share of the completion's words in --words FILE (one a line,\n"
        "              default /usr/share/dict/words, Debian's wamerican)\n"
        "  repetition  minus the share of completion token --ngram-grams seen earlier in it\n"
        "  length      minus |completion tokens - --target| / --target\n"
        "  brightness  an image rollout's mean pixel value / 255\n"
        "  reward      the rollout's own `reward`, from a reward stage before (kiln reward):\n"
        "              pairs by a reward model, `by` naming it\n"
        "  --cmd PROGRAM  runs `sh -c PROGRAM` once per rollout with the completion text on its\n"
        "              stdin (and KILN_PROMPT, KILN_ID, KILN_K in its environment); its stdout\n"
        "              must be one number.  Exits 74 when the program fails, 65 when it prints\n"
        "              anything else, naming the record and the program.\n"
        "--score adds `reward` and `judge` to every rollout (a reward stage).  --pairs (the\n"
        "default) reads each prompt's rollouts (adjacent, as kiln rollout writes them) and\n"
        "writes one `pref` record, the best as chosen and the worst as rejected, by "
        "\"judge:NAME\",\n"
        "with their texts, tokens and scores; a prompt whose rollouts all score the same (or\n"
        "that has one) gives none, counted on stderr.  Other records pass through.\n"
        "example:\n"
        "  kiln load jsonl:prompts.jsonl | kiln rollout --ckpt policy.safetensors -K 4 \\\n"
        "    | kiln judge afinn > prefs.rec\n",
};

static const char *const judges[] = {"afinn",      "words",  "repetition", "length",
                                     "brightness", "reward", NULL};

typedef struct options {
    const char *judge, *lexicon, *words, *cmd;
    bool score, pairs, sum;
    int ngram, target;
} options;

typedef struct judge {
    const options *o;
    kjudge_lexicon *lex;
    char name[256]; /* what `judge` says: "afinn", "cmd:PROGRAM" */
    kreader *r;
    kwriter *w;
} judge;

_Noreturn static void fail(judge *j, int code, const char *fmt, ...) KILN_PRINTF(3, 4);
_Noreturn static void fail(judge *j, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kiln_fail(j->r, j->w, code, msg);
}

/* ---- --cmd: a program per rollout (kjudge_cmd) ---------------------------------------- */

static double run_cmd(judge *j, const krec *rec, const krollout *x) {
    double v;
    char err[512];
    int rc = kjudge_cmd(j->o->cmd, x->prompt.s, x->prompt.n, x->id, x->k, x->completion.s,
                        x->completion.n, &v, err, sizeof err);
    if (rc)
        fail(j, rc, "record %llu (id %llu, k %llu): %s", (unsigned long long)rec->seq,
             (unsigned long long)x->id, (unsigned long long)x->k, err);
    return v;
}

/* ---- scoring ---------------------------------------------------------------------------- */

static double score_of(judge *j, const krec *rec, const krollout *x) {
    const options *o = j->o;
    int n = x->completion_tokens.n - (x->ended ? 1 : 0); /* the EOS is no part of the text */
    if (o->cmd) return run_cmd(j, rec, x);
    if (!strcmp(o->judge, "brightness")) {
        double b = x->image.data ? kjudge_brightness(&x->image) : -1.0;
        if (b < 0)
            fail(j, EX_KILN_DATA, "record %llu: brightness judges images; it has no U8 `image`",
                 (unsigned long long)rec->seq);
        return b;
    }
    if (!strcmp(o->judge, "repetition"))
        return kjudge_repetition(x->completion_tokens.tok, n, o->ngram);
    if (!strcmp(o->judge, "length")) return kjudge_length(n, o->target);
    if (!strcmp(o->judge, "reward")) {
        if (!x->has_reward)
            fail(j, EX_KILN_DATA,
                 "record %llu: no `reward` (put a reward stage before: kiln reward)",
                 (unsigned long long)rec->seq);
        return x->reward;
    }
    if (!x->completion.s)
        fail(j, EX_KILN_DATA, "record %llu: %s judges text; it has no `completion`",
             (unsigned long long)rec->seq, o->judge);
    if (!strcmp(o->judge, "afinn"))
        return kjudge_valence(j->lex, x->completion.s, x->completion.n, !o->sum);
    return kjudge_known_share(j->lex, x->completion.s, x->completion.n);
}

/* A rollout read from rec (65 naming the record when malformed). */
static void read_rollout(judge *j, const krec *rec, krollout *x) {
    char err[256];
    if (!krollout_read(rec, x, err, sizeof err))
        fail(j, EX_KILN_DATA, "record %llu (%s): %s", (unsigned long long)rec->seq, rec->t, err);
}

static void score_stream(judge *j) {
    krec rec;
    while (!kwriter_gone(j->w) && kreader_next(j->r, &rec)) {
        if (!krec_is(&rec, KROLLOUT)) {
            kwriter_pass(j->w, &rec);
            continue;
        }
        krollout x;
        read_rollout(j, &rec, &x);
        krollout_write_scored(j->w, &rec, score_of(j, &rec, &x), j->name);
        krollout_free(&x);
        if (kiln_stop_signal()) break;
    }
}

/* ---- pairs ------------------------------------------------------------------------------ */

/* One prompt's rollouts so far. */
typedef struct group {
    kstored **recs;
    double *scores;
    int n, cap;
    uint64_t prompts, pairs, ties;
} group;

static void write_pair(judge *j, const krec *best, const krec *worst, double hi, double lo) {
    krollout c, r;
    read_rollout(j, best, &c), read_rollout(j, worst, &r);
    char by[300]; /* judge:NAME, or the reward stage's own name (judge:reward:FILE) */
    bool theirs = !strcmp(j->name, "reward") && c.judge.s && c.judge.n < 256;
    if (theirs)
        snprintf(by, sizeof by, "judge:%.*s", (int)c.judge.n, c.judge.s);
    else
        snprintf(by, sizeof by, "judge:%s", j->name);
    kstrv none = {"", 0};
    kpref p = {.id = c.id,
               .epoch = c.epoch,
               .src = c.src,
               .prompt = c.prompt.s  ? c.prompt
                         : c.label.s ? c.label
                                     : none,
               .chosen = c.completion.s ? c.completion : none,
               .rejected = r.completion.s ? r.completion : none,
               .by = {by, strlen(by)},
               .prompt_tokens = c.prompt_tokens,
               .chosen_tokens = c.completion_tokens,
               .rejected_tokens = r.completion_tokens,
               .has_scores = true,
               .chosen_score = hi,
               .rejected_score = lo};
    kpref_write(j->w, &p);
    krollout_free(&c), krollout_free(&r);
}

/* The group's pair (best and worst, the first of each on ties), unless all tie. */
static void close_group(judge *j, group *g) {
    if (!g->n) return;
    int best = 0, worst = 0;
    for (int i = 1; i < g->n; i++) {
        if (g->scores[i] > g->scores[best]) best = i;
        if (g->scores[i] < g->scores[worst]) worst = i;
    }
    g->prompts++;
    if (g->scores[best] > g->scores[worst]) {
        write_pair(j, &g->recs[best]->rec, &g->recs[worst]->rec, g->scores[best], g->scores[worst]);
        g->pairs++;
    } else {
        g->ties++;
    }
    for (int i = 0; i < g->n; i++) kstored_free(g->recs[i]);
    g->n = 0;
}

static void add_to_group(judge *j, group *g, const krec *rec) {
    if (g->n && !krollout_same_prompt(&g->recs[0]->rec, rec)) close_group(j, g);
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->recs = xrealloc(g->recs, xmul((size_t)g->cap, sizeof *g->recs));
        g->scores = xrealloc(g->scores, xmul((size_t)g->cap, sizeof *g->scores));
    }
    krollout x;
    read_rollout(j, rec, &x);
    g->scores[g->n] = score_of(j, rec, &x);
    g->recs[g->n++] = kstored_copy(rec);
    krollout_free(&x);
}

static void pair_stream(judge *j) {
    group g = {0};
    krec rec;
    while (!kwriter_gone(j->w) && kreader_next(j->r, &rec)) {
        if (krec_is(&rec, KROLLOUT))
            add_to_group(j, &g, &rec);
        else
            kwriter_pass(j->w, &rec);
        if (kiln_stop_signal()) break;
    }
    if (!kiln_stop_signal() && kreader_status(j->r)) close_group(j, &g);
    for (int i = 0; i < g.n; i++) kstored_free(g.recs[i]);
    fprintf(stderr, "%s: %llu prompts, %llu pairs, %llu skipped (all rollouts scored the same)\n",
            kiln_prog(), (unsigned long long)g.prompts, (unsigned long long)g.pairs,
            (unsigned long long)g.ties);
    free(g.recs), free(g.scores);
}

/* ---- setup ------------------------------------------------------------------------------ */

static const char *default_lexicon(char *buf, size_t n) {
    const char *cache = getenv("KILN_CACHE"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (cache)
        snprintf(buf, n, "%s/afinn-165.txt", cache);
    else if (xdg)
        snprintf(buf, n, "%s/kiln/afinn-165.txt", xdg);
    else
        snprintf(buf, n, "%s/.cache/kiln/afinn-165.txt", home ? home : ".");
    return buf;
}

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.words = "/usr/share/dict/words", .ngram = 3, .target = 32};
    kopt rows[] = {
        KOPT_BOOL(0, "score", &o->score, "add reward and judge to each rollout",
                  .conflicts = "pairs"),
        KOPT_BOOL(0, "pairs", &o->pairs, "a pref record per prompt: best vs worst (default)"),
        KOPT_STRING(0, "cmd", &o->cmd, "PROGRAM", "score with PROGRAM (sh -c), once per rollout"),
        KOPT_GROUP("built-in judges"),
        KOPT_STRING(0, "lexicon", &o->lexicon, "FILE",
                    "afinn: \"phrase<TAB>score\" lines (default: tools/afinn.sh's)"),
        KOPT_BOOL(0, "sum", &o->sum, "afinn: the sum of valences, not the mean per word"),
        KOPT_STRING(0, "words", &o->words, "FILE",
                    "words: the word list (default /usr/share/dict/words)"),
        KOPT_INT(0, "ngram", &o->ngram, "N", 1, 64, "repetition: tokens per n-gram (default 3)"),
        KOPT_INT(0, "target", &o->target, "N", 1, 1 << 24,
                 "length: the completion tokens wanted (default 32)"),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    o->judge = cli->nargs ? cli->args[0] : NULL;
    if (!o->judge == !o->cmd) kiln_usage_error("name one judge, or give --cmd PROGRAM");
    for (int i = 0; o->judge && judges[i]; i++)
        if (!strcmp(o->judge, judges[i])) return;
    if (o->judge)
        kiln_usage_error(
            "unknown judge '%s' (afinn, words, repetition, length, brightness, reward)", o->judge);
}

static void setup(judge *j, const options *o) {
    char path[4096], err[512];
    int code;
    if (o->cmd)
        snprintf(j->name, sizeof j->name, "cmd:%s", o->cmd);
    else
        snprintf(j->name, sizeof j->name, "%s", o->judge);
    const char *file = NULL;
    if (o->judge && !strcmp(o->judge, "afinn"))
        file = o->lexicon ? o->lexicon : default_lexicon(path, sizeof path);
    else if (o->judge && !strcmp(o->judge, "words"))
        file = o->words;
    if (!file) return;
    j->lex = kjudge_lexicon_load(file, !strcmp(o->judge, "afinn"), &code, err, sizeof err);
    if (!j->lex)
        kiln_die(code, "%s%s", err,
                 !o->lexicon && !strcmp(o->judge, "afinn") && code == EX_KILN_IO
                     ? " (install it with tools/afinn.sh, or give --lexicon FILE)"
                     : "");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o;
    parse_options(argc, argv, &cli, &o);
    judge j = {.o = &o};
    setup(&j, &o);
    j.r = kiln_cli_reader(&cli);
    j.w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(j.w, kreader_hdr(j.r), o.score ? NULL : KPREF,
                      krec_u64_or(kreader_hdr(j.r), "seed", 0));
    kw_str(j.w, "judge", j.name);
    kwriter_end(j.w);
    if (o.score)
        score_stream(&j);
    else
        pair_stream(&j);
    kjudge_lexicon_free(j.lex);
    kiln_finish(j.r, j.w);
}
