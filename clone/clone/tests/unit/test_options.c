/* test_options — the option parser: every row type, range checks before any cast, messages
 * that name the option, suggestions for misspelt options, needs/conflicts/required, words
 * that are not options, and the --help it generates from the table; kiln_set_prog's stage
 * names and kiln_closest. */
#include "check.h"
#include "core/util.h"
#include "stream/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

typedef struct opts {
    bool flag, full, have_seed;
    int layers, top_k, classes;
    uint64_t steps, seed;
    double lr, temperature, top_p;
    const char *name, *model;
    char added[4][16];
} opts;

static const char *const models[] = {"tiny", "small", "char", NULL};

/* A repeatable option: each NAME lands in the next slot. */
static bool add_class(void *dest, const char *arg, char *why, size_t n) {
    opts *o = dest;
    if (o->classes == 4) return kiln_errf(why, n, 0, "at most 4 classes");
    if (!*arg || strlen(arg) >= sizeof o->added[0])
        return kiln_errf(why, n, 0, "'%s' is not a class name", arg);
    strcpy(o->added[o->classes++], arg);
    return true;
}

static const kopt_info info = {
    .about = "a stage for the tests",
    .usage = "test [--steps N] [FILE]",
    .text = "Text before the options.\n",
    .notes = "example:\n  test --steps 5\n",
    .max_args = 1,
};

/* The rows a small stage might declare; the destinations are in o. */
#define ROWS(o)                                                                                    \
    kopt rows[] = {                                                                                \
        KOPT_GROUP("model"),                                                                       \
        KOPT_CHOICE(0, "model", &(o)->model, "PRESET", models, "the model's size"),                \
        KOPT_INT(0, "layers", &(o)->layers, "N", 1, 80, "layers"),                                 \
        KOPT_GROUP("training"),                                                                    \
        KOPT_U64(0, "steps", &(o)->steps, "N", 0, UINT64_MAX, "stop after step N"),                \
        KOPT_DOUBLE(0, "lr", &(o)->lr, "X", 0, 10, "peak learning rate",                           \
                    .flags = KOPT_OPEN_MIN | KOPT_OPEN_MAX),                                       \
        KOPT_BOOL('x', "flag", &(o)->flag, "a flag", .needs = "name", .why = "it names things"),   \
        KOPT_BOOL('f', "full", &(o)->full, "another flag", .conflicts = "flag"),                   \
        KOPT_STRING('N', "name", &(o)->name, "NAME", "a name", .alias = "called"),                 \
        KOPT_CALL(0, "add-class", o, add_class, "NAME", "a class; repeatable"),                    \
        KOPT_SAMPLING(&(o)->temperature, &(o)->top_k, &(o)->top_p, &(o)->seed),                    \
        KOPT_END(),                                                                                \
    }

/* Parse the words of line (split at spaces) into a fresh o; argv keeps what was left. */
static int parse(opts *o, char *line, char **argv) {
    memset(o, 0, sizeof *o);
    o->lr = 1e-3;
    int argc = 0;
    argv[argc++] = "test";
    for (char *w = strtok(line, " "); w; w = strtok(NULL, " ")) argv[argc++] = w;
    argv[argc] = NULL;
    ROWS(o);
    return kopt_try(&info, rows, argc, argv, err, sizeof err);
}

/* parse() on a copy of a literal; on failure err holds the message. */
static int run(opts *o, const char *words) {
    static char line[512];
    static char *argv[64];
    snprintf(line, sizeof line, "%s", words);
    err[0] = '\0';
    return parse(o, line, argv);
}

static bool fails_with(opts *o, const char *words, const char *message) {
    int n = run(o, words);
    if (n == KOPT_ERROR && !strcmp(err, message)) return true;
    fprintf(stderr, "  '%s': got %d, '%s'\n    want '%s'\n", words, n, err, message);
    return false;
}

static void each_type(void) {
    opts o;
    CHECK(run(&o, "") == 0 && o.steps == 0 && o.lr == 1e-3 && !o.flag && !o.name);
    CHECK(run(&o, "--model small --layers 12 --steps 18446744073709551615 --lr 0.5") == 0);
    CHECK(!strcmp(o.model, "small") && o.layers == 12 && o.steps == UINT64_MAX && o.lr == 0.5);
    CHECK(run(&o, "--layers=7 --lr=1e-4 --name=a=b") == 0 && o.layers == 7 && o.lr == 1e-4 &&
          !strcmp(o.name, "a=b"));
    CHECK(run(&o, "-N x --name y") == 0 && !strcmp(o.name, "y")); /* the last one counts */
    CHECK(run(&o, "--called z") == 0 && !strcmp(o.name, "z"));    /* an alias */
    CHECK(run(&o, "-Nvalue") == 0 && !strcmp(o.name, "value"));
    CHECK(run(&o, "--name -dash") == 0 && !strcmp(o.name, "-dash")); /* a value, not an option */
    CHECK(run(&o, "--add-class cat --add-class dog") == 0 && o.classes == 2 &&
          !strcmp(o.added[0], "cat") && !strcmp(o.added[1], "dog"));
    CHECK(run(&o, "--temperature 0 --top-k 40 --top-p 1 --seed 7") == 0 && o.temperature == 0 &&
          o.top_k == 40 && o.top_p == 1 && o.seed == 7);
}

