/* options — the table-driven option parser and help generator (stream/options.h). */
#include "stream/options.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HELP_WIDTH = 92, HELP_MAX_SPEC = 26 };

/* ---- the table ------------------------------------------------------------------------------ */

static bool is_option(const kopt *r) {
    return r->type != KOPT_END && r->type != KOPT_GROUP;
}

static bool takes_value(const kopt *r) {
    return r->type != KOPT_BOOL;
}

static size_t count_rows(const kopt *rows) {
    size_t n = 0;
    while (rows[n].type != KOPT_END) n++;
    return n;
}

/* How messages name a row the user did not type: its long name, else its letter. */
static const char *row_name(const kopt *r, char *buf, size_t n) {
    if (r->name)
        snprintf(buf, n, "--%s", r->name);
    else
        snprintf(buf, n, "-%c", r->letter);
    return buf;
}

static long find_long(const kopt *rows, const char *name, size_t len) {
    for (long i = 0; rows[i].type != KOPT_END; i++) {
        const kopt *r = &rows[i];
        if (!is_option(r)) continue;
        if (r->name && strlen(r->name) == len && !strncmp(r->name, name, len)) return i;
        if (r->alias && strlen(r->alias) == len && !strncmp(r->alias, name, len)) return i;
    }
    return -1;
}

static long find_letter(const kopt *rows, char letter) {
    for (long i = 0; rows[i].type != KOPT_END; i++)
        if (is_option(&rows[i]) && rows[i].letter == letter) return i;
    return -1;
}

static bool claims(const kopt *rows, const char *name, char letter) {
    return find_long(rows, name, strlen(name)) >= 0 || (letter && find_letter(rows, letter) >= 0);
}

/* A table that cannot work is the program's bug, not the user's: say so at once. */
static void check_table(const kopt *rows) {
    char a[64];
    for (const kopt *r = rows; r->type != KOPT_END; r++) {
        if (!is_option(r)) continue;
        const char *bad = NULL;
        if (!r->name && !r->letter)
            bad = "has neither a name nor a letter";
        else if (!r->dest)
            bad = "has no destination";
        else if (r->type == KOPT_INT &&
                 (r->imin < INT_MIN || r->imax > INT_MAX || r->imin > r->imax))
            bad = "has a range outside int";
        else if ((r->type == KOPT_U64 && r->umin > r->umax) ||
                 (r->type == KOPT_DOUBLE && !(r->dmin <= r->dmax)))
            bad = "has an empty range";
        else if ((r->type == KOPT_CHOICE && !r->choices) || (r->type == KOPT_CALL && !r->fn))
            bad = "lacks its choices or handler";
        else if ((r->needs && find_long(rows, r->needs, strlen(r->needs)) < 0) ||
                 (r->conflicts && find_long(rows, r->conflicts, strlen(r->conflicts)) < 0))
            bad = "refers to an option the table lacks";
        else if ((r->name && find_long(rows, r->name, strlen(r->name)) != r - rows) ||
                 (r->letter && find_letter(rows, r->letter) != r - rows))
            bad = "is declared twice";
        if (bad) kiln_die(EX_KILN_SOFTWARE, "option table: %s %s", row_name(r, a, sizeof a), bad);
    }
}

/* ---- values ------------------------------------------------------------------------------- */

/* An optional sign and decimal digits; the magnitude saturates (overflow set) past 2^64-1. */
static bool parse_whole(const char *s, bool *negative, uint64_t *magnitude, bool *overflow) {
    *negative = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!isdigit((unsigned char)*s)) return false;
    *magnitude = 0;
    *overflow = false;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (*magnitude > (UINT64_MAX - d) / 10) *overflow = true;
        *magnitude = *overflow ? UINT64_MAX : *magnitude * 10 + d;
    }
    return *s == '\0';
}

/* The accepted values as messages put them: "1..80", "in (0, 10)", ">= 0". */
static void range_text(const kopt *r, char *buf, size_t n) {
    if (r->type == KOPT_INT) {
        snprintf(buf, n, "%lld..%lld", r->imin, r->imax);
    } else if (r->type == KOPT_U64) {
        if (r->umax == UINT64_MAX)
            snprintf(buf, n, "%llu..2^64-1", (unsigned long long)r->umin);
        else
            snprintf(buf, n, "%llu..%llu", (unsigned long long)r->umin,
                     (unsigned long long)r->umax);
    } else if (isinf(r->dmax)) {
        snprintf(buf, n, "%s %g", r->flags & KOPT_OPEN_MIN ? ">" : ">=", r->dmin);
    } else {
        snprintf(buf, n, "in %c%g, %g%c", r->flags & KOPT_OPEN_MIN ? '(' : '[', r->dmin, r->dmax,
                 r->flags & KOPT_OPEN_MAX ? ')' : ']');
    }
}

