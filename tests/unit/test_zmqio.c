/* zmqio from the inside: what the transport's table alone cannot make happen.  The file is
 * compiled into this test (its kt_zmq renamed, so the library's copy stays out) and raw
 * ZeroMQ sockets play the peers, so that a test can act between two of its steps:
 *  - pump() drains every message that is ready, past a monitor event (a handshake);
 *  - a bound end admits a peer only on its introduction ('H' at a fan-in) and drops, with
 *    one line on stderr, the messages of a peer that never introduced itself;
 *  - a fan-in admits a sender started again after one vanished (the place of the dead one),
 *    under a new identity or its old one, instead of refusing it as an extra. */
#define kt_zmq kt_zmq_inside
#include "stream/zmqio.c"

#include <fcntl.h>
#include <unistd.h>

#include "check.h"

/* ---- a codec of the test's own: "hdr", ["eos", count], any other string a record ---- */

static kt_kind kind(const uint8_t *p, size_t n, uint64_t *count, char *status) {
    if (n == 4 && !memcmp(p, "\xa3hdr", 4)) return KT_HDR;
    if (n == 6 && !memcmp(p,
                          "\x92\xa3"
                          "eos",
                          5)) {
        *count = p[5];
        strcpy(status, "ok");
        return KT_EOS;
    }
    return KT_DATA;
}

static size_t pack_eos(uint8_t *buf, uint64_t seq, uint64_t count, const char *status) {
    (void)seq, (void)status;
    memcpy(buf,
           "\x92\xa3"
           "eos",
           5);
    buf[5] = (uint8_t)count; /* a positive fixint: the tests send fewer than 128 */
    return 6;
}

static const kt_codec codec = {.kind = kind, .pack_eos = pack_eos};

/* ---- the peers: raw DEALERs on the transport's own context ---- */

static void *dealer(const char *ep, const char *identity) {
    void *d = zmq_socket(context(), ZMQ_DEALER);
    int linger = 0;
    CHECK(d && zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger) == 0);
    if (identity) CHECK(zmq_setsockopt(d, ZMQ_ROUTING_ID, identity, strlen(identity)) == 0);
    CHECK(zmq_connect(d, ep) == 0);
    return d;
}

static void say(void *d, const char *m, size_t n) {
    CHECK(zmq_send(d, m, n, 0) == (int)n);
}

#define EOS1                                                                                       \
    "\x92\xa3"                                                                                     \
    "eos\x01"

/* A sender's whole stream: hello, hdr, one record (a fixstr of 1..9 bytes), eos of 1. */
static void sender_stream(void *d, const char *rec) {
    say(d, "H", 1);
    say(d, "\xa3hdr", 4);
    char m[16] = {(char)(0xa0 | strlen(rec))};
    memcpy(m + 1, rec, strlen(rec));
    say(d, m, 1 + strlen(rec));
    say(d, EOS1, 6);
}

/* The records a receiving end delivers until its eos, as one string ("a b c "); the eos's
 * count in *count. */
static void recv_all(kt_conn *in, char *got, size_t cap, uint64_t *count) {
    kt_msg m;
    got[0] = 0;
    CHECK(zt_recv(in, &m) == KT_MSG && m.n == 4 && !memcmp(m.p, "\xa3hdr", 4));
    for (;;) {
        CHECK(zt_recv(in, &m) == KT_MSG);
        char status[KT_STATUS_MAX];
        if (codec.kind(m.p, m.n, count, status) == KT_EOS) return;
        size_t len = strlen(got);
        snprintf(got + len, cap - len, "%.*s ", (int)m.n - 1, (const char *)m.p + 1);
    }
}

/* stderr into a file while fn runs; what it said, in buf. */
static void capture_stderr(void (*fn)(void), char *buf, size_t cap) {
    char path[] = "/tmp/kiln-test-zmqio-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    CHECK(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
}

static char ep[64], bind_url[80];

static void endpoint(const char *name) {
    snprintf(ep, sizeof ep, "ipc:///tmp/kiln-test-zmqio-%d-%s", (int)getpid(), name);
    snprintf(bind_url, sizeof bind_url, "@%s", ep);
}

