/* judge — lexicons (an open-addressing table of phrases) and the built-in scores. */
#include "data/judge.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"

enum { MAX_PHRASE_WORDS = 4, MAX_PHRASE_BYTES = 256 };

typedef struct entry {
    char *phrase; /* lower-case words joined by single spaces; NULL: an empty slot */
    double score;
} entry;

struct kjudge_lexicon {
    entry *slots;
    size_t cap, n; /* cap a power of two, kept over twice n */
    int max_words; /* the longest phrase's words */
};

/* ---- words ------------------------------------------------------------------------------ */

static bool word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The next word of text from *at: [*start, *end), apostrophes kept only inside a word.
 * false when none is left. */
static bool next_word(const char *text, size_t n, size_t *at, size_t *start, size_t *end) {
    size_t i = *at;
    while (i < n && !word_byte((unsigned char)text[i])) i++;
    if (i == n) return *at = n, false;
    *start = i;
    while (i < n && (word_byte((unsigned char)text[i]) ||
                     (text[i] == '\'' && i + 1 < n && word_byte((unsigned char)text[i + 1]))))
        i++;
    *end = *at = i;
    return true;
}

size_t kjudge_word_count(const char *text, size_t n) {
    size_t at = 0, s, e, count = 0;
    while (next_word(text, n, &at, &s, &e)) count++;
    return count;
}

/* ---- the table -------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static entry *slot_of(const kjudge_lexicon *x, const char *s, size_t n) {
    size_t i = (size_t)hash_bytes(s, n) & (x->cap - 1);
    while (x->slots[i].phrase &&
           (strlen(x->slots[i].phrase) != n || memcmp(x->slots[i].phrase, s, n)))
        i = (i + 1) & (x->cap - 1);
    return &x->slots[i];
}

static void grow(kjudge_lexicon *x) {
    entry *old = x->slots;
    size_t old_cap = x->cap;
    x->cap = old_cap ? old_cap * 2 : 1024;
    x->slots = xcalloc(x->cap, sizeof(entry));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].phrase) *slot_of(x, old[i].phrase, strlen(old[i].phrase)) = old[i];
    free(old);
}

/* Add a phrase (normalised: its words lower-cased, one space between); a repeated phrase
 * keeps its last score.  Returns its word count (0: no words). */
static int add_phrase(kjudge_lexicon *x, const char *text, size_t n, double score) {
    char norm[MAX_PHRASE_BYTES];
    size_t at = 0, s, e, len = 0;
    int words = 0;
    while (next_word(text, n, &at, &s, &e)) {
        if (len + (e - s) + 2 > sizeof norm) return -1;
        if (words++) norm[len++] = ' ';
        for (size_t i = s; i < e; i++)
            norm[len++] =
                (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] - 'A' + 'a') : text[i];
    }
    if (!words) return 0;
    if (2 * (x->n + 1) > x->cap) grow(x);
    entry *slot = slot_of(x, norm, len);
    if (!slot->phrase)
        slot->phrase = xmalloc(len + 1), memcpy(slot->phrase, norm, len), slot->phrase[len] = 0,
        x->n++;
    slot->score = score;
    if (words > x->max_words) x->max_words = words;
    return words;
}

/* One line of a lexicon file: "phrase<TAB>score" or a word; false with the reason. */
static bool parse_line(kjudge_lexicon *x, char *line, bool scored, const char **why) {
    size_t n = strcspn(line, "\r\n");
    line[n] = 0;
    if (!n || line[0] == '#') return true;
    double score = 1.0;
    char *tab = strrchr(line, '\t');
    if (scored) {
        char *end;
        if (!tab) return *why = "wants \"phrase<TAB>score\"", false;
        errno = 0;
        score = strtod(tab + 1, &end);
        if (end == tab + 1 || *end || errno || !isfinite(score))
            return *why = "the score is not a number", false;
        n = (size_t)(tab - line);
    }
    int words = add_phrase(x, line, n, score);
    if (words < 0 || words > MAX_PHRASE_WORDS)
        return *why = "a phrase of more than 4 words or 250 bytes", false;
    if (words == 0 && scored) return *why = "no word before the score", false;
    return true;
}

kjudge_lexicon *kjudge_lexicon_load(const char *path, bool scored, int *code, char *err,
                                    size_t errsz) {
    FILE *f = fopen(path, "r");
    if (!f) return *code = kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(errno)), NULL;
    kjudge_lexicon *x = xcalloc(1, sizeof *x);
    grow(x);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    const char *why = NULL;
    while (getline(&line, &cap, f) >= 0 && !why) {
        lineno++;
        parse_line(x, line, scored, &why);
    }
    bool read_error = ferror(f);
    free(line);
    fclose(f);
    *code = 0;
    if (read_error)
        *code = kiln_errf(err, errsz, EX_KILN_IO, "%s: read error", path);
    else if (why)
        *code = kiln_errf(err, errsz, EX_KILN_DATA, "%s:%zu: %s", path, lineno, why);
    else if (!x->n)
        *code = kiln_errf(err, errsz, EX_KILN_DATA, "%s: no entries", path);
    if (*code) kjudge_lexicon_free(x), x = NULL;
    return x;
}