static void flags_and_words(void) {
    opts o;
    static char *argv[64];
    static char line[128];
    snprintf(line, sizeof line, "in.txt -x --name n");
    CHECK(parse(&o, line, argv) == 1 && o.flag && !strcmp(argv[1], "in.txt") && !argv[2]);
    snprintf(line, sizeof line, "-xN n -- --steps");
    CHECK(parse(&o, line, argv) == 1 && o.flag && !strcmp(o.name, "n") &&
          !strcmp(argv[1], "--steps") && o.steps == 0); /* after --, words are arguments */
    CHECK(run(&o, "-") == 1);                           /* "-" is an argument (stdin) */
    CHECK(fails_with(&o, "a b", "unexpected argument 'b'"));
    CHECK(fails_with(&o, "--flag=1", "--flag takes no value, not '1'"));
    CHECK(fails_with(&o, "--steps", "--steps wants a value: --steps N"));
    CHECK(fails_with(&o, "-N", "-N wants a value: -N NAME"));
}

static void range_errors(void) {
    opts o;
    CHECK(fails_with(&o, "--steps abc", "--steps wants a whole number 0..2^64-1, not 'abc'"));
    CHECK(fails_with(&o, "--steps 18446744073709551616",
                     "--steps must be 0..2^64-1 (got 18446744073709551616)"));
    CHECK(fails_with(&o, "--steps -1", "--steps must be 0..2^64-1 (got -1)"));
    CHECK(fails_with(&o, "--steps 1e3", "--steps wants a whole number 0..2^64-1, not '1e3'"));
    CHECK(fails_with(&o, "--steps= ", "--steps wants a whole number 0..2^64-1, not ''"));
    /* 4294967297 is 1 once cast to int: the range is checked first */
    CHECK(fails_with(&o, "--layers 4294967297", "--layers must be 1..80 (got 4294967297)"));
    CHECK(fails_with(&o, "--layers 0", "--layers must be 1..80 (got 0)") && o.layers == 0);
    CHECK(fails_with(&o, "--layers=81", "--layers must be 1..80 (got 81)"));
    CHECK(fails_with(&o, "--layers 3x", "--layers wants a whole number 1..80, not '3x'"));
    CHECK(fails_with(&o, "--lr 10", "--lr must be in (0, 10) (got 10)"));
    CHECK(fails_with(&o, "--lr 0", "--lr must be in (0, 10) (got 0)"));
    CHECK(fails_with(&o, "--lr nan", "--lr wants a number in (0, 10), not 'nan'"));
    CHECK(fails_with(&o, "--lr 1e999", "--lr must be in (0, 10) (got 1e999)"));
    CHECK(fails_with(&o, "--temperature -1", "--temperature must be >= 0 (got -1)"));
    CHECK(fails_with(&o, "--temperature inf", "--temperature must be >= 0 (got inf)"));
    CHECK(fails_with(&o, "--top-p 0", "--top-p must be in (0, 1] (got 0)"));
    CHECK(run(&o, "--top-p 1") == 0 && o.top_p == 1);
    CHECK(fails_with(&o, "--model huge", "--model wants tiny, small or char, not 'huge'"));
    CHECK(fails_with(&o, "--add-class cat --add-class abcdefghijklmnopq",
                     "--add-class: 'abcdefghijklmnopq' is not a class name") &&
          o.classes == 1);
    /* words the shell kept whole */
    ROWS(&o);
    char *argv[] = {"t", "--lr", " 1", "--layers", "", NULL};
    CHECK(kopt_try(&info, rows, 3, argv, err, sizeof err) == KOPT_ERROR &&
          !strcmp(err, "--lr wants a number in (0, 10), not ' 1'"));
    CHECK(kopt_try(&info, rows, 3, argv + 2, err, sizeof err) == KOPT_ERROR &&
          !strcmp(err, "--layers wants a whole number 1..80, not ''"));
}

static void unknown_options(void) {
    opts o;
    CHECK(fails_with(&o, "--stpes 5", "unknown option --stpes (did you mean --steps?)"));
    CHECK(fails_with(&o, "--ste 5", "unknown option --ste (did you mean --steps?)"));
    CHECK(fails_with(&o, "--hlep", "unknown option --hlep (did you mean --help?)"));
    CHECK(fails_with(&o, "--no-such-option", "unknown option --no-such-option"));
    CHECK(fails_with(&o, "-q", "unknown option -q"));
    CHECK(fails_with(&o, "-steps 5", "unknown option -s (did you mean --steps?)"));
    CHECK(run(&o, "--help --steps abc") == KOPT_HELP); /* help first: the rest is not read */
    CHECK(run(&o, "-h") == KOPT_HELP && run(&o, "--version") == KOPT_VERSION);
}