/* ---- pump() drains past a handshake event ---- */

static zt_out *pump_out;
static void *pump_peer;
static bool pump_said;

/* Before the end waits (its socket found empty): the receiver leaves, and the test waits
 * until its goodbye is there, so that the handshake's event and data are ready together. */
static void receiver_leaves(void) {
    if (pump_said) return;
    pump_said = true;
    say(pump_peer, "B", 1);
    zmq_pollitem_t it = {pump_out->l.sock, 0, ZMQ_POLLIN, 0};
    CHECK(zmq_poll(&it, 1, 2000) == 1);
}

static void test_pump_drains_past_event(void) {
    endpoint("pump");
    kt_opts o = {.peers = 1, .codec = &codec};
    pump_out = (zt_out *)zt_open_out(bind_url, &o);
    pump_peer = dealer(ep, NULL);
    say(pump_peer, "C\0\0\0\x08", 5); /* introduces it */
    zmq_pollitem_t it[2] = {{pump_out->l.mon, 0, ZMQ_POLLIN, 0},
                            {pump_out->l.sock, 0, ZMQ_POLLIN, 0}};
    for (int i = 0; i < 200 && zmq_poll(it, 2, 10) < 2; i++) usleep(10000);
    CHECK(it[0].revents && it[1].revents); /* the handshake's event and the credit wait */
    pump_out->l.hooks.before_wait = receiver_leaves;
    /* One look, no waiting: the credit, then (the socket empty) the event, and the goodbye
     * that came behind it. */
    CHECK(zt_gone(&pump_out->base));
    CHECK(pump_said && pump_out->l.npeers == 1 && pump_out->l.peers[0].gone);
    zmq_close(pump_peer);
    zt_close_end(&pump_out->base, false);
}

/* ---- a fan-in admits on hello only; a stray's messages are dropped and said once ---- */

static char stray_got[256];
static uint64_t stray_count;

static void fan_in_with_stray(void) {
    endpoint("stray");
    kt_opts o = {.peers = 2, .codec = &codec};
    kt_conn *in = zt_open_in(bind_url, &o);
    void *stray = dealer(ep, NULL);
    say(stray, "\xa5stray", 6); /* a record, and an eos, without hello or hdr */
    say(stray, EOS1, 6);
    usleep(100000); /* the stray's messages are there first */
    void *a = dealer(ep, NULL), *b = dealer(ep, NULL);
    sender_stream(a, "a");
    sender_stream(b, "b");
    recv_all(in, stray_got, sizeof stray_got, &stray_count);
    zmq_close(stray), zmq_close(a), zmq_close(b);
    zt_close_end(in, false);
}

static void test_stray_ignored(void) {
    char said[1024];
    capture_stderr(fan_in_with_stray, said, sizeof said);
    CHECK(!strcmp(stray_got, "a b ") || !strcmp(stray_got, "b a "));
    CHECK(stray_count == 2);
    const char *line = strstr(said, "ignored a peer that sent a message without introducing");
    CHECK(line && !strstr(line + 1, "ignored")); /* said once for its two messages */
}

/* ---- a fan-in admits a sender started again in a vanished one's place ---- */

#define SAY(d, lit) say(d, lit, sizeof lit - 1)

/* Sender "a" of a --fan-in 2 sends its hdr and a record; the fan-in takes them; "a" dies. */
static kt_conn *first_sender_dies(const char *name, const char *identity, void **b) {
    endpoint(name);
    kt_opts o = {.peers = 2, .codec = &codec};
    kt_conn *in = zt_open_in(bind_url, &o);
    void *a = dealer(ep, identity);
    *b = dealer(ep, NULL);
    SAY(a, "H");
    SAY(a, "\xa3hdr");
    SAY(a, "\xa2"
           "a1");
    kt_msg m;
    CHECK(zt_recv(in, &m) == KT_MSG && m.n == 4);                  /* hdr */
    CHECK(zt_recv(in, &m) == KT_MSG && m.n == 3 && m.p[2] == '1'); /* a1 */
    zmq_close(a);                                                  /* killed */
    return in;
}