void kjudge_lexicon_free(kjudge_lexicon *x) {
    if (!x) return;
    for (size_t i = 0; i < x->cap; i++) free(x->slots[i].phrase);
    free(x->slots);
    free(x);
}

size_t kjudge_lexicon_size(const kjudge_lexicon *x) {
    return x->n;
}

/* ---- scores ----------------------------------------------------------------------------- */

/* The entry for words [w, w + k) of the word spans, or NULL. */
static const entry *lookup(const kjudge_lexicon *x, const char *text, const size_t (*span)[2],
                           int k) {
    char key[MAX_PHRASE_BYTES];
    size_t len = 0;
    for (int i = 0; i < k; i++) {
        size_t s = span[i][0], e = span[i][1];
        if (len + (e - s) + 2 > sizeof key) return NULL;
        if (i) key[len++] = ' ';
        for (size_t j = s; j < e; j++)
            key[len++] = (text[j] >= 'A' && text[j] <= 'Z') ? (char)(text[j] - 'A' + 'a') : text[j];
    }
    const entry *e = slot_of(x, key, len);
    return e->phrase ? e : NULL;
}

/* Walk text's words, matching the longest phrase at each; fn sees each word or phrase
 * (its entry or NULL) with the words it covers. */
typedef void (*match_fn)(void *ctx, const entry *e, int words);

static void match_words(const kjudge_lexicon *x, const char *text, size_t n, match_fn fn,
                        void *ctx) {
    size_t span[MAX_PHRASE_WORDS][2], at = 0;
    int have = 0; /* words looked ahead, in span */
    for (;;) {
        while (have < x->max_words && next_word(text, n, &at, &span[have][0], &span[have][1]))
            have++;
        if (!have) return;
        int k = have;
        const entry *e = NULL;
        for (; k > 0 && !(e = lookup(x, text, (const size_t(*)[2])span, k)); k--) {
        }
        int used = e ? k : 1;
        fn(ctx, e, used);
        memmove(span, span + used, sizeof(span[0]) * (size_t)(have - used));
        have -= used;
    }
}

typedef struct tally {
    double sum;
    size_t words, known;
} tally;

static void count_match(void *ctx, const entry *e, int words) {
    tally *t = ctx;
    t->words += (size_t)words;
    if (e) t->sum += e->score, t->known += (size_t)words;
}

double kjudge_valence(const kjudge_lexicon *x, const char *text, size_t n, bool mean) {
    tally t = {0};
    match_words(x, text, n, count_match, &t);
    if (!mean) return t.sum;
    return t.words ? t.sum / (double)t.words : 0.0;
}

double kjudge_known_share(const kjudge_lexicon *x, const char *text, size_t n) {
    tally t = {0};
    match_words(x, text, n, count_match, &t);
    return t.words ? (double)t.known / (double)t.words : 0.0;
}

double kjudge_repetition(const int32_t *tok, int n, int ngram) {
    if (ngram < 1 || n < ngram) return 0.0;
    int grams = n - ngram + 1, repeats = 0;
    for (int i = 1; i < grams; i++) /* quadratic: completions are short */
        for (int j = 0; j < i; j++)
            if (!memcmp(tok + i, tok + j, sizeof(int32_t) * (size_t)ngram)) {
                repeats++;
                break;
            }
    return repeats ? -(double)repeats / grams : 0.0; /* not -0.0 */
}

double kjudge_length(int n, int target) {
    return target > 0 && n != target ? -fabs((double)n - target) / target : 0.0;
}

double kjudge_brightness(const ktensor *image) {
    uint64_t numel;
    if (image->dtype != KT_U8 || !ktensor_numel(image, &numel) || numel == 0) return -1.0;
    const uint8_t *p = image->data;
    double sum = 0.0;
    for (uint64_t i = 0; i < numel; i++) sum += p[i];
    return sum / (double)numel / 255.0;
}

/* ---- a program as the judge ------------------------------------------------------------ */

static void set_env(const char *name, const char *s, size_t n) {
    char *v = xmalloc(n + 1);
    memcpy(v, s, n), v[n] = 0;
    setenv(name, v, 1);
    free(v);
}