static bool in_double_range(const kopt *r, double v) {
    bool above = r->flags & KOPT_OPEN_MIN ? v > r->dmin : v >= r->dmin;
    bool below = r->flags & KOPT_OPEN_MAX ? v < r->dmax : v <= r->dmax;
    return isfinite(v) && above && below;
}

/* The number in arg, range-checked before it is stored: false with the message in err. */
static bool store_number(const kopt *r, const char *name, const char *arg, char *err,
                         size_t errsz) {
    char range[96];
    range_text(r, range, sizeof range);
    if (r->type == KOPT_DOUBLE) {
        char *end;
        double v = strtod(arg, &end);
        if (!*arg || isspace((unsigned char)*arg) || *end || isnan(v))
            return kiln_errf(err, errsz, 0, "%s wants a number %s, not '%s'", name, range, arg);
        if (!in_double_range(r, v))
            return kiln_errf(err, errsz, 0, "%s must be %s (got %s)", name, range, arg);
        *(double *)r->dest = v;
        return true;
    }
    bool negative, overflow;
    uint64_t mag;
    if (!parse_whole(arg, &negative, &mag, &overflow))
        return kiln_errf(err, errsz, 0, "%s wants a whole number %s, not '%s'", name, range, arg);
    bool fits;
    if (r->type == KOPT_U64) {
        fits = !overflow && !(negative && mag) && mag >= r->umin && mag <= r->umax;
        if (fits) *(uint64_t *)r->dest = mag;
    } else {
        long long v = negative ? -(long long)(mag & LLONG_MAX) : (long long)(mag & LLONG_MAX);
        fits = !overflow && mag <= LLONG_MAX && v >= r->imin && v <= r->imax;
        if (fits) *(int *)r->dest = (int)v;
    }
    if (!fits) return kiln_errf(err, errsz, 0, "%s must be %s (got %s)", name, range, arg);
    return true;
}

/* "tiny, small or char" */
static void choice_list(const char *const *choices, char *buf, size_t n) {
    buf[0] = '\0';
    for (size_t i = 0; choices[i]; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", sep, choices[i]);
    }
}

static bool store_choice(const kopt *r, const char *name, const char *arg, char *err,
                         size_t errsz) {
    for (size_t i = 0; r->choices[i]; i++)
        if (!strcmp(r->choices[i], arg)) {
            *(const char **)r->dest = r->choices[i];
            return true;
        }
    char list[512];
    choice_list(r->choices, list, sizeof list);
    return kiln_errf(err, errsz, 0, "%s wants %s, not '%s'", name, list, arg);
}

static bool call_handler(const kopt *r, const char *name, const char *arg, char *err,
                         size_t errsz) {
    char why[768] = "";
    if (r->fn(r->dest, arg, why, sizeof why)) return true;
    if (why[0] == '-') return kiln_errf(err, errsz, 0, "%s", why);
    return kiln_errf(err, errsz, 0, "%s: %s", name, why[0] ? why : "bad value");
}

/* One option as typed (name: "--steps" or "-n"), with its argument when it takes one. */
static bool apply(const kopt *r, const char *name, const char *arg, char *err, size_t errsz) {
    switch (r->type) {
    case KOPT_BOOL:
        *(bool *)r->dest = true;
        break;
    case KOPT_INT:
    case KOPT_U64:
    case KOPT_DOUBLE:
        if (!store_number(r, name, arg, err, errsz)) return false;
        break;
    case KOPT_STRING:
        *(const char **)r->dest = arg;
        break;
    case KOPT_CHOICE:
        if (!store_choice(r, name, arg, err, errsz)) return false;
        break;
    case KOPT_CALL:
        if (!call_handler(r, name, arg, err, errsz)) return false;
        break;
    default:
        return kiln_errf(err, errsz, 0, "%s is not an option", name);
    }
    if (r->given) *r->given = true;
    return true;
}

/* ---- the command line ------------------------------------------------------------------- */

typedef struct parser {
    const kopt_info *info;
    const kopt *rows;
    bool *seen; /* per row */
    int argc, at;
    char **argv;
    char *err;
    size_t errsz;
    int result; /* KOPT_HELP or KOPT_VERSION once asked */
} parser;