/* Then: "b" passes on the fan-out's word that one worker's records moved ('L') and sends a
 * record; the restarted "a" its own; both end.  Every record arrives, once. */
static void both_end(kt_conn *in, void *a2, void *b, bool b_started) {
    kt_msg m;
    if (!b_started) SAY(b, "H");
    SAY(b, "\xa3hdr");
    SAY(b, "L\0\0\0\x01");
    SAY(b, "\xa2"
           "b1");
    CHECK(zt_recv(in, &m) == KT_MSG && m.n == 3 && m.p[1] == 'b'); /* b1 */
    SAY(b, EOS1);
    SAY(a2, EOS1);
    uint64_t count = 0;
    char status[KT_STATUS_MAX];
    CHECK(zt_recv(in, &m) == KT_MSG && kind(m.p, m.n, &count, status) == KT_EOS);
    CHECK(count == 3 && ((zt_in *)in)->l.npeers == 3);
    zmq_close(b), zmq_close(a2);
    zt_close_end(in, false);
}

/* The restarted "a" (identity: NULL a new one, else the old one) comes as a third sender
 * once the fan-in noticed the death: admitted in the dead one's place. */
static void restart_after_death(const char *identity) {
    void *b;
    kt_conn *in = first_sender_dies(identity ? "same" : "new", identity, &b);
    zt_in *z = (zt_in *)in;
    for (int i = 0; i < 200 && !z->nvanished; i++) /* the fan-in's own wait notices */
        link_recv(&z->l, 10, false);
    CHECK(z->nvanished == 1);
    void *a2 = dealer(ep, identity);
    SAY(a2, "H");
    SAY(a2, "\xa3hdr");
    SAY(a2, "\xa2"
            "a2");
    kt_msg m;
    CHECK(zt_recv(in, &m) == KT_MSG && m.n == 3 && m.p[2] == '2'); /* a2: admitted */
    both_end(in, a2, b, false);
}

/* The restarted "a" under its old identity says hello before the fan-in noticed the death:
 * ZeroMQ routes one connection per identity, so the second hello says the first has gone. */
static void restart_before_noticed(void) {
    void *b;
    kt_conn *in = first_sender_dies("unnoticed", "worker-2", &b);
    zt_in *z = (zt_in *)in;
    /* ZeroMQ frees the identity once the ROUTER has read the dead connection to its end and
     * the pipe's close went round; reads that find nothing do that, without the monitor's
     * word of the death. */
    for (int i = 0; i < 20; i++) {
        CHECK(zmq_msg_recv(&z->l.msg, z->l.sock, ZMQ_DONTWAIT) < 0 && errno == EAGAIN);
        usleep(10000);
    }
    CHECK(z->nvanished == 0);
    void *a2 = dealer(ep, "worker-2");
    SAY(a2, "H");
    zmq_pollitem_t it = {z->l.sock, 0, ZMQ_POLLIN, 0};
    CHECK(zmq_poll(&it, 1, 2000) == 1);
    CHECK(zmq_msg_recv(&z->l.idf, z->l.sock, 0) >= 0 && zmq_msg_recv(&z->l.msg, z->l.sock, 0) >= 0);
    bool is_new;
    peer *pe = link_peer(&z->l, &is_new); /* the hello, as zt_recv takes it */
    CHECK(pe == &z->l.peers[1] && is_new && z->nvanished == 1 && z->l.peers[0].gone);
    if (pe) grant(z, pe, WINDOW);
    SAY(a2, "\xa3hdr");
    SAY(a2, "\xa2"
            "a2");
    kt_msg m;
    CHECK(zt_recv(in, &m) == KT_MSG && m.n == 3 && m.p[2] == '2'); /* a2 */
    both_end(in, a2, b, false);
}

int main(void) {
    kiln_set_prog("test-zmqio");
    alarm(20); /* a peer refused where it should be admitted leaves a receive waiting */
    test_pump_drains_past_event();
    test_stray_ignored();
    restart_after_death(NULL);
    restart_after_death("worker-1");
    restart_before_noticed();
    return check_report("test_zmqio");
}
