/* options — one command-line parser for every stage.  A stage declares its options once, as
 * a table of rows (name, letter, type and range, destination, help line); the parser
 * range-checks every value before storing it, names the option in every error, suggests
 * the option a misspelt one meant, and generates --help from the same table.
 *
 *     kopt rows[] = {
 *         KOPT_GROUP("training"),
 *         KOPT_U64(0, "steps", &o->steps, "N", 0, UINT64_MAX, "stop after step N"),
 *         KOPT_DOUBLE(0, "lr", &o->lr, "X", 0, 10, "peak learning rate",
 *                     .flags = KOPT_OPEN_MIN | KOPT_OPEN_MAX, .given = &o->have_lr),
 *         KOPT_STREAM(cli),
 *         KOPT_END(),
 *     };
 *     kiln_cli_parse(cli, rows, argc, argv);
 *
 * Every stage also gets -h/--help and --version.  Errors exit 2 with
 * "kiln train: --steps wants a whole number 0..2^64-1, not 'abc'" and a pointer to --help. */
#ifndef KILN_OPTIONS_H
#define KILN_OPTIONS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "stream/stream.h"
#include "stream/znet.h"

typedef enum kopt_type {
    KOPT_END,    /* ends a table */
    KOPT_GROUP,  /* a heading in --help for the rows after it; name is the heading */
    KOPT_BOOL,   /* a flag: *(bool *)dest = true */
    KOPT_INT,    /* *(int *)dest: a whole number in [imin, imax] (within int) */
    KOPT_U64,    /* *(uint64_t *)dest: a whole number in [umin, umax] */
    KOPT_DOUBLE, /* *(double *)dest: a finite number in [dmin, dmax]; flags open the ends */
    KOPT_STRING, /* *(const char **)dest = the argument itself */
    KOPT_CHOICE, /* *(const char **)dest = the argument, one of choices */
    KOPT_CALL,   /* fn(dest, argument): special syntax, repeatable options */
} kopt_type;

enum {
    KOPT_REQUIRED = 1, /* the option must be given */
    KOPT_OPEN_MIN = 2, /* KOPT_DOUBLE: dmin itself is refused */
    KOPT_OPEN_MAX = 4, /* KOPT_DOUBLE: dmax itself is refused */
};

/* A KOPT_CALL row's handler: false with a message in err (naming the option or not: the
 * parser puts the option's name in front of one that does not start with '-'). */
typedef bool (*kopt_fn)(void *dest, const char *arg, char *err, size_t errsz);

typedef struct kopt {
    kopt_type type;
    const char *name; /* long name without "--" (NULL: a letter only), or the group heading */
    char letter;      /* short name, or 0 */
    void *dest;
    const char *arg;  /* the argument's placeholder in help and messages: "N", "FILE" */
    const char *help; /* one paragraph, wrapped by the help generator; '\n' breaks a line */
    bool *given;      /* set true when the option appears, for a stage that must know */
    unsigned flags;
    long long imin, imax;
    uint64_t umin, umax;
    double dmin, dmax;
    const char *const *choices; /* KOPT_CHOICE: the names, NULL-terminated */
    kopt_fn fn;                 /* KOPT_CALL */
    const char *alias;          /* a second long name (--colors beside --colours) */
    const char *needs;          /* long name of an option that must be given with this one */
    const char *conflicts;      /* long name of an option that must not be given with it */
    const char *why;            /* said after a needs or conflicts message */
} kopt;

/* Rows, each macro named after the type it makes.  The last argument is the help text;
 * designated fields may follow it
 * (.given = &x, .flags = KOPT_REQUIRED, .needs = "lora", ...). */
#define KOPT_END()                                                                                 \
    { .type = KOPT_END }
#define KOPT_GROUP(heading)                                                                        \
    { .type = KOPT_GROUP, .name = (heading) }
#define KOPT_BOOL(letter_, name_, dest_, ...)                                                      \
    {                                                                                              \
        .type = KOPT_BOOL, .letter = (letter_), .name = (name_), .dest = (dest_),                  \
        .help = __VA_ARGS__                                                                        \
    }
#define KOPT_INT(letter_, name_, dest_, arg_, lo, hi, ...)                                         \
    {                                                                                              \
        .type = KOPT_INT, .letter = (letter_), .name = (name_), .dest = (dest_), .arg = (arg_),    \
        .imin = (lo), .imax = (hi), .help = __VA_ARGS__                                            \
    }