/* The long names a misspelt option may have meant: the table's, then the built-in ones. */
static size_t long_names(const kopt *rows, const char **names, size_t cap) {
    size_t n = 0;
    for (const kopt *r = rows; r->type != KOPT_END && n + 4 < cap; r++) {
        if (is_option(r) && r->name) names[n++] = r->name;
        if (is_option(r) && r->alias) names[n++] = r->alias;
    }
    names[n++] = "help", names[n++] = "version";
    return n;
}

/* "unknown option --stpes (did you mean --steps?)"; typed is "--stpes" or "-s", word what
 * may be a misspelt long name ("stpes", or "steps" from "-steps"), or NULL. */
static bool unknown(parser *p, const char *typed, const char *word) {
    const char *names[256];
    size_t n = long_names(p->rows, names, 256);
    const char *guess = word ? kiln_closest(word, names, n) : NULL;
    if (guess)
        return kiln_errf(p->err, p->errsz, 0, "unknown option %s (did you mean --%s?)", typed,
                         guess);
    return kiln_errf(p->err, p->errsz, 0, "unknown option %s", typed);
}

static bool builtin(parser *p, const char *name, char letter) {
    if (claims(p->rows, name, letter)) return false;
    p->result = !strcmp(name, "help") ? KOPT_HELP : KOPT_VERSION;
    return true;
}

/* The argument of the option at argv[p->at]: after '=' or a letter, else the next word. */
static const char *value_of(parser *p, const kopt *r, const char *name, const char *attached) {
    if (attached) return attached;
    if (p->at + 1 < p->argc) return p->argv[++p->at];
    kiln_errf(p->err, p->errsz, 0, "%s wants a value: %s %s", name, name, r->arg ? r->arg : "X");
    return NULL;
}

static bool take(parser *p, long i, const char *name, const char *attached) {
    const kopt *r = &p->rows[i];
    const char *arg = NULL;
    if (takes_value(r) && !(arg = value_of(p, r, name, attached))) return false;
    if (!apply(r, name, arg, p->err, p->errsz)) return false;
    p->seen[i] = true;
    return true;
}

static bool long_option(parser *p, const char *word) {
    const char *body = word + 2, *eq = strchr(body, '=');
    size_t len = eq ? (size_t)(eq - body) : strlen(body);
    char name[160];
    snprintf(name, sizeof name, "--%.*s", (int)(len < 150 ? len : 150), body);
    long i = find_long(p->rows, body, len);
    if (i < 0) {
        if ((len == 4 && !strncmp(body, "help", 4)) || (len == 7 && !strncmp(body, "version", 7)))
            if (builtin(p, len == 4 ? "help" : "version", 0)) return true;
        return unknown(p, name, name + 2);
    }
    if (!takes_value(&p->rows[i]) && eq)
        return kiln_errf(p->err, p->errsz, 0, "%s takes no value, not '%s'", name, eq + 1);
    return take(p, i, name, eq ? eq + 1 : NULL);
}

/* -abc: flags a, b, c; -n5 and -n 5: n's value. */
static bool short_options(parser *p, const char *word) {
    for (const char *c = word + 1; *c; c++) {
        char name[3] = {'-', *c, 0};
        long i = find_letter(p->rows, *c);
        if (i < 0) {
            if (*c == 'h' && builtin(p, "help", 'h')) return true;
            return unknown(p, name, c == word + 1 && c[1] ? c : NULL); /* -steps: --steps? */
        }
        if (takes_value(&p->rows[i])) return take(p, i, name, c[1] ? c + 1 : NULL);
        if (!take(p, i, name, NULL)) return false;
    }
    return true;
}

/* The rules between options, checked once all are in. */
static bool check_given(parser *p) {
    char a[64], b[64];
    for (const kopt *r = p->rows; r->type != KOPT_END; r++) {
        if (!is_option(r)) continue;
        bool seen = p->seen[r - p->rows];
        const char *why = r->why ? r->why : "";
        const char *open = r->why ? " (" : "", *close = r->why ? ")" : "";
        if (seen && r->needs && !p->seen[find_long(p->rows, r->needs, strlen(r->needs))])
            return kiln_errf(p->err, p->errsz, 0, "%s needs --%s%s%s%s", row_name(r, a, sizeof a),
                             r->needs, open, why, close);
        if (seen && r->conflicts && p->seen[find_long(p->rows, r->conflicts, strlen(r->conflicts))])
            return kiln_errf(p->err, p->errsz, 0, "%s and --%s do not go together%s%s%s",
                             row_name(r, b, sizeof b), r->conflicts, open, why, close);
    }
    for (const kopt *r = p->rows; r->type != KOPT_END; r++)
        if (is_option(r) && (r->flags & KOPT_REQUIRED) && !p->seen[r - p->rows])
            return kiln_errf(p->err, p->errsz, 0, "%s%s%s is required", row_name(r, a, sizeof a),
                             r->arg ? " " : "", r->arg ? r->arg : "");
    return true;
}