static void between_options(void) {
    opts o;
    CHECK(fails_with(&o, "-x", "--flag needs --name (it names things)"));
    CHECK(run(&o, "-x -N a") == 0 && o.flag);
    CHECK(fails_with(&o, "-f -x -N a", "--full and --flag do not go together"));
    CHECK(fails_with(&o, "-fx -N a", "--full and --flag do not go together"));
    const kopt_info none = {.about = "x"};
    const char *file = NULL;
    kopt rows[] = {KOPT_STRING(0, "file", &file, "FILE", "the file", .flags = KOPT_REQUIRED),
                   KOPT_END()};
    char *argv[] = {"t", "--file", "f", NULL};
    CHECK(kopt_try(&none, rows, 3, argv, err, sizeof err) == 0 && !strcmp(file, "f"));
    CHECK(kopt_try(&none, rows, 1, argv, err, sizeof err) == KOPT_ERROR &&
          !strcmp(err, "--file FILE is required"));
}

/* `kiln STAGE ARGS...`: the first word ends the options, the rest is kept as it is. */
static void stop_at_argument(void) {
    const kopt_info dispatcher = {.about = "x", .max_args = 1 << 20, .stop_at_arg = true};
    bool flag = false;
    kopt rows[] = {KOPT_BOOL('v', "verbose", &flag, "talk"), KOPT_END()};
    char *argv[] = {"kiln", "-v", "train", "--steps", "5", "-v", NULL};
    CHECK(kopt_try(&dispatcher, rows, 6, argv, err, sizeof err) == 4 && flag);
    CHECK(!strcmp(argv[1], "train") && !strcmp(argv[2], "--steps") && !strcmp(argv[4], "-v") &&
          !argv[5]);
}

static bool has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return true;
    return false;
}

static void help_text(void) {
    opts o = {0};
    ROWS(&o);
    kiln_set_prog("kiln-test");
    char *help = kopt_help(&info, rows);
    const char *start = "kiln test — a stage for the tests\n"
                        "usage: test [--steps N] [FILE]\n"
                        "Text before the options.\n"
                        "\n"
                        "model:\n";
    CHECK(!strncmp(help, start, strlen(start)));
    CHECK(has_line(help, "      --model PRESET    the model's size"));
    CHECK(has_line(help, "  -N, --name NAME       a name (also --called)"));
    CHECK(has_line(help, "  -x, --flag            a flag"));
    CHECK(has_line(help, "      --add-class NAME  a class; repeatable"));
    CHECK(has_line(help, "  -h, --help            this help"));
    CHECK(has_line(help, "      --version         the version"));
    /* groups in table order, each heading after a blank line */
    const char *model = strstr(help, "\n\nmodel:\n"), *training = strstr(help, "\n\ntraining:\n"),
               *sampling = strstr(help, "\n\nsampling:\n");
    CHECK(model && training && sampling && model < training && training < sampling);
    CHECK(strstr(help, "  --steps N") > training && strstr(help, "  --top-k K") > sampling);
    /* a long help wraps under its column, within the width */
    CHECK(has_line(help, "      --top-p P         draw among the most likely tokens whose "
                         "probability sums to P"));
    CHECK(has_line(help, "                        (default 1: all)"));
    for (const char *line = help; *line; line += strcspn(line, "\n") + 1)
        CHECK(strcspn(line, "\n") <= 92 + 1); /* (the em dash is 3 bytes) */
    const char *end = "\n  -h, --help            this help\n"
                      "      --version         the version\n"
                      "\n"
                      "example:\n"
                      "  test --steps 5\n";
    size_t n = strlen(help);
    CHECK(n > strlen(end) && !strcmp(help + n - strlen(end), end));
    free(help);
}

static void program_names(void) {
    kiln_set_prog("/usr/local/bin/kiln-train");
    CHECK(!strcmp(kiln_prog(), "kiln train"));
    kiln_set_prog("kiln-sample");
    CHECK(!strcmp(kiln_prog(), "kiln sample"));
    kiln_set_prog("bin/kiln");
    CHECK(!strcmp(kiln_prog(), "kiln"));
    kiln_set_prog("my-tool");
    CHECK(!strcmp(kiln_prog(), "my-tool"));
    const char *stages[] = {"augment", "batch", "sample", "show", "train", "tokenize"};
    CHECK(!strcmp(kiln_closest("trian", stages, 6), "train"));
    CHECK(!strcmp(kiln_closest("shwo", stages, 6), "show"));
    CHECK(!strcmp(kiln_closest("tok", stages, 6), "tokenize")); /* an abbreviation */
    CHECK(kiln_closest("s", stages, 6) == NULL);                /* too short to guess */
    CHECK(kiln_closest("frobnicate", stages, 6) == NULL);
}

int main(void) {
    each_type();
    flags_and_words();
    range_errors();
    unknown_options();
    between_options();
    stop_at_argument();
    help_text();
    program_names();
    return check_report("test_options");
}
