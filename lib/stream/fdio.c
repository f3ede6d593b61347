/* fdio — the transport over file descriptors: stdin, stdout, pipes and files (transport.h).
 *
 * A pipe carries records back to back with no framing, so the reader cuts each message out
 * of its buffer with mpscan, which also bounds it.  The writer sends tensor data by
 * reference with writev and gathers small records into larger writes (README.md,
 * "Writing").  A closed pipe (EPIPE, or POLLERR on the write end) is a downstream that has
 * gone: the writer says so and writes nothing more. */
#include "stream/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "stream/mpscan.h"

#define READ_CHUNK    (1u << 20)  /* the read buffer's first size */
#define EXACT_READ    (64u << 10) /* a record of known size from this size is read exactly */
#define SMALL_RECORD  (64u << 10) /* records below this are gathered into one write */
#define GATHER_MAX_S  0.05        /* bulk records wait at most this long for company */
#define GATHER_IDLE_S 0.01        /* a writer quieter than this writes at once */

static bool is_std(const char *url) {
    return !url || strcmp(url, "-") == 0;
}

/* ================================ reading ================================================ */

typedef struct {
    kt_conn base;
    int fd;
    uint8_t *buf;
    size_t cap, start, end; /* unread bytes are buf[start, end) */
    size_t taken;           /* the message handed out last: consumed by the next recv */
    bool eof;
    uint64_t offset; /* input offset of buf[start] */
    mpscan_limits lim;
    void (*before_wait)(void);
} fd_in;

