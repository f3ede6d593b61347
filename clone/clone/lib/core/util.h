/* util — what every kiln program shares: its name in messages, exit codes, checked
 * allocation, number parsing and the interrupt flag that SIGINT/SIGTERM set. */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Exit codes (docs/architecture.md, "The record stream"; README.md, "Exit codes"). */
enum {
    EX_KILN_OK = 0,
    EX_KILN_USAGE = 2,     /* bad options */
    EX_KILN_DATA = 65,     /* bad input data */
    EX_KILN_SOFTWARE = 70, /* internal error, out of memory */
    EX_KILN_IO = 74,       /* I/O error or truncated stream */
    EX_KILN_SIGINT = 130,  /* interrupted by SIGINT after a clean flush */
    EX_KILN_SIGTERM = 143, /* interrupted by SIGTERM after a clean flush */
};

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

#define KILN_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* The program name used as the prefix of every message: argv[0]'s file name, with a stage
 * binary's "kiln-load" named the way it is called, "kiln load". */
void kiln_set_prog(const char *argv0);
const char *kiln_prog(void);

/* "prog: message" on stderr, then exit(code). */
_Noreturn void kiln_die(int code, const char *fmt, ...) KILN_PRINTF(2, 3);
/* "prog: message" on stderr. */
void kiln_warn(const char *fmt, ...) KILN_PRINTF(1, 2);

/* Write "fmt..." into err (when err is not NULL) and return code: for functions that hand
 * their caller an exit code and a message instead of exiting. */
int kiln_errf(char *err, size_t errsz, int code, const char *fmt, ...) KILN_PRINTF(4, 5);

/* Allocation that cannot fail: on failure the program says so and exits 70. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* n*size with overflow check; exits 70 on overflow. */
size_t xmul(size_t n, size_t size);

/* Strict number parsing: the whole string must be a number in range. */
bool parse_u64(const char *s, uint64_t *out);
bool parse_i64(const char *s, int64_t *out);
bool parse_f64(const char *s, double *out);
/* Option helpers: parse or exit 2 naming the option. */
uint64_t opt_u64(const char *opt, const char *s);
double opt_f64(const char *opt, const char *s);

/* The name among names[0..n) that word is most likely a misspelling or abbreviation of,
 * or NULL when none is close: for "did you mean ...?". */
const char *kiln_closest(const char *word, const char *const *names, size_t n);

/* Signals: SIGINT/SIGTERM set a flag (no SA_RESTART, so blocking reads return EINTR);
 * SIGPIPE is ignored so a closed downstream shows up as EPIPE. */
void kiln_signals_init(void);
/* 0 when no stop was requested, else the (first) signal number. */
int kiln_stop_signal(void);
/* Whether reading and the stage's loops must stop now.  A stage that consumes a stream
 * from another process keeps reading after the first SIGINT/SIGTERM until its upstream's
 * eos (interrupted) arrives, so the records in flight (train's final ckpt) are not lost;
 * the stream layer turns this on for such an input (kreader_open).  Then only a second
 * signal stops at once.  Without draining, the first signal stops. */
bool kiln_stop_now(void);
void kiln_drain_on_stop(bool drain);
/* The exit status for a stop by that signal: 130 or 143. */
int kiln_stop_status(int sig);

/* Monotonic seconds. */
double kiln_now(void);

/* Standard --version line. */
void kiln_print_version(void);

#endif