/* Options are handled as they come; the other words move down to argv[1..nargs]. */
static int parse_words(parser *p) {
    int nargs = 0;
    for (p->at = 1; p->at < p->argc && !p->result; p->at++) {
        char *word = p->argv[p->at];
        bool rest = !strcmp(word, "--") || (p->info->stop_at_arg && (word[0] != '-' || !word[1]));
        if (rest) {
            for (int k = p->at + !strcmp(word, "--"); k < p->argc; k++)
                p->argv[1 + nargs++] = p->argv[k];
            break;
        }
        bool ok = true;
        if (word[0] != '-' || !word[1])
            p->argv[1 + nargs++] = word; /* an argument; "-" is one too (stdin) */
        else if (word[1] == '-')
            ok = long_option(p, word);
        else
            ok = short_options(p, word);
        if (!ok) return KOPT_ERROR;
    }
    if (1 + nargs < p->argc) p->argv[1 + nargs] = NULL;
    return nargs;
}

int kopt_try(const kopt_info *info, const kopt *rows, int argc, char **argv, char *err,
             size_t errsz) {
    check_table(rows);
    parser p = {.info = info,
                .rows = rows,
                .seen = xcalloc(count_rows(rows) + 1, sizeof(bool)),
                .argc = argc,
                .argv = argv,
                .err = err,
                .errsz = errsz};
    int nargs = parse_words(&p);
    if (nargs >= 0 && p.result) nargs = p.result;
    if (nargs > info->max_args) {
        kiln_errf(err, errsz, 0, "unexpected argument '%s'", argv[1 + info->max_args]);
        nargs = KOPT_ERROR;
    }
    if (nargs >= 0 && !check_given(&p)) nargs = KOPT_ERROR;
    free(p.seen);
    return nargs;
}

/* ---- --help ------------------------------------------------------------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void add(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void addf(text *t, const char *fmt, ...) KILN_PRINTF(2, 3);
static void addf(text *t, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) add(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void pad_to(text *t, size_t line_start, size_t col) {
    while (t->len - line_start < col) add(t, " ", 1);
}

/* The left column: "  -B, --batch ROWS", "      --pack", "  -n N". */
static void spec_of(const kopt *r, char *buf, size_t n) {
    const char *arg = takes_value(r) && r->arg ? r->arg : NULL;
    if (r->name)
        snprintf(buf, n, "  %c%c%s--%s%s%s", r->letter ? '-' : ' ', r->letter ? r->letter : ' ',
                 r->letter ? ", " : "  ", r->name, arg ? " " : "", arg ? arg : "");
    else
        snprintf(buf, n, "  -%c%s%s", r->letter, arg ? " " : "", arg ? arg : "");
}

/* words, wrapped at HELP_WIDTH: the first line goes on from where t ends, the others start
 * at col. */
static void add_wrapped(text *t, size_t line_start, size_t col, const char *words) {
    bool line_empty = true; /* no word on this line yet */
    size_t gap = 0;         /* spaces before the next word: two after a full stop stay two */
    for (const char *w = words; *w;) {
        if (*w == ' ') {
            gap++, w++;
            continue;
        }
        size_t n = strcspn(w, " \n");
        if (*w == '\n' || (!line_empty && t->len - line_start + gap + n > HELP_WIDTH)) {
            add(t, "\n", 1);
            line_start = t->len;
            pad_to(t, line_start, col);
            line_empty = true;
            gap = 0;
            w += *w == '\n';
            continue;
        }
        for (size_t i = 0; !line_empty && i < (gap ? gap : 1); i++) add(t, " ", 1);
        add(t, w, n);
        line_empty = false;
        gap = 0;
        w += n;
    }
    add(t, "\n", 1);
}

static void add_row(text *t, const kopt *r, size_t col) {
    char spec[160];
    spec_of(r, spec, sizeof spec);
    size_t start = t->len;
    add(t, spec, strlen(spec));
    if (t->len - start + 2 > col) { /* a long left column: the help starts below */
        add(t, "\n", 1);
        start = t->len;
    }
    pad_to(t, start, col);
    char help[2048];
    snprintf(help, sizeof help, "%s%s%s%s", r->help ? r->help : "", r->alias ? " (also --" : "",
             r->alias ? r->alias : "", r->alias ? ")" : "");
    add_wrapped(t, start, col, help);
}

