/* transport — how a stream's records travel: one table of functions per kind of edge.
 *
 * The record layer (stream.c) talks to every edge through a ktransport table, as a VFS
 * talks to file systems: fdio.c carries records over pipes and files, zmqio.c over
 * ZeroMQ sockets.  A transport moves messages, each one whole MessagePack object bounded
 * by kiln_record_limits() (mpscan.h) before anyone decodes it, and knows records only
 * through the kt_codec its caller hands it at open: which message is a hdr or an eos, and
 * how an eos is packed.  It never includes stream.h.
 *
 * The contract every backend keeps:
 *  - open_in / open_out: open the URL, or exit (2 for a bad URL, 74 when it cannot).
 *  - recv: the next message, valid until the next recv or close.  Every hdr and record the
 *    senders send arrives; a receiver of several senders (fan-in) delivers one hdr (the
 *    first) and, once every sender has ended, one eos that the codec packs with the summed
 *    count and the first status other than "ok".  Over ZeroMQ a fan-out re-sends what a
 *    dead worker had not finished, and the fan-in drops the second copy by codec key
 *    (zmqio.c): each record arrives once.  KT_EOF: the input ended with no eos
 *    after it (a byte stream only; the caller decides whether that is a truncation).
 *  - send: deliver or queue one message; false once the downstream has gone (a closed pipe,
 *    receivers that left), after which sending is pointless but harmless.
 *  - finish: every receiver gets an eos (packed by the codec, with the count of records it
 *    got) and the call returns when each has it; then the end is closed and freed.
 *  - close: close and free without an eos.  A receiver closed early tells its senders, as a
 *    closed pipe tells its writer; a writer's gathered records go out if they can.  Never
 *    fails: it also runs from exit handlers.
 * Failures other than a gone downstream exit 74 with a message naming the URL. */
#ifndef KILN_TRANSPORT_H
#define KILN_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* What a message is to the transport: the hdr goes first to every receiver, bulk records
 * may wait a moment to travel together, the eos ends a receiver's stream. */
typedef enum { KT_DATA, KT_BULK, KT_HDR, KT_EOS } kt_kind;

#define KT_STATUS_MAX 16 /* an eos status with its NUL: "ok", "error", "interrupted" */
#define KT_EOS_MAX    96 /* bytes of a packed eos */

/* The little a transport must know of records, from the layer above. */
typedef struct {
    /* The kind of a bounded message (KT_DATA for anything but hdr and eos); for an eos also
     * its count and status, status NUL-terminated in KT_STATUS_MAX bytes. */
    kt_kind (*kind)(const uint8_t *p, size_t n, uint64_t *count, char *status);
    /* An eos {seq, count, status} packed into buf (KT_EOS_MAX bytes); returns its length. */
    size_t (*pack_eos)(uint8_t *buf, uint64_t seq, uint64_t count, const char *status);
    /* A data record's (epoch, id), by which a fan-in tells a record a dead worker's fan-out
     * sent again from the first copy; false when it has none.  May be NULL. */
    bool (*key)(const uint8_t *p, size_t n, uint64_t *epoch, uint64_t *id);
} kt_codec;

typedef struct {
    int peers;             /* a bound socket's senders (fan-in) or receivers (fan-out); >= 1 */
    const kt_codec *codec; /* required */
    /* A receiver calls it when it is about to wait for input: only when nothing is ready to
     * read (a pipe found empty, a socket with no message), never between records already
     * there nor on a file.  May be NULL. */
    void (*before_wait)(void);
} kt_opts;

typedef enum {
    KT_MSG,  /* m->p, m->n hold a message */
    KT_EOF,  /* the input ended */
    KT_STOP, /* a stop signal (SIGINT/SIGTERM) interrupted the wait */
    KT_BAD,  /* the bytes are no bounded MessagePack object: m->why says why */
} kt_result;

typedef struct {
    const uint8_t *p;
    size_t n;
    uint64_t offset; /* byte stream: where the message (or the fault, or the end) is */
    char why[160];
} kt_msg;

typedef struct ktransport ktransport;

/* An open end.  Each backend's own struct starts with this. */
typedef struct {
    const ktransport *type;
    char *name;   /* for messages: "stdin", "stdout", a path, a URL */
    bool writing; /* opened with open_out */
    bool live;    /* input from a running process (a pipe, a socket), not a file: after a
                     stop signal its reader waits for the upstream's eos (util.h) */
} kt_conn;

struct ktransport {
    const char *name;
    bool byte_stream; /* records back to back in bytes: offsets mean something */
    bool (*accepts)(const char *url);
    kt_conn *(*open_in)(const char *url, const kt_opts *o);
    kt_conn *(*open_out)(const char *url, const kt_opts *o);
    kt_result (*recv)(kt_conn *c, kt_msg *m);
    bool (*send)(kt_conn *c, const struct iovec *iov, int iovcnt, size_t total, kt_kind kind);
    /* Write out what send queued; false once the downstream has gone. */
    bool (*flush)(kt_conn *c);
    /* Has the downstream gone?  Looks without waiting and without sending records. */
    bool (*gone)(kt_conn *c);
    /* false when the downstream had gone and no eos could be delivered. */
    bool (*finish)(kt_conn *c, const char *status, uint64_t seq);
    void (*close)(kt_conn *c, bool early);
};

extern const ktransport kt_fd;  /* "-" (stdin/stdout), paths; fdio.c */
extern const ktransport kt_zmq; /* tcp://, ipc://, inproc://, with '@' bind, '>' connect */

/* Whether the reader of the pipe (or socket) fd writes to has closed its end; false for a
 * file.  Looks without writing: for stages that write text to stdout, too. */
bool kt_fd_reader_gone(int fd);

/* The backend for a URL: ZeroMQ for its schemes, file descriptors for the rest. */
const ktransport *ktransport_for(const char *url);

#endif
