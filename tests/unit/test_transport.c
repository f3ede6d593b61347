/* transport: each backend through its table alone — a pipe, a file, ZeroMQ inproc:// (one
 * sender, and a fan-in of two) — with a codec of this test's own, as the contract in
 * transport.h promises: hdr first, every record whole and in order, the eos packed by the
 * codec with the receiver's count, a downstream that has gone, hostile and cut-short bytes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "stream/transport.h"

/* ---- a codec of the test's own: messages are MessagePack arrays [type, payload] -------- */

/* [fixstr type, bin32 payload]; returns the length (buf holds 16 + n bytes). */
static size_t pack_msg(uint8_t *buf, const char *type, const uint8_t *payload, uint32_t n) {
    size_t tl = strlen(type), k = 0;
    buf[k++] = 0x92;
    buf[k++] = (uint8_t)(0xa0 | tl);
    memcpy(buf + k, type, tl);
    k += tl;
    buf[k++] = 0xc6;
    for (int i = 3; i >= 0; i--) buf[k++] = (uint8_t)(n >> (8 * i));
    memcpy(buf + k, payload, n);
    return k + n;
}

/* The eos: [fixstr "eos", u64 count, fixstr status]. */
static size_t pack_eos(uint8_t *buf, uint64_t seq, uint64_t count, const char *status) {
    (void)seq;
    size_t sl = strlen(status), k = 0;
    memcpy(buf,
           "\x93\xa3"
           "eos\xcf",
           6);
    k = 6;
    for (int i = 7; i >= 0; i--) buf[k++] = (uint8_t)(count >> (8 * i));
    buf[k++] = (uint8_t)(0xa0 | sl);
    memcpy(buf + k, status, sl);
    return k + sl;
}

static bool type_is(const uint8_t *p, size_t n, const char *type) {
    size_t tl = strlen(type);
    return n >= 2 + tl && p[1] == (0xa0 | tl) && memcmp(p + 2, type, tl) == 0;
}

static kt_kind kind(const uint8_t *p, size_t n, uint64_t *count, char *status) {
    if (type_is(p, n, "hdr")) return KT_HDR;
    if (!type_is(p, n, "eos") || n < 16) return KT_DATA;
    *count = 0;
    for (int i = 0; i < 8; i++) *count = *count << 8 | p[6 + i];
    size_t sl = p[14] & 0x1fu;
    if (sl >= KT_STATUS_MAX || 15 + sl > n) sl = 0;
    memcpy(status, p + 15, sl);
    status[sl] = 0;
    return KT_EOS;
}

static const kt_codec codec = {.kind = kind, .pack_eos = pack_eos};

/* ---- helpers ------------------------------------------------------------------------------ */

static bool send_one(kt_conn *c, const char *type, uint32_t n, uint8_t seed, kt_kind k) {
    uint8_t *payload = xmalloc(n + 1), *buf = xmalloc(n + 16);
    for (uint32_t i = 0; i < n; i++) payload[i] = (uint8_t)(seed + i * 7);
    size_t len = pack_msg(buf, type, payload, n);
    /* two pieces, as the record layer sends a head and its tensor data */
    struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
    bool ok = c->type->send(c, iov, 2, len, k);
    free(payload);
    free(buf);
    return ok;
}

/* The payload of a data message holds what send_one put in it. */
static bool payload_ok(const kt_msg *m, const char *type, uint32_t n, uint8_t seed) {
    size_t off = 2 + strlen(type) + 5;
    if (!type_is(m->p, m->n, type) || m->n != off + n) return false;
    for (uint32_t i = 0; i < n; i++)
        if (m->p[off + i] != (uint8_t)(seed + i * 7)) return false;
    return true;
}

/* One message written straight into fd, as another process would. */
static void send_one_fd(int fd, const char *type, uint32_t n, uint8_t seed) {
    uint8_t *payload = xmalloc(n + 1), *buf = xmalloc(n + 16);
    for (uint32_t i = 0; i < n; i++) payload[i] = (uint8_t)(seed + i * 7);
    size_t len = pack_msg(buf, type, payload, n);
    CHECK(write(fd, buf, len) == (ssize_t)len);
    free(payload);
    free(buf);
}

static const uint32_t SIZES[] = {3, 5000, 70000, 300000,
                                 0}; /* gathered, and written by reference */
#define NSIZES 5

/* hdr, the records, eos; returns how many steps failed (0 on another thread, too: CHECK
 * is for the main thread only). */
static int send_stream(kt_conn *out, uint8_t seed) {
    int failed = !send_one(out, "hdr", 4, 0, KT_HDR);
    for (int i = 0; i < NSIZES; i++)
        failed += !send_one(out, "rec", SIZES[i], (uint8_t)(seed + i), i % 2 ? KT_BULK : KT_DATA);
    return failed + !out->type->finish(out, "ok", NSIZES + 1);
}

typedef struct {
    kt_conn *out[2];
    int n, failed;
} senders;

static void *send_stream_thread(void *arg) {
    senders *s = arg;
    s->failed = send_stream(s->out[0], 10);
    return NULL;
}