/* In the child: stdin and stdout on the pipes, the rollout in the environment, the shell. */
_Noreturn static void run_child(const char *cmd, const char *prompt, size_t prompt_n, uint64_t id,
                                uint64_t k, int in, int out) {
    char num[32];
    signal(SIGPIPE, SIG_DFL); /* kiln ignores it; a program expects the default */
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0) _exit(126);
    close(in), close(out);
    if (prompt) set_env("KILN_PROMPT", prompt, prompt_n);
    snprintf(num, sizeof num, "%llu", (unsigned long long)id);
    setenv("KILN_ID", num, 1);
    snprintf(num, sizeof num, "%llu", (unsigned long long)k);
    setenv("KILN_K", num, 1);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

/* What a program printed: its last OUT_TAIL bytes, where its last line is (the score). */
#define OUT_TAIL 4096
typedef struct {
    char b[OUT_TAIL + 1]; /* and a NUL */
    size_t n;
    bool cut; /* bytes before b[0] were dropped */
} out_tail;

static void tail_add(out_tail *t, const char *s, size_t n) {
    if (n >= OUT_TAIL) {
        memcpy(t->b, s + n - OUT_TAIL, OUT_TAIL);
        t->cut |= t->n > 0 || n > OUT_TAIL;
        t->n = OUT_TAIL;
        return;
    }
    if (t->n + n > OUT_TAIL) {
        size_t drop = t->n + n - OUT_TAIL;
        memmove(t->b, t->b + drop, t->n - drop);
        t->n -= drop;
        t->cut = true;
    }
    memcpy(t->b + t->n, s, n);
    t->n += n;
}

/* The text in, the output out, at the same time: a program may answer as it reads (echo each
 * line), and once both pipes are full neither side could move if the text went in first.  A
 * program that stops reading early is its own business (EPIPE ends the writing). */
static void exchange(int in, int out, const char *s, size_t n, out_tail *t) {
    if (fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK) < 0 || n == 0) close(in), in = -1;
    char buf[16384];
    while (in >= 0 || out >= 0) {
        struct pollfd p[2] = {{in, POLLOUT, 0}, {out, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[0].revents) {
            ssize_t k = write(in, s, n);
            if (k > 0) s += k, n -= (size_t)k;
            if ((k < 0 && errno != EINTR && errno != EAGAIN) || n == 0) close(in), in = -1;
        }
        if (p[1].revents) {
            ssize_t k = read(out, buf, sizeof buf);
            if (k > 0) tail_add(t, buf, (size_t)k);
            if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) close(out), out = -1;
        }
    }
    if (in >= 0) close(in);
    if (out >= 0) close(out);
}

/* The program's last line, NUL-terminated in t->b (trailing white space dropped); NULL when
 * it is longer than what was kept. */
static const char *last_line(out_tail *t) {
    for (char c; t->n && ((c = t->b[t->n - 1]) == ' ' || c == '\t' || c == '\r' || c == '\n');)
        t->n--;
    size_t i = t->n;
    while (i && t->b[i - 1] != '\n') i--;
    t->b[t->n] = 0;
    return i == 0 && t->cut ? NULL : t->b + i;
}

/* The score: the program's last line is one finite number (65 naming what it printed). */
static int parse_score(const char *cmd, const char *line, double *score, char *err, size_t errsz) {
    char *end = NULL;
    double v = 0;
    errno = 0;
    if (line) v = strtod(line, &end);
    if (!line || end == line || *end || errno || !isfinite(v))
        return kiln_errf(err, errsz, EX_KILN_DATA, "'%s' printed '%.60s', not a number", cmd,
                         line ? line : "(a last line over 4 KiB)");
    *score = v;
    return 0;
}

int kjudge_cmd(const char *cmd, const char *prompt, size_t prompt_n, uint64_t id, uint64_t k,
               const char *text, size_t n, double *score, char *err, size_t errsz) {
    int to[2], from[2];
    if (pipe(to)) return kiln_errf(err, errsz, EX_KILN_IO, "--cmd: pipe: %s", strerror(errno));
    if (pipe(from)) {
        close(to[0]), close(to[1]);
        return kiln_errf(err, errsz, EX_KILN_IO, "--cmd: pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        return kiln_errf(err, errsz, EX_KILN_IO, "--cmd: fork: %s", strerror(errno));
    }
    if (pid == 0)
        close(to[1]), close(from[0]), run_child(cmd, prompt, prompt_n, id, k, to[0], from[1]);
    close(to[0]), close(from[1]);
    out_tail *t = xcalloc(1, sizeof *t);
    exchange(to[1], from[0], text ? text : "", text ? n : 0, t);
    int status, rc = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            free(t);
            return kiln_errf(err, errsz, EX_KILN_IO, "--cmd: waitpid: %s", strerror(errno));
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        rc = kiln_errf(err, errsz, EX_KILN_IO, "'%s' %s %d", cmd,
                       WIFEXITED(status) ? "exited with status" : "was killed by signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    else
        rc = parse_score(cmd, last_line(t), score, err, errsz);
    free(t);
    return rc;
}