static kt_conn *fd_open_in(const char *url, const kt_opts *o) {
    fd_in *r = xcalloc(1, sizeof *r);
    r->base = (kt_conn){&kt_fd, xstrdup(is_std(url) ? "stdin" : url), false, false};
    r->fd = is_std(url) ? 0 : open(url, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) kiln_die(EX_KILN_IO, "%s: cannot open: %s", url, strerror(errno));
    struct stat st;
    r->base.live = fstat(r->fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
    r->cap = READ_CHUNK;
    r->buf = xmalloc(r->cap);
    r->lim = kiln_record_limits();
    r->before_wait = o->before_wait;
    return &r->base;
}

/* Make room for `room` unread bytes: slide the partial record to the front, grow. */
static void make_room(fd_in *r, size_t room) {
    if (r->start > 0 && r->start == r->end) r->start = r->end = 0;
    if (room <= r->cap - r->start) return;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (room > r->cap) {
        size_t cap = r->cap * 2 > room ? r->cap * 2 : room;
        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
}

/* Whether a read of fd would return at once (bytes, the end, an error): a file always does;
 * a pipe when its writer has written or closed.  The before-wait hook runs only when not: a
 * stage that holds records back for a peer flushes them when its input is really empty,
 * never between records that are already there. */
static bool readable_now(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    int rc;
    while ((rc = poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    return rc != 0; /* an error: let read() say what it is */
}

/* Read until at least `need` unread bytes are buffered (or EOF), taking whatever more is
 * already there, with space for `room` unread bytes (room >= need) so that a record of
 * unknown size is read in growing chunks rather than rescanned byte by byte.  `exact` reads
 * no further than `need`: for a large record of known size, so that the next record starts
 * at the front of the buffer and nothing is ever slid.  false on a stop signal. */
static bool fill(fd_in *r, size_t need, size_t room, bool exact) {
    make_room(r, room);
    while (r->end - r->start < need) {
        size_t space = r->cap - r->end, missing = need - (r->end - r->start);
        if (exact && space > missing) space = missing;
        if (kiln_stop_now()) return false;
        if (r->before_wait && !readable_now(r->fd)) r->before_wait();
        ssize_t n = read(r->fd, r->buf + r->end, space);
        if (n > 0) {
            r->end += (size_t)n;
            continue;
        }
        if (n == 0) {
            r->eof = true;
            return true;
        }
        if (errno == EINTR) continue;
        kiln_die(EX_KILN_IO, "%s: read error: %s", r->base.name, strerror(errno));
    }
    return true;
}

static kt_result fd_recv(kt_conn *c, kt_msg *m) {
    fd_in *r = (fd_in *)c;
    r->start += r->taken;
    r->offset += r->taken;
    r->taken = 0;
    size_t need = 1;
    bool known = false; /* need is the size of the whole record, from its headers */
    for (;;) {
        size_t avail = r->end - r->start, len;
        if (avail >= need) {
            mpscan_result res =
                mpscan(r->buf + r->start, avail, &r->lim, &len, m->why, sizeof m->why);
            if (res == MPSCAN_OK) {
                *m = (kt_msg){.p = r->buf + r->start, .n = len, .offset = r->offset};
                r->taken = len;
                return KT_MSG;
            }
            if (res == MPSCAN_BAD) {
                m->offset = r->offset + len;
                return KT_BAD;
            }
            known = len > avail;
            need = known ? len : avail + 1;
        }
        if (r->eof) {
            m->offset = r->offset;
            return KT_EOF;
        }
        /* Wait for what the record needs; make room for a good chunk more when its size is
         * unknown, so a record made of many small pieces is not rescanned once per read. */
        size_t room = avail + (avail >> 1);
        if (room < need || room > r->lim.max_bytes) room = need;
        if (!fill(r, need, room, known && need >= EXACT_READ)) return KT_STOP;
    }
}

/* ================================ writing ================================================ */

typedef struct {
    kt_conn base;
    int fd;
    bool gone;
    uint64_t count; /* records sent, hdr aside: the eos carries it */
    const kt_codec *codec;
    uint8_t *out; /* small records gathered, out_len bytes */
    size_t out_len;
    double out_since, last_small;
} fd_out;

/* A pipe's default 64 KiB buffer makes a 256 KiB record cost several context switches
 * between writer and reader; a wider pipe (up to the unprivileged 1 MiB limit) costs memory
 * only while full.  Not a pipe, or not allowed: left as it is. */
static void widen_pipe(int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) (void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

static kt_conn *fd_open_out(const char *url, const kt_opts *o) {
    fd_out *w = xcalloc(1, sizeof *w);
    w->base = (kt_conn){&kt_fd, xstrdup(is_std(url) ? "stdout" : url), true, false};
    w->fd = is_std(url) ? 1 : open(url, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) kiln_die(EX_KILN_IO, "%s: cannot create: %s", url, strerror(errno));
    widen_pipe(w->fd);
    w->codec = o->codec;
    w->out = xmalloc(SMALL_RECORD);
    return &w->base;
}

/* Write every byte of iov (which it advances); false when the downstream has gone. */
static bool write_all(fd_out *w, struct iovec *iov, int cnt) {
    while (cnt > 0) {
        ssize_t n = writev(w->fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE) {
                w->gone = true;
                return false;
            }
            kiln_die(EX_KILN_IO, "%s: write error: %s", w->base.name, strerror(errno));
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

static bool flush_out(fd_out *w) {
    if (w->gone) w->out_len = 0;
    if (!w->out_len) return !w->gone;
    struct iovec iov = {w->out, w->out_len};
    w->out_len = 0;
    return write_all(w, &iov, 1);
}

/* A small record joins the gathered ones.  Bulk records wait for company, but never long;
 * others (a hdr, train's metrics after a step) must show at once, and a writer that writes
 * seldom gains nothing by gathering. */
static bool gather_small(fd_out *w, const struct iovec *iov, int cnt, size_t total, bool bulk) {
    if (w->out_len + total > SMALL_RECORD && !flush_out(w)) return false;
    if (!w->out_len) w->out_since = kiln_now();
    for (int i = 0; i < cnt; i++) {
        memcpy(w->out + w->out_len, iov[i].iov_base, iov[i].iov_len);
        w->out_len += iov[i].iov_len;
    }
    double now = kiln_now();
    bool idle = now - w->last_small > GATHER_IDLE_S;
    w->last_small = now;
    if (!bulk || now - w->out_since > GATHER_MAX_S || idle) return flush_out(w);
    return true;
}

/* A large record goes out as it is, by reference, after what was gathered before it. */
static bool write_large(fd_out *w, const struct iovec *iov, int cnt) {
    if (!flush_out(w)) return false;
    struct iovec stackv[64], *v = cnt <= 64 ? stackv : xmalloc(xmul((size_t)cnt, sizeof *v));
    memcpy(v, iov, (size_t)cnt * sizeof *v);
    bool ok = write_all(w, v, cnt);
    if (v != stackv) free(v);
    return ok;
}

static bool fd_send(kt_conn *c, const struct iovec *iov, int iovcnt, size_t total, kt_kind kind) {
    fd_out *w = (fd_out *)c;
    if (w->gone) return false;
    if (kind != KT_HDR) w->count++;
    if (total < SMALL_RECORD) return gather_small(w, iov, iovcnt, total, kind == KT_BULK);
    return write_large(w, iov, iovcnt);
}

static bool fd_flush(kt_conn *c) {
    return flush_out((fd_out *)c);
}

/* POLLERR on a pipe's write end: its reader has closed it.  A file never has gone. */
bool kt_fd_reader_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

static bool fd_gone(kt_conn *c) {
    fd_out *w = (fd_out *)c;
    if (!w->gone && kt_fd_reader_gone(w->fd)) w->gone = true;
    return w->gone;
}

static void free_out(fd_out *w) {
    free(w->out);
    free(w->base.name);
    free(w);
}

static bool fd_finish(kt_conn *c, const char *status, uint64_t seq) {
    fd_out *w = (fd_out *)c;
    uint8_t eos[KT_EOS_MAX];
    struct iovec iov = {eos, w->codec->pack_eos(eos, seq, w->count, status)};
    bool delivered = gather_small(w, &iov, 1, iov.iov_len, false);
    if (w->fd > 1 && close(w->fd) != 0)
        kiln_die(EX_KILN_IO, "%s: close failed: %s", w->base.name, strerror(errno));
    free_out(w);
    return delivered;
}

/* Best effort and never fatal: records already gathered still go out, even when the stage
 * exits on an error, so nothing it wrote is lost. */
static void close_out(fd_out *w) {
    for (size_t off = 0; !w->gone && off < w->out_len;) {
        ssize_t n = write(w->fd, w->out + off, w->out_len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
    if (w->fd > 1) close(w->fd);
    free_out(w);
}

static void fd_close(kt_conn *c, bool early) {
    (void)early; /* a pipe tells its writer by itself */
    if (c->writing) return close_out((fd_out *)c);
    fd_in *r = (fd_in *)c;
    if (r->fd > 0) close(r->fd);
    free(r->buf);
    free(r->base.name);
    free(r);
}

static bool fd_accepts(const char *url) {
    (void)url;
    return true;
}

const ktransport kt_fd = {
    .name = "fd",
    .byte_stream = true,
    .accepts = fd_accepts,
    .open_in = fd_open_in,
    .open_out = fd_open_out,
    .recv = fd_recv,
    .send = fd_send,
    .flush = fd_flush,
    .gone = fd_gone,
    .finish = fd_finish,
    .close = fd_close,
};