/* Reads hdr, the records of send_stream and an eos counting them; returns records seen. */
static int recv_stream(kt_conn *in, uint8_t seed, uint64_t *eos_count, char *status) {
    kt_msg m;
    uint64_t count = 0;
    int n = 0;
    CHECK(in->type->recv(in, &m) == KT_MSG && kind(m.p, m.n, &count, status) == KT_HDR);
    for (;;) {
        if (in->type->recv(in, &m) != KT_MSG) return -1;
        kt_kind k = kind(m.p, m.n, eos_count, status);
        if (k == KT_EOS) return n;
        CHECK(k == KT_DATA);
        if (seed != 0xff) CHECK(payload_ok(&m, "rec", SIZES[n % NSIZES], (uint8_t)(seed + n)));
        n++;
    }
}

static char *fd_url(int fd) {
    char *u = xmalloc(32);
    snprintf(u, 32, "/dev/fd/%d", fd);
    return u;
}

static const kt_opts OPTS = {.peers = 1, .codec = &codec};

/* ---- pipes and files ----------------------------------------------------------------------- */

static void test_pipe(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    char *ru = fd_url(p[0]), *wu = fd_url(p[1]);
    CHECK(ktransport_for(wu) == &kt_fd && ktransport_for(NULL) == &kt_fd);
    kt_conn *out = kt_fd.open_out(wu, &OPTS), *in = kt_fd.open_in(ru, &OPTS);
    CHECK(out->writing && !in->writing && kt_fd.byte_stream);
    CHECK(!out->type->gone(out));
    close(p[1]); /* the test's own copy: the reader sees the end when the writer closes */
    senders s = {.out = {out}, .n = 1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, send_stream_thread, &s) == 0);
    uint64_t count = 0;
    char status[KT_STATUS_MAX] = "";
    CHECK(recv_stream(in, 10, &count, status) == NSIZES);
    CHECK(count == NSIZES && strcmp(status, "ok") == 0);
    pthread_join(t, NULL);
    CHECK(s.failed == 0);
    kt_msg m;
    CHECK(in->type->recv(in, &m) == KT_EOF);
    in->type->close(in, false);
    close(p[0]);
    free(ru), free(wu);
}

static void test_file(void) {
    char path[] = "/tmp/kiln-test-transport-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(ktransport_for(path) == &kt_fd);
    kt_conn *out = kt_fd.open_out(path, &OPTS);
    CHECK(send_stream(out, 10) == 0);
    kt_conn *in = kt_fd.open_in(path, &OPTS);
    uint64_t count = 0;
    char status[KT_STATUS_MAX] = "";
    CHECK(recv_stream(in, 10, &count, status) == NSIZES && count == NSIZES);
    kt_msg m;
    CHECK(in->type->recv(in, &m) == KT_EOF);
    in->type->close(in, false);
    unlink(path);
}

/* A reader that closes its end: the writer finds out without writing, then a send fails
 * quietly, and so does the eos. */
static void test_pipe_gone(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    char *wu = fd_url(p[1]);
    kt_conn *out = kt_fd.open_out(wu, &OPTS);
    close(p[1]);
    CHECK(send_one(out, "hdr", 1, 0, KT_HDR));
    CHECK(!out->type->gone(out));
    close(p[0]);
    CHECK(out->type->gone(out));
    CHECK(!send_one(out, "rec", 100000, 1, KT_DATA));
    CHECK(!out->type->flush(out));
    CHECK(!out->type->finish(out, "ok", 1));
    free(wu);
}

/* The before-wait hook runs only when a read would block: never while records are already
 * in the pipe or in a file, once when the pipe is empty (here the hook itself writes the
 * record the reader then gets, as a stage that flushes a held-back batch makes its peer
 * answer). */
static int waits, wait_fd = -1;
static void count_wait(void) {
    waits++;
    if (wait_fd >= 0) send_one_fd(wait_fd, "rec", 7, 3);
}

static void test_pipe_wait_hook(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    char *ru = fd_url(p[0]);
    kt_opts o = OPTS;
    o.before_wait = count_wait;
    for (int i = 0; i < 10; i++) send_one_fd(p[1], "rec", 100, (uint8_t)i);
    kt_conn *in = kt_fd.open_in(ru, &o);
    kt_msg m;
    waits = 0;
    for (int i = 0; i < 10; i++)
        CHECK(in->type->recv(in, &m) == KT_MSG && payload_ok(&m, "rec", 100, (uint8_t)i));
    CHECK(waits == 0); /* every read found bytes waiting */
    wait_fd = p[1];
    CHECK(in->type->recv(in, &m) == KT_MSG && payload_ok(&m, "rec", 7, 3));
    CHECK(waits == 1); /* the pipe was empty: the hook ran, and its record came */
    wait_fd = -1;
    close(p[1]);
    CHECK(in->type->recv(in, &m) == KT_EOF && waits == 1); /* the end is ready: no wait */
    in->type->close(in, false);
    close(p[0]);
    free(ru);

    char path[] = "/tmp/kiln-test-transport-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    for (int i = 0; i < 3; i++) send_one_fd(fd, "rec", 70000, (uint8_t)i);
    close(fd);
    in = kt_fd.open_in(path, &o);
    waits = 0;
    for (int i = 0; i < 3; i++)
        CHECK(in->type->recv(in, &m) == KT_MSG && payload_ok(&m, "rec", 70000, (uint8_t)i));
    CHECK(in->type->recv(in, &m) == KT_EOF);
    CHECK(waits == 0); /* a file never blocks */
    in->type->close(in, false);
    unlink(path);
}