#define KOPT_U64(letter_, name_, dest_, arg_, lo, hi, ...)                                         \
    {                                                                                              \
        .type = KOPT_U64, .letter = (letter_), .name = (name_), .dest = (dest_), .arg = (arg_),    \
        .umin = (lo), .umax = (hi), .help = __VA_ARGS__                                            \
    }
#define KOPT_DOUBLE(letter_, name_, dest_, arg_, lo, hi, ...)                                      \
    {                                                                                              \
        .type = KOPT_DOUBLE, .letter = (letter_), .name = (name_), .dest = (dest_), .arg = (arg_), \
        .dmin = (lo), .dmax = (hi), .help = __VA_ARGS__                                            \
    }
#define KOPT_STRING(letter_, name_, dest_, arg_, ...)                                              \
    {                                                                                              \
        .type = KOPT_STRING, .letter = (letter_), .name = (name_), .dest = (dest_), .arg = (arg_), \
        .help = __VA_ARGS__                                                                        \
    }
#define KOPT_CHOICE(letter_, name_, dest_, arg_, choices_, ...)                                    \
    {                                                                                              \
        .type = KOPT_CHOICE, .letter = (letter_), .name = (name_), .dest = (dest_), .arg = (arg_), \
        .choices = (choices_), .help = __VA_ARGS__                                                 \
    }
#define KOPT_CALL(letter_, name_, dest_, fn_, arg_, ...)                                           \
    {                                                                                              \
        .type = KOPT_CALL, .letter = (letter_), .name = (name_), .dest = (dest_), .fn = (fn_),     \
        .arg = (arg_), .help = __VA_ARGS__                                                         \
    }

/* ---- rows several stages share -------------------------------------------------------------- */

/* Where records come from (c: a kiln_cli *). */
#define KOPT_STREAM_IN_ROWS(c)                                                                     \
    KOPT_STRING(0, "in", &(c)->in, "URL",                                                          \
                "read records from URL (default stdin): a file, or ZeroMQ tcp://HOST:PORT, "       \
                "ipc://PATH ('@' binds, '>' connects; default connect)"),                          \
        KOPT_INT(0, "fan-in", &(c)->fan_in, "N", 1, 256,                                           \
                 "a bound --in collects from exactly N senders (default 1; others are refused)")
/* Where records go. */
#define KOPT_STREAM_OUT_ROWS(c)                                                                    \
    KOPT_STRING(0, "out", &(c)->out, "URL",                                                        \
                "write records to URL (default stdout; ZeroMQ default bind)"),                     \
        KOPT_INT(0, "fan-out", &(c)->fan_out, "N", 1, 256,                                         \
                 "a bound --out feeds exactly N receivers (default 1; others are refused)")
/* ZeroMQ over tcp between hosts: CURVE keys and how long to try to connect (znet.h). */
#define KOPT_STREAM_NET                                                                            \
    KOPT_GROUP("records over tcp (README.md, \"Stages on other hosts\")"),                         \
        KOPT_STRING(0, "curve-key", &kt_net.curve_key, "FILE",                                     \
                    "this end's CURVE secret key, NAME.key from `kiln keygen NAME`: tcp records "  \
                    "travel encrypted ($KILN_CURVE_KEY)"),                                         \
        KOPT_STRING(0, "curve-server", &kt_net.curve_server, "FILE",                               \
                    "a connecting end: the bound end's public key, NAME.pub "                      \
                    "($KILN_CURVE_SERVER)"),                                                       \
        KOPT_STRING(0, "curve-clients", &kt_net.curve_clients, "FILE|DIR",                         \
                    "a bound end: the public keys it admits, one a line or DIR/*.pub; another "    \
                    "key is refused and logged ($KILN_CURVE_CLIENTS)"),                            \
        KOPT_DOUBLE(0, "connect-timeout", &kt_net.connect_timeout, "SECONDS", 0, 1e9,              \
                    "a connecting end gives up (exit 74) after SECONDS without a connection "      \
                    "(default 0: it keeps trying and says so after 3 s; $KILN_CONNECT_TIMEOUT)")
