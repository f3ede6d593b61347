/* zmqio — the transport over ZeroMQ: one record per message (transport.h).
 *
 * Each edge pairs a ROUTER on the side that binds with DEALERs on the side that connects,
 * so the bound side can address each peer.  The receiver grants credit (a few records),
 * which bounds memory and balances load across workers like PUSH/PULL; the sender sends
 * only against credit.  At the end the sender sends each peer its own eos and waits for
 * every peer's acknowledgement, so nothing in flight is lost when it exits.  A receiver
 * bound for N peers (fan-in) ends after N eos and reports one merged eos.  Which message
 * is a hdr or an eos, and how an eos is packed, the codec from the record layer says.
 *
 * Wire protocol (README.md, "Streams over ZeroMQ"), one ZeroMQ message per item (a ROUTER
 * sees the peer's identity frame first):
 *   receiver -> sender   'C' u32be   grant n more records of credit (also introduces a receiver)
 *                        'A'         the eos arrived; the sender may exit
 *                        'B'         the receiver stopped early (as a closed pipe)
 *   bound -> connecting  'R' u32be   refused: the bound end has its N peers already
 *   sender -> receiver   'H'         hello (a connecting sender introduces itself)
 *                        a record    a MessagePack map (hdr does not use credit)
 */
#include "stream/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "core/util.h"
#include "stream/mpscan.h"
#include "stream/znet.h"

#define WINDOW      8 /* credit a receiver grants: records in flight per peer */
#define MAX_PEERS   256
#define ACK_WAIT_MS 5000 /* after a stop signal, how long to wait for acknowledgements */
/* A fan-in whose every known sender has ended waits this long for the expected senders that
 * never came (a worker that died before it connected) before it ends the run with 74.  In a
 * kiln flow every worker connects before data flows (a fan-out sender waits for all its
 * receivers, and a stage opens its output right after its input's hdr). */
#define MISSING_PEER_WAIT_S 10.0

static void *zctx;
static int open_sockets;

/* Close a socket; with the last one, end the context, which waits (up to LINGER) until the
 * messages already queued, such as a receiver's last acknowledgement, have gone out. */
static void close_socket(void *s) {
    zmq_close(s);
    if (--open_sockets == 0) {
        while (zmq_ctx_term(zctx) != 0 && errno == EINTR) {
        }
        zctx = NULL;
        znet_context_ended();
    }
}