/* Bytes that are no record: refused with a reason and where; a stream cut short: EOF. */
static kt_result recv_bytes(const void *bytes, size_t n, kt_msg *m) {
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], bytes, n) == (ssize_t)n);
    close(p[1]);
    char *ru = fd_url(p[0]);
    kt_conn *in = kt_fd.open_in(ru, &OPTS);
    kt_result r = in->type->recv(in, m);
    if (r == KT_MSG) r = in->type->recv(in, m); /* the first is fine; what of the second? */
    in->type->close(in, true);
    close(p[0]);
    free(ru);
    return r;
}

static void test_bad_bytes(void) {
    kt_msg m;
    CHECK(recv_bytes("\x91\xc1", 2, &m) == KT_BAD && m.offset == 1 && strstr(m.why, "0xc1"));
    const uint8_t bin32[] = {0x91, 0xc0, 0x91, 0xc6, 0xff, 0xff, 0xff, 0xf0}; /* claims 4 GB */
    CHECK(recv_bytes(bin32, sizeof bin32, &m) == KT_BAD && strstr(m.why, "limit"));
    CHECK(recv_bytes("\x92\xc0\xc0\x92\xc0", 5, &m) == KT_EOF && m.offset == 3);
}

/* ---- ZeroMQ --------------------------------------------------------------------------------- */

/* Every sender's stream, the records of the senders taking turns; the second ends
 * "interrupted". */
static void *send_all(void *arg) {
    senders *s = arg;
    for (int k = 0; k < s->n; k++) s->failed += !send_one(s->out[k], "hdr", 4, 0, KT_HDR);
    for (int i = 0; i < NSIZES; i++)
        for (int k = 0; k < s->n; k++)
            s->failed += !send_one(s->out[k], "rec", SIZES[i], (uint8_t)(30 + i), KT_DATA);
    for (int k = 0; k < s->n; k++) /* returns once the receiver acknowledged the eos */
        s->failed += !s->out[k]->type->finish(s->out[k], k ? "interrupted" : "ok", NSIZES + 1);
    return NULL;
}

/* One receiver bound for `peers` connecting senders; sockets are opened and closed on
 * this thread, the senders run on another. */
static void zmq_round_trip(const char *name, int peers) {
    char bind[64], conn[64];
    snprintf(bind, sizeof bind, "@inproc://%s", name);
    snprintf(conn, sizeof conn, ">inproc://%s", name);
    CHECK(ktransport_for(bind) == &kt_zmq && ktransport_for(conn) == &kt_zmq);
    kt_opts o = OPTS;
    o.peers = peers;
    kt_conn *in = kt_zmq.open_in(bind, &o);
    senders s = {.n = peers};
    for (int k = 0; k < peers; k++) s.out[k] = kt_zmq.open_out(conn, &OPTS);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, send_all, &s) == 0);
    uint64_t count = 0;
    char status[KT_STATUS_MAX] = "";
    int got = recv_stream(in, peers == 1 ? 30 : 0xff, &count, status);
    pthread_join(t, NULL);
    CHECK(s.failed == 0);
    CHECK(got == NSIZES * peers && count == (uint64_t)got); /* one merged eos */
    CHECK(strcmp(status, peers == 1 ? "ok" : "interrupted") == 0);
    in->type->close(in, false);
}

/* A receiver that leaves early: its sender sees the downstream gone. */
static void test_zmq_gone(void) {
    kt_conn *in = kt_zmq.open_in("@inproc://gone", &OPTS);
    kt_conn *out = kt_zmq.open_out(">inproc://gone", &OPTS);
    CHECK(send_one(out, "hdr", 1, 0, KT_HDR)); /* needs no credit */
    kt_msg m;
    CHECK(in->type->recv(in, &m) == KT_MSG && type_is(m.p, m.n, "hdr")); /* grants credit */
    CHECK(send_one(out, "rec", 10, 1, KT_DATA));
    CHECK(in->type->recv(in, &m) == KT_MSG && type_is(m.p, m.n, "rec"));
    CHECK(!out->type->gone(out));
    in->type->close(in, true);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = out->type->gone(out);
        if (!gone) usleep(10000);
    }
    CHECK(gone);
    CHECK(!send_one(out, "rec", 10, 2, KT_DATA));
    out->type->close(out, false);
}

int main(void) {
    kiln_set_prog("test-transport");
    signal(SIGPIPE, SIG_IGN); /* as every stage does: a closed pipe is EPIPE */
    test_pipe();
    test_file();
    test_pipe_gone();
    test_pipe_wait_hook();
    test_bad_bytes();
    zmq_round_trip("one", 1);
    zmq_round_trip("fan-in", 2);
    test_zmq_gone();
    return check_report("test_transport");
}