/* A stage that only reads records, or only writes them. */
#define KOPT_STREAM_IN(c)  KOPT_STREAM_IN_ROWS(c), KOPT_STREAM_NET
#define KOPT_STREAM_OUT(c) KOPT_STREAM_OUT_ROWS(c), KOPT_STREAM_NET
/* Both, under their heading: a stage that reads and writes records. */
#define KOPT_STREAM(c)                                                                             \
    KOPT_GROUP("record streams"), KOPT_STREAM_IN_ROWS(c), KOPT_STREAM_OUT_ROWS(c), KOPT_STREAM_NET

/* Worker threads (dest: an int *; 0 means the default). */
#define KOPT_THREADS(dest_)                                                                        \
    KOPT_INT(0, "threads", dest_, "N", 0, 1024, "threads (default $KILN_THREADS or all CPUs)")

/* How tokens are drawn when generating: the fields of a ksampler (model/generate.h) and a
 * seed, under their heading. */
#define KOPT_SAMPLING(temperature_, top_k_, top_p_, seed_)                                         \
    KOPT_GROUP("sampling"),                                                                        \
        KOPT_DOUBLE(0, "temperature", temperature_, "X", 0, INFINITY,                              \
                    "0 = always the most likely token (default 1)"),                               \
        KOPT_INT(0, "top-k", top_k_, "K", 0, 1 << 24,                                              \
                 "draw among the K most likely tokens (default 0: all)"),                          \
        KOPT_DOUBLE(0, "top-p", top_p_, "P", 0, 1,                                                 \
                    "draw among the most likely tokens whose probability sums to P (default 1: "   \
                    "all)",                                                                        \
                    .flags = KOPT_OPEN_MIN),                                                       \
        KOPT_U64(0, "seed", seed_, "S", 0, UINT64_MAX,                                             \
                 "the same seed gives the same samples (default 0)")

/* ---- parsing ----------------------------------------------------------------------------------
 */

/* What --help says besides the rows. */
typedef struct kopt_info {
    const char *command; /* a subcommand's name, after the program's ("merge"), or NULL */
    const char *about;   /* one line: what the program does (`kiln` lists it) */
    const char *usage;   /* after "usage: "; continuation lines carry their own indent */
    const char *text;    /* printed as it is between usage and the options, or NULL */
    const char *notes;   /* printed as it is after the options: notes, examples */
    int max_args;        /* arguments that are not options it takes (0: none) */
    bool stop_at_arg;    /* the first argument ends the options (`kiln STAGE ARGS...`) */
} kopt_info;

enum { KOPT_ERROR = -1, KOPT_HELP = -2, KOPT_VERSION = -3 };

/* Parse argv[1..argc) against rows (ending with KOPT_END), storing values as it goes.
 * Returns the number of arguments that are not options, moved in order to argv[1..];
 * KOPT_HELP or KOPT_VERSION when -h/--help or --version came first; KOPT_ERROR with the
 * message in err.  Options and arguments may come in any order; "--" ends the options. */
int kopt_try(const kopt_info *info, const kopt *rows, int argc, char **argv, char *err,
             size_t errsz);
/* kopt_try, or the end of the program: --help and --version print and exit 0, an error
 * exits 2 (kiln_usage_error). */
int kopt_parse(const kopt_info *info, const kopt *rows, int argc, char **argv);
/* The --help text (the caller frees it). */
char *kopt_help(const kopt_info *info, const kopt *rows);

/* --shard I/N, a process's part of a stream split N ways (kiln load, kiln batch): 0 <= I < N.
 * false with the message in err. */
bool kopt_parse_shard(const char *arg, uint64_t *i, uint64_t *n, char *err, size_t errsz);

/* "prog: message" and a pointer to --help on stderr, then exit 2. */
_Noreturn void kiln_usage_error(const char *fmt, ...) KILN_PRINTF(1, 2);

/* ---- a stage's command line ----------------------------------------------------------------- */

typedef struct kiln_cli {
    const char *in, *out; /* KOPT_STREAM's destinations */
    int fan_in, fan_out;
    kopt_info info;
    char **args; /* after kiln_cli_parse: the arguments that are not options */
    int nargs;
} kiln_cli;

/* Set the program name, install signal handlers, fill the defaults. */
void kiln_cli_init(kiln_cli *c, int argc, char **argv, kopt_info info);
/* kopt_parse with the stage's info; the arguments left land in c->args. */
void kiln_cli_parse(kiln_cli *c, const kopt *rows, int argc, char **argv);
/* Open the stage's streams as the options say. */
kreader *kiln_cli_reader(const kiln_cli *c);
kwriter *kiln_cli_writer(const kiln_cli *c);

#endif