static void *context(void) {
    if (!zctx && !(zctx = zmq_ctx_new()))
        kiln_die(EX_KILN_SOFTWARE, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
    return zctx;
}

static const char *strip_prefix(const char *url, bool *bind, bool default_bind) {
    *bind = default_bind;
    if (url[0] == '@') *bind = true;
    if (url[0] == '>') *bind = false;
    return (url[0] == '@' || url[0] == '>') ? url + 1 : url;
}

static bool zt_accepts(const char *url) {
    bool b;
    const char *u = strip_prefix(url, &b, false);
    return strncmp(u, "tcp://", 6) == 0 || strncmp(u, "ipc://", 6) == 0 ||
           strncmp(u, "inproc://", 9) == 0;
}

static void *open_socket(const char *url, bool default_bind, bool *bound) {
    const char *ep = strip_prefix(url, bound, default_bind);
    void *s = zmq_socket(context(), *bound ? ZMQ_ROUTER : ZMQ_DEALER);
    if (!s) kiln_die(EX_KILN_IO, "%s: cannot create socket: %s", url, zmq_strerror(errno));
    open_sockets++;
    int hwm = 4 * WINDOW, linger = 2000, one = 1;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (*bound) zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    /* Bound what ZeroMQ accepts before kiln sees it: a receiver takes records up to the
     * record limit, a sender only short control messages.  A peer that sends more is
     * disconnected by ZeroMQ, which the monitor reports.  The bound also covers CURVE's
     * handshake commands (a few hundred bytes) and each message's encryption overhead. */
    int64_t maxmsg = default_bind ? 1024 : (int64_t)kiln_max_record_bytes() + 256;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    znet_check_endpoint(url, ep, *bound);
    znet_secure(zctx, s, url, ep, *bound);
    int rc = *bound ? zmq_bind(s, ep) : zmq_connect(s, ep);
    if (rc != 0)
        kiln_die(*bound && errno == EINVAL ? EX_KILN_USAGE : EX_KILN_IO, "%s: cannot %s: %s", url,
                 *bound ? "bind" : "connect", zmq_strerror(errno));
    return s;
}

typedef struct {
    uint8_t id[256];
    size_t idlen;
    uint64_t credit, count, taken_since_grant;
    bool ended, gone, acked;
} peer;

/* Watch a socket's connections: a peer that vanishes (crash, kill -9) shows up as a
 * DISCONNECTED event on a PAIR socket, so nobody waits forever for a dead peer; the
 * handshake events tell a connecting end that it is connected, or why not. */
#define MONITOR_EVENTS                                                                             \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |    \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
static void *monitor_open(void *sock) {
    static int n;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://kiln-monitor-%d", n++);
    if (zmq_socket_monitor(sock, ep, MONITOR_EVENTS) != 0)
        kiln_die(EX_KILN_SOFTWARE, "cannot monitor a socket: %s", zmq_strerror(errno));
    void *m = zmq_socket(context(), ZMQ_PAIR);
    int linger = 0;
    if (!m || zmq_setsockopt(m, ZMQ_LINGER, &linger, sizeof linger) != 0 || zmq_connect(m, ep) != 0)
        kiln_die(EX_KILN_SOFTWARE, "cannot open a monitor: %s", zmq_strerror(errno));
    open_sockets++;
    return m;
}

typedef enum { RECV_MSG, RECV_NONE, RECV_DISCONNECT, RECV_EVENT } recv_result;

/* A monitor event's number, from its two frames (both dropped). */
static int monitor_event(void *mon) {
    zmq_msg_t ev;
    zmq_msg_init(&ev);
    int event = 0;
    if (zmq_msg_recv(&ev, mon, 0) >= 2) {
        uint16_t e;
        memcpy(&e, zmq_msg_data(&ev), sizeof e);
        event = e;
    }
    if (zmq_msg_more(&ev)) zmq_msg_recv(&ev, mon, 0);
    zmq_msg_close(&ev);
    return event;
}

/* Wait for one message (and the identity frame before it on a ROUTER) or a monitor event
 * (RECV_EVENT, its number in *event).  RECV_NONE on a timeout or, when interruptible, on a
 * stop signal. */
static recv_result recv_msg(void *s, void *mon, bool router, zmq_msg_t *idf, zmq_msg_t *msg,
                            int timeout_ms, bool interruptible, void (*before_wait)(void),
                            int *event) {
    double deadline = kiln_now() + timeout_ms / 1000.0;
    /* A message already waiting is taken without polling: the busy path stays cheap. */
    int r = zmq_msg_recv(router ? idf : msg, s, ZMQ_DONTWAIT);
    if (r >= 0 && router) r = zmq_msg_recv(msg, s, 0);
    if (r >= 0) return RECV_MSG;
    if (before_wait) before_wait();
    for (;;) {
        if (interruptible && kiln_stop_now()) return RECV_NONE;
        zmq_pollitem_t items[2] = {{s, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        long wait = timeout_ms < 0 ? -1 : (long)((deadline - kiln_now()) * 1000);
        if (timeout_ms >= 0 && wait < 0) wait = 0;
        int rc = zmq_poll(items, 2, wait);
        if (rc < 0) {
            if (errno != EINTR) kiln_die(EX_KILN_IO, "ZeroMQ poll failed: %s", zmq_strerror(errno));
            if (interruptible && kiln_stop_now()) return RECV_NONE;
            continue;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            *event = monitor_event(mon);
            return RECV_EVENT;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            r = zmq_msg_recv(router ? idf : msg, s, ZMQ_DONTWAIT);
            if (r >= 0 && router) r = zmq_msg_recv(msg, s, 0);
            if (r >= 0) return RECV_MSG;
            if (errno != EAGAIN && errno != EINTR)
                kiln_die(EX_KILN_IO, "ZeroMQ receive failed: %s", zmq_strerror(errno));
            continue;
        }
        if (timeout_ms >= 0 && rc == 0) return RECV_NONE;
    }
}

/* After a disconnect, peers are probed for a while: ZeroMQ may drop a dead peer's route a
 * moment after reporting the event. */
#define PROBE_SECONDS 1.0
#define PROBE_POLL_MS 100

static int probe_timeout(double probe_until, int timeout_ms) {
    if (kiln_now() >= probe_until) return timeout_ms;
    return timeout_ms < 0 || timeout_ms > PROBE_POLL_MS ? PROBE_POLL_MS : timeout_ms;
}

/* Send [id] payload; false when the peer is unreachable (it has gone). */
static bool send_to(void *s, const peer *p, const void *data, size_t n) {
    for (;;) {
        int rc = 0;
        if (p) rc = zmq_send(s, p->id, p->idlen, ZMQ_SNDMORE);
        if (rc >= 0) rc = zmq_send(s, data, n, 0);
        if (rc >= 0) return true;
        if (errno == EINTR) continue;
        if (errno == EHOSTUNREACH) return false;
        kiln_die(EX_KILN_IO, "ZeroMQ send failed: %s", zmq_strerror(errno));
    }
}

/* ================================ one end of an edge ===================================== */

/* The socket, its monitor, and the peers on the other side: what a receiving and a sending
 * end share. */
typedef struct {
    const char *url; /* the end's name, owned by its kt_conn */
    void *sock, *mon;
    bool router;    /* bound: many peers, addressed by identity */
    bool sender;    /* the end that sends records */
    bool connected; /* a connecting end finished its handshake (a bound end: always) */
    bool said_waiting, said_handshake; /* warned that it is not connected yet, and why */
    double opened_at;
    double probe_until; /* after a disconnect, probe peers until then */
    int want_peers, npeers;
    peer peers[MAX_PEERS];
    zmq_msg_t idf, msg; /* the last message received, and its sender's identity */
    void (*before_wait)(void);
} zlink;

static void link_open(zlink *l, const char *url, int peers, bool sender) {
    l->url = url;
    l->sock = open_socket(url, sender, &l->router);
    l->sender = sender;
    l->connected = l->router;
    l->opened_at = kiln_now();
    l->mon = monitor_open(l->sock);
    l->want_peers = l->router ? peers : 1;
    if (l->want_peers > MAX_PEERS) kiln_die(EX_KILN_USAGE, "at most %d peers", MAX_PEERS);
    l->npeers = l->router ? 0 : 1; /* a connecting end has one peer, known from the start */
    zmq_msg_init(&l->idf);
    zmq_msg_init(&l->msg);
}

static void link_close(zlink *l) {
    zmq_msg_close(&l->idf);
    zmq_msg_close(&l->msg);
    zmq_socket_monitor(l->sock, NULL, 0);
    close_socket(l->mon);
    close_socket(l->sock);
}

static bool link_send(zlink *l, const peer *p, const void *data, size_t n) {
    return send_to(l->sock, l->router ? p : NULL, data, n);
}

/* ---- connecting: say so when no connection comes, give up after --connect-timeout ---- */

#define CONNECT_WARN_S  3.0 /* a connecting end not connected by then says so */
#define CONNECT_POLL_MS 500

static int connect_wait_ms(const zlink *l, int timeout_ms) {
    if (l->connected) return timeout_ms;
    return timeout_ms < 0 || timeout_ms > CONNECT_POLL_MS ? CONNECT_POLL_MS : timeout_ms;
}

static void connect_watch(zlink *l) {
    if (l->connected) return;
    double waited = kiln_now() - l->opened_at, limit = znet_connect_timeout();
    char why[160] = "its handshakes failed (see above)";
    if (limit > 0 && waited > limit) {
        if (!l->said_handshake) znet_unreachable_why(l->url, why, sizeof why);
        kiln_die(EX_KILN_IO, "%s: no connection in %g s (--connect-timeout): %s", l->url, limit,
                 why);
    }
    if (l->said_waiting || waited < CONNECT_WARN_S) return;
    l->said_waiting = true;
    if (!l->said_handshake) znet_unreachable_why(l->url, why, sizeof why);
    kiln_warn("%s: not connected after %.0f s: %s; still trying%s", l->url, waited, why,
              limit > 0 ? " until --connect-timeout" : " (--connect-timeout SECONDS gives up)");
}

/* What a monitor event means to the link: a disconnect, or news that is no message. */
static recv_result link_event(zlink *l, int event) {
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && !l->connected) {
        l->connected = true;
        if (l->said_waiting) kiln_warn("%s: connected", l->url);
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && !l->router)
        kiln_die(EX_KILN_IO,
                 "%s: the bound end refused this end's CURVE key (is this end's .pub in its "
                 "--curve-clients?)",
                 l->url);
    if ((event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
         event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) &&
        !l->said_handshake) {
        l->said_handshake = true;
        kiln_warn("%s: a %s handshake failed: do both ends use CURVE keys, and is "
                  "--curve-server the bound end's public key?",
                  l->url, l->router ? "peer's" : "connection");
    }
    /* A connecting end that never got through has lost no peer. */
    return event == ZMQ_EVENT_DISCONNECTED && l->connected ? RECV_DISCONNECT : RECV_NONE;
}

/* A connecting end refused by a bound end that has all its peers ends here. */
static void check_refused(zlink *l) {
    const uint8_t *p = zmq_msg_data(&l->msg);
    if (l->router || zmq_msg_size(&l->msg) != 5 || p[0] != 'R') return;
    uint32_t n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    kiln_die(EX_KILN_IO,
             "%s: refused: the bound end takes %u %s (--fan-%s %u) and has them all; is "
             "another one connected in this one's place?",
             l->url, n, l->sender ? "sender(s)" : "receiver(s)", l->sender ? "in" : "out", n);
}

/* Wait for a message (RECV_MSG), a timeout or stop (RECV_NONE) or a disconnect; after a
 * disconnect `check` probes the peers for a while. */
static recv_result link_recv(zlink *l, int timeout_ms, bool interruptible,
                             void (*check)(void *end, recv_result rr), void *end) {
    int event = 0;
    recv_result rr = recv_msg(l->sock, l->mon, l->router, &l->idf, &l->msg,
                              connect_wait_ms(l, probe_timeout(l->probe_until, timeout_ms)),
                              interruptible, l->before_wait, &event);
    if (rr == RECV_EVENT) rr = link_event(l, event);
    if (rr == RECV_MSG && !l->router) {
        l->connected = true;
        check_refused(l);
    }
    connect_watch(l);
    if (rr == RECV_DISCONNECT) l->probe_until = kiln_now() + PROBE_SECONDS;
    if (rr == RECV_DISCONNECT || kiln_now() < l->probe_until) check(end, rr);
    return rr;
}

/* A peer beyond the number the bound end was told: it is told so ('R' and that number)
 * when it introduces itself (a receiver's first credit, a sender's hello), and the bound
 * end carries on with the peers it has.  Always NULL: the message is dropped. */
static peer *refuse_extra_peer(zlink *l) {
    const uint8_t *p = zmq_msg_data(&l->msg);
    size_t n = zmq_msg_size(&l->msg);
    if (!((n == 5 && p[0] == 'C') || (n == 1 && p[0] == 'H'))) return NULL;
    uint32_t w = (uint32_t)l->want_peers;
    uint8_t m[5] = {'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
    if (zmq_send(l->sock, zmq_msg_data(&l->idf), zmq_msg_size(&l->idf),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(l->sock, m, sizeof m, ZMQ_DONTWAIT);
    kiln_warn("%s: refused an extra %s: --fan-%s %d, and %d came already", l->url,
              l->sender ? "receiver" : "sender", l->sender ? "out" : "in", l->want_peers,
              l->npeers);
    return NULL;
}

/* The peer the last message came from; *is_new when it just arrived.  NULL when the table
 * is full, or for a peer beyond the number expected. */
static peer *link_peer(zlink *l, bool *is_new) {
    *is_new = false;
    if (!l->router) return &l->peers[0];
    const uint8_t *id = zmq_msg_data(&l->idf);
    size_t idlen = zmq_msg_size(&l->idf);
    for (int i = 0; i < l->npeers; i++)
        if (l->peers[i].idlen == idlen && memcmp(l->peers[i].id, id, idlen) == 0)
            return &l->peers[i];
    if (l->npeers >= l->want_peers) return refuse_extra_peer(l);
    if (l->npeers == MAX_PEERS || idlen > sizeof l->peers[0].id) return NULL;
    peer *pe = &l->peers[l->npeers++];
    pe->idlen = idlen;
    memcpy(pe->id, id, idlen);
    *is_new = true;
    return pe;
}

/* After a disconnect: is this peer gone?  A ROUTER finds out by sending it a probe ('P',
 * ignored by everyone); a DEALER's one peer is gone with the connection. */
static bool link_peer_gone(zlink *l, const peer *pe, recv_result rr) {
    return l->router ? !send_to(l->sock, pe, "P", 1) : rr == RECV_DISCONNECT;
}

/* ================================ receiving ============================================== */

typedef struct {
    kt_conn base;
    zlink l;
    const kt_codec *codec;
    mpscan_limits lim;
    int nended;
    double missing_since; /* when every known sender had ended with some never seen */
    bool have_hdr, done;
    uint64_t total;
    char status[KT_STATUS_MAX];
    uint8_t eos[KT_EOS_MAX]; /* the merged eos */
} zt_in;

static void grant(zt_in *z, peer *p, uint32_t n) {
    uint8_t m[5] = {'C', (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    link_send(&z->l, p, m, sizeof m);
}

static kt_conn *zt_open_in(const char *url, const kt_opts *o) {
    zt_in *z = xcalloc(1, sizeof *z);
    z->base = (kt_conn){&kt_zmq, xstrdup(url), false, true};
    link_open(&z->l, z->base.name, o->peers, false);
    z->l.before_wait = o->before_wait;
    z->codec = o->codec;
    z->lim = kiln_record_limits();
    strcpy(z->status, "ok");
    if (!z->l.router) grant(z, &z->l.peers[0], WINDOW); /* introduces a connecting receiver */
    return &z->base;
}

/* A sender that vanished before its eos is an upstream that died: as on a pipe, exit 74. */
static void check_senders(void *end, recv_result rr) {
    zt_in *z = end;
    for (int i = 0; i < z->l.npeers; i++)
        if (!z->l.peers[i].ended && link_peer_gone(&z->l, &z->l.peers[i], rr))
            kiln_die(EX_KILN_IO,
                     "%s: a sender disconnected without end-of-stream (did it crash, or "
                     "send a record over the size limit?)",
                     z->l.url);
}

/* A sender's eos: acknowledge it; true when every expected sender has ended. */
static bool sender_ended(zt_in *z, peer *pe, uint64_t count, const char *status) {
    link_send(&z->l, pe, "A", 1);
    if (!pe->ended) {
        pe->ended = true;
        z->nended++;
        z->total += count;
        if (strcmp(status, "ok") != 0 && strcmp(z->status, "ok") == 0)
            snprintf(z->status, sizeof z->status, "%s", status);
    }
    return z->nended >= z->l.want_peers;
}

/* One message must hold exactly one record within the limits. */
static bool bounded(zt_in *z, const uint8_t *p, size_t n, kt_msg *m) {
    size_t len;
    mpscan_result res = mpscan(p, n, &z->lim, &len, m->why, sizeof m->why);
    if (res == MPSCAN_OK && len == n) return true;
    if (res == MPSCAN_OK) snprintf(m->why, sizeof m->why, "message holds bytes after its record");
    if (res == MPSCAN_MORE) snprintf(m->why, sizeof m->why, "message ends inside its record");
    m->offset = 0;
    return false;
}

/* Credit comes back as the stage consumes records, half a window at a time. */
static void took_record(zt_in *z, peer *pe) {
    if (++pe->taken_since_grant < WINDOW / 2) return;
    grant(z, pe, (uint32_t)pe->taken_since_grant);
    pe->taken_since_grant = 0;
}

static kt_result zt_recv(kt_conn *c, kt_msg *m) {
    zt_in *z = (zt_in *)c;
    if (z->done) kiln_die(EX_KILN_SOFTWARE, "%s: read past the end of the stream", z->l.url);
    for (;;) {
        /* Every expected sender is watched from the start: once the known ones have ended,
         * the missing ones have a bounded time to come. */
        bool waiting_missing = z->l.router && z->l.npeers < z->l.want_peers && z->l.npeers > 0 &&
                               z->nended == z->l.npeers;
        if (!waiting_missing) z->missing_since = 0;
        if (waiting_missing && !z->missing_since) z->missing_since = kiln_now();
        if (waiting_missing && kiln_now() - z->missing_since > MISSING_PEER_WAIT_S)
            kiln_die(EX_KILN_IO,
                     "%s: %d of %d senders came and ended; the others never came in %.0f s "
                     "(did a worker die before it connected?)",
                     z->l.url, z->nended, z->l.want_peers, MISSING_PEER_WAIT_S);
        recv_result rr = link_recv(&z->l, waiting_missing ? 200 : -1, true, check_senders, z);
        if (rr == RECV_NONE && kiln_stop_now()) return KT_STOP;
        if (rr != RECV_MSG) continue;
        bool is_new;
        peer *pe = link_peer(&z->l, &is_new);
        if (!pe) continue;
        if (is_new) grant(z, pe, WINDOW);
        const uint8_t *p = zmq_msg_data(&z->l.msg);
        size_t n = zmq_msg_size(&z->l.msg);
        if (n == 1 && (p[0] == 'H' || p[0] == 'P')) continue;
        if (!bounded(z, p, n, m)) return KT_BAD;
        uint64_t count = 0;
        char status[KT_STATUS_MAX] = "ok";
        kt_kind kind = z->codec->kind(p, n, &count, status);
        if (kind == KT_HDR) {
            if (z->have_hdr) continue; /* every fan-in sender sends one; pass on the first */
            z->have_hdr = true;
        } else if (kind == KT_EOS) {
            if (!sender_ended(z, pe, count, status)) continue;
            z->done = true; /* one merged eos for the stage */
            n = z->codec->pack_eos(z->eos, 0, z->total, z->status);
            p = z->eos;
        } else {
            took_record(z, pe);
        }
        *m = (kt_msg){.p = p, .n = n};
        return KT_MSG;
    }
}

/* Best effort and never fatal: this also runs from an exit handler. */
static void close_in(zt_in *z, bool early) {
    for (int i = 0; early && i < z->l.npeers; i++) {
        const peer *pe = &z->l.peers[i];
        if (pe->ended) continue;
        if (z->l.router && zmq_send(z->l.sock, pe->id, pe->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            continue;
        zmq_send(z->l.sock, "B", 1, ZMQ_DONTWAIT);
    }
    link_close(&z->l);
    free(z->base.name);
    free(z);
}

/* ================================ sending ================================================ */

typedef struct {
    kt_conn base;
    zlink l;
    const kt_codec *codec;
    int next; /* round robin */
    uint8_t *hdr;
    size_t hdr_len;
} zt_out;

static kt_conn *zt_open_out(const char *url, const kt_opts *o) {
    zt_out *z = xcalloc(1, sizeof *z);
    z->base = (kt_conn){&kt_zmq, xstrdup(url), true, false};
    link_open(&z->l, z->base.name, o->peers, true);
    z->codec = o->codec;
    if (!z->l.router) link_send(&z->l, NULL, "H", 1); /* a connecting sender introduces itself */
    return &z->base;
}

static int live_peers(const zt_out *z) {
    int n = 0;
    for (int i = 0; i < z->l.npeers; i++) n += !z->l.peers[i].gone;
    return n;
}

/* Receivers that vanished count as gone, like a closed pipe. */
static void check_receivers(void *end, recv_result rr) {
    zt_out *z = end;
    for (int i = 0; i < z->l.npeers; i++) {
        peer *pe = &z->l.peers[i];
        if (!pe->gone && !pe->acked && link_peer_gone(&z->l, pe, rr)) pe->gone = true;
    }
}

/* Handle one control message or disconnect; false on timeout or interruption. */
static bool pump(zt_out *z, int timeout_ms, bool interruptible) {
    recv_result rr = link_recv(&z->l, timeout_ms, interruptible, check_receivers, z);
    if (rr != RECV_MSG) return rr == RECV_DISCONNECT;
    bool is_new;
    peer *pe = link_peer(&z->l, &is_new);
    if (!pe) return true;
    if (is_new && z->hdr && !link_send(&z->l, pe, z->hdr, z->hdr_len)) pe->gone = true;
    const uint8_t *p = zmq_msg_data(&z->l.msg);
    size_t n = zmq_msg_size(&z->l.msg);
    if (n == 5 && p[0] == 'C')
        pe->credit += (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    else if (n == 1 && p[0] == 'A')
        pe->acked = true;
    else if (n == 1 && p[0] == 'B')
        pe->gone = true;
    return true;
}

/* A live peer with credit, round robin; NULL if none. */
static peer *ready_peer(zt_out *z) {
    for (int k = 0; k < z->l.npeers; k++) {
        peer *pe = &z->l.peers[(z->next + k) % z->l.npeers];
        if (!pe->gone && pe->credit > 0) {
            z->next = (z->next + k + 1) % z->l.npeers;
            return pe;
        }
    }
    return NULL;
}

/* One message holding the gathered record: the only copy the record makes on its way. */
static void gather(zmq_msg_t *m, const struct iovec *iov, int iovcnt, size_t total) {
    if (zmq_msg_init_size(m, total) != 0)
        kiln_die(EX_KILN_SOFTWARE, "out of memory for a %zu-byte message", total);
    uint8_t *p = zmq_msg_data(m);
    for (int i = 0; i < iovcnt; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
}

/* Send [id] + message m (consumed); false when the peer has gone. */
static bool send_msg_to(zlink *l, const peer *p, zmq_msg_t *m) {
    for (;;) {
        int rc = 0;
        if (l->router) rc = zmq_send(l->sock, p->id, p->idlen, ZMQ_SNDMORE);
        if (rc >= 0) rc = zmq_msg_send(m, l->sock, 0);
        if (rc >= 0) return true;
        if (errno == EINTR) continue;
        if (errno == EHOSTUNREACH) {
            zmq_msg_close(m);
            return false;
        }
        kiln_die(EX_KILN_IO, "ZeroMQ send failed: %s", zmq_strerror(errno));
    }
}

/* The hdr is kept, so that every peer that arrives later gets it first. */
static void send_hdr(zt_out *z, const struct iovec *iov, int iovcnt, size_t total) {
    z->hdr = xrealloc(z->hdr, total);
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(z->hdr + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    z->hdr_len = total;
    for (int i = 0; i < z->l.npeers; i++)
        if (!z->l.peers[i].gone && !link_send(&z->l, &z->l.peers[i], z->hdr, total))
            z->l.peers[i].gone = true;
}

static bool zt_send_record(kt_conn *c, const struct iovec *iov, int iovcnt, size_t total,
                           kt_kind kind) {
    zt_out *z = (zt_out *)c;
    if (kind == KT_HDR) {
        send_hdr(z, iov, iovcnt, total);
        return true;
    }
    /* Spread the load from the start: wait until every expected receiver is there.  A stop
     * signal while waiting drops the record: the stage is about to end its stream as
     * interrupted, and an interrupted stream's count is not checked. */
    while (z->l.npeers < z->l.want_peers)
        if (!pump(z, -1, true) && kiln_stop_now()) return true;
    for (;;) {
        while (zmq_poll(&(zmq_pollitem_t){z->l.sock, 0, ZMQ_POLLIN, 0}, 1, 0) > 0)
            pump(z, 0, false); /* take pending credit and goodbyes first */
        peer *pe = ready_peer(z);
        if (pe) {
            zmq_msg_t m;
            gather(&m, iov, iovcnt, total);
            if (send_msg_to(&z->l, pe, &m)) {
                pe->credit--;
                pe->count++;
                return true;
            }
            pe->gone = true;
        }
        if (!live_peers(z)) return false;
        if (!pe && !pump(z, -1, true) && kiln_stop_now()) return true;
    }
}

/* Records go out as they are sent: nothing waits in kiln. */
static bool zt_flush(kt_conn *c) {
    zt_out *z = (zt_out *)c;
    return z->l.npeers < z->l.want_peers || live_peers(z) > 0;
}

/* Take every pending goodbye and disconnect without waiting; gone once every expected
 * receiver came and none is left. */
static bool zt_gone(kt_conn *c) {
    zt_out *z = (zt_out *)c;
    while (pump(z, 0, false)) {
    }
    return z->l.npeers >= z->l.want_peers && z->l.npeers > 0 && !live_peers(z);
}

static void free_out(zt_out *z) {
    int linger = 0;
    zmq_setsockopt(z->l.sock, ZMQ_LINGER, &linger, sizeof linger);
    link_close(&z->l);
    free(z->hdr);
    free(z->base.name);
    free(z);
}

/* Every expected receiver gets its own eos with its own count, and acknowledges it; after a
 * stop signal the wait is bounded. */
static bool zt_finish(kt_conn *c, const char *status, uint64_t seq) {
    zt_out *z = (zt_out *)c;
    uint8_t eos[KT_EOS_MAX];
    int sent = 0, acked = 0;
    double deadline = 0;
    for (;;) {
        for (int i = sent; i < z->l.npeers; i++) {
            peer *pe = &z->l.peers[i];
            size_t n = z->codec->pack_eos(eos, seq, pe->count, status);
            if (!pe->gone && !link_send(&z->l, pe, eos, n)) pe->gone = true;
        }
        sent = z->l.npeers;
        int done = acked = 0;
        for (int i = 0; i < z->l.npeers; i++) {
            done += z->l.peers[i].acked || z->l.peers[i].gone;
            acked += z->l.peers[i].acked;
        }
        if (z->l.npeers >= z->l.want_peers && done == z->l.npeers) break;
        if (kiln_stop_signal() && !deadline) deadline = kiln_now() + ACK_WAIT_MS / 1000.0;
        int wait = deadline ? (int)((deadline - kiln_now()) * 1000) : 1000;
        if (deadline && wait <= 0) {
            kiln_warn("%s: receivers did not acknowledge the end of stream", z->l.url);
            break;
        }
        pump(z, wait, false);
    }
    free_out(z);
    return acked > 0;
}

static void zt_close_end(kt_conn *c, bool early) {
    if (c->writing)
        free_out((zt_out *)c);
    else
        close_in((zt_in *)c, early);
}

const ktransport kt_zmq = {
    .name = "zmq",
    .byte_stream = false,
    .accepts = zt_accepts,
    .open_in = zt_open_in,
    .open_out = zt_open_out,
    .recv = zt_recv,
    .send = zt_send_record,
    .flush = zt_flush,
    .gone = zt_gone,
    .finish = zt_finish,
    .close = zt_close_end,
};
