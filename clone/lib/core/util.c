/* util — program name, messages, checked allocation, parsing, signals. */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char prog_name[128] = "kiln";
static volatile sig_atomic_t stop_signal, stop_count;
static bool drain_on_stop;

void kiln_set_prog(const char *argv0) {
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL, *base = slash ? slash + 1 : argv0;
    snprintf(prog_name, sizeof prog_name, "%s", base && *base ? base : "kiln");
    /* A stage runs as kiln-NAME but is called `kiln NAME`: name it the way it was called. */
    if (!strncmp(prog_name, "kiln-", 5) && prog_name[5]) prog_name[4] = ' ';
}

const char *kiln_prog(void) {
    return prog_name;
}

static void vmessage(const char *fmt, va_list ap) {
    /* One fprintf per message so lines from concurrent stages do not interleave. */
    char buf[2048];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) n = 0;
    fprintf(stderr, "%s: %s\n", prog_name, buf);
}

void kiln_die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    exit(code);
}

void kiln_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

int kiln_errf(char *err, size_t errsz, int code, const char *fmt, ...) {
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void *check_alloc(void *p, size_t n) {
    if (!p && n) kiln_die(EX_KILN_SOFTWARE, "out of memory (%zu bytes)", n);
    return p;
}

void *xmalloc(size_t n) {
    return check_alloc(malloc(n ? n : 1), n);
}

void *xcalloc(size_t n, size_t size) {
    return check_alloc(calloc(n ? n : 1, size ? size : 1), xmul(n, size));
}

void *xrealloc(void *p, size_t n) {
    return check_alloc(realloc(p, n ? n : 1), n);
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

size_t xmul(size_t n, size_t size) {
    size_t r;
    if (__builtin_mul_overflow(n, size, &r))
        kiln_die(EX_KILN_SOFTWARE, "size overflow (%zu x %zu)", n, size);
    return r;
}

bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !isdigit((unsigned char)*s)) return false; /* strtoull would take " -1" */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool parse_i64(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool parse_f64(const char *s, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end) return false;
    *out = v;
    return true;
}

uint64_t opt_u64(const char *opt, const char *s) {
    uint64_t v;
    if (!parse_u64(s, &v))
        kiln_die(EX_KILN_USAGE, "%s wants a non-negative integer, not '%s'", opt, s ? s : "");
    return v;
}

double opt_f64(const char *opt, const char *s) {
    double v;
    if (!parse_f64(s, &v)) kiln_die(EX_KILN_USAGE, "%s wants a number, not '%s'", opt, s ? s : "");
    return v;
}

static void on_stop(int sig) {
    if (!stop_signal) stop_signal = sig;
    if (stop_count < 2) stop_count++;
}

void kiln_signals_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns EINTR and the loop sees the stop */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int kiln_stop_signal(void) {
    return stop_signal;
}

void kiln_drain_on_stop(bool drain) {
    drain_on_stop = drain;
}

bool kiln_stop_now(void) {
    return stop_signal && (!drain_on_stop || stop_count >= 2);
}

int kiln_stop_status(int sig) {
    return sig == SIGTERM ? EX_KILN_SIGTERM : EX_KILN_SIGINT;
}

double kiln_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kiln_print_version(void) {
    printf("%s (kiln) %s\n", prog_name, KILN_VERSION);
}

/* Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours ("trian" is one swap from "train") each cost 1. */
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    size_t *d = xmalloc(xmul(xmul(n + 1, m + 1), sizeof *d));
#define D(i, j) d[(i) * (m + 1) + (j)]
    for (size_t i = 0; i <= n; i++) D(i, 0) = i;
    for (size_t j = 0; j <= m; j++) D(0, j) = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t best = D(i - 1, j - 1) + (a[i - 1] != b[j - 1]);
            if (D(i - 1, j) + 1 < best) best = D(i - 1, j) + 1;
            if (D(i, j - 1) + 1 < best) best = D(i, j - 1) + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                D(i - 2, j - 2) + 1 < best)
                best = D(i - 2, j - 2) + 1;
            D(i, j) = best;
        }
    size_t dist = D(n, m);
#undef D
    free(d);
    return dist;
}

const char *kiln_closest(const char *word, const char *const *names, size_t n) {
    size_t len = strlen(word), best_dist = SIZE_MAX, prefixed = 0;
    const char *best = NULL, *prefix_of = NULL;
    for (size_t i = 0; i < n; i++) {
        if (len >= 2 && !strncmp(names[i], word, len)) prefixed++, prefix_of = names[i];
        size_t dist = edit_distance(word, names[i]);
        if (dist < best_dist) best_dist = dist, best = names[i];
    }
    if (prefixed == 1) return prefix_of; /* an abbreviation of one name */
    /* Close enough to be a slip of the fingers, not a different word. */
    return best && best_dist <= 2 && 2 * best_dist <= len ? best : NULL;
}