static const kopt builtin_rows[] = {
    KOPT_BOOL('h', "help", NULL, "this help"),
    KOPT_BOOL(0, "version", NULL, "the version"),
    KOPT_END(),
};

/* The help column: wide enough for the left columns, but not for a rare long one. */
static size_t help_column(const kopt *rows) {
    size_t widest = 0;
    char spec[160];
    for (int pass = 0; pass < 2; pass++)
        for (const kopt *r = pass ? builtin_rows : rows; r->type != KOPT_END; r++) {
            if (!is_option(r)) continue;
            spec_of(r, spec, sizeof spec);
            size_t n = strlen(spec);
            if (n <= HELP_MAX_SPEC && n > widest) widest = n;
        }
    return widest + 2;
}

char *kopt_help(const kopt_info *info, const kopt *rows) {
    text t = {0};
    size_t col = help_column(rows);
    addf(&t, "%s%s%s — %s\n", kiln_prog(), info->command ? " " : "",
         info->command ? info->command : "", info->about ? info->about : "");
    if (info->usage) addf(&t, "usage: %s\n", info->usage);
    if (info->text) add(&t, info->text, strlen(info->text));
    if (is_option(&rows[0])) add(&t, "\noptions:\n", 10);
    for (const kopt *r = rows; r->type != KOPT_END; r++) {
        if (r->type == KOPT_GROUP) {
            add(&t, "\n", 1);
            size_t start = t.len;
            char heading[512];
            snprintf(heading, sizeof heading, "%s:", r->name);
            add_wrapped(&t, start, 2, heading);
        } else {
            add_row(&t, r, col);
        }
    }
    add(&t, "\n", 1);
    for (const kopt *r = builtin_rows; r->type != KOPT_END; r++)
        if (!claims(rows, r->name, r->letter)) add_row(&t, r, col);
    if (info->notes) {
        add(&t, "\n", 1);
        add(&t, info->notes, strlen(info->notes));
    }
    return t.s;
}

/* ---- exiting forms ------------------------------------------------------------------------ */

void kiln_usage_error(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help'.\n", kiln_prog(), buf, kiln_prog());
    exit(EX_KILN_USAGE);
}

int kopt_parse(const kopt_info *info, const kopt *rows, int argc, char **argv) {
    char err[1024];
    int n = kopt_try(info, rows, argc, argv, err, sizeof err);
    if (n == KOPT_ERROR && info->command) { /* the help to try is the subcommand's */
        fprintf(stderr, "%s: %s\nTry '%s %s --help'.\n", kiln_prog(), err, kiln_prog(),
                info->command);
        exit(EX_KILN_USAGE);
    }
    if (n == KOPT_ERROR) kiln_usage_error("%s", err);
    if (n == KOPT_HELP) {
        char *help = kopt_help(info, rows);
        fputs(help, stdout);
        free(help);
        exit(EX_KILN_OK);
    }
    if (n == KOPT_VERSION) {
        kiln_print_version();
        exit(EX_KILN_OK);
    }
    return n;
}

/* ---- a stage's command line --------------------------------------------------------------- */

void kiln_cli_init(kiln_cli *c, int argc, char **argv, kopt_info info) {
    kiln_set_prog(argc > 0 ? argv[0] : NULL);
    kiln_signals_init();
    *c = (kiln_cli){.fan_in = 1, .fan_out = 1, .info = info};
}

void kiln_cli_parse(kiln_cli *c, const kopt *rows, int argc, char **argv) {
    c->nargs = kopt_parse(&c->info, rows, argc, argv);
    c->args = argv + 1;
}

kreader *kiln_cli_reader(const kiln_cli *c) {
    return kreader_open(c->in, c->fan_in);
}

kwriter *kiln_cli_writer(const kiln_cli *c) {
    return kwriter_open(c->out, c->fan_out);
}

bool kopt_parse_shard(const char *arg, uint64_t *i, uint64_t *n, char *err, size_t errsz) {
    char buf[64];
    const char *slash = strchr(arg, '/');
    size_t len = slash ? (size_t)(slash - arg) : 0;
    bool ok = slash && len < sizeof buf;
    if (ok) memcpy(buf, arg, len), buf[len] = 0;
    ok = ok && parse_u64(buf, i) && parse_u64(slash + 1, n) && *n >= 1 && *i < *n;
    return ok || kiln_errf(err, errsz, 0, "--shard wants I/N with 0 <= I < N, not '%s'", arg);
}
