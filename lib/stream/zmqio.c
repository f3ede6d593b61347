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
 *                        'F' u64be   the first n records sent are finished: passed on to a
 *                                    ZeroMQ receiver that took them (a worker; the first 'F'
 *                                    also says it reports finishes)
 *                        'U'         this receiver reports no finishes (its output is no socket)
 *   bound -> connecting  'R' u32be   refused: the bound end has its N peers already
 *   sender -> receiver   'H'         hello (a connecting sender introduces itself)
 *                        'L' u32be   n workers of a fan-out upstream died and their records
 *                                    moved to live ones (passed on downstream by workers)
 *                        a record    a MessagePack map (hdr does not use credit)
 *
 * No record lost when a worker dies (README.md, "Streams over ZeroMQ"): a fan-out keeps a copy
 * of every record a worker has not reported finished (at most RETAIN_MAX), and sends the copies
 * of a worker that vanishes to a live one; the fan-in drops the second copy by (epoch, id).
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

typedef enum { RECV_MSG, RECV_NONE, RECV_DISCONNECT, RECV_EXTRA, RECV_EVENT } recv_result;

/* What a wait also does: before it, the stage's hook; once nothing came for IDLE_MS, the
 * end's own (a receiver returns credit and reports finishes: an idle receiver has nothing
 * else to do, and a busy one need not wake its peers for it), and from then on it watches a
 * second socket (a worker's output, whose receiver's credit says what is finished). */
#define IDLE_MS 2
typedef struct {
    void (*before_wait)(void);
    void (*idle)(void *end);
    void *end;
    void *extra; /* RECV_EXTRA when it has a message; may be NULL */
} wait_hooks;

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
                            int timeout_ms, bool interruptible, const wait_hooks *h, int *event) {
    double deadline = kiln_now() + timeout_ms / 1000.0;
    /* A message already waiting is taken without polling: the busy path stays cheap. */
    int r = zmq_msg_recv(router ? idf : msg, s, ZMQ_DONTWAIT);
    if (r >= 0 && router) r = zmq_msg_recv(msg, s, 0);
    if (r >= 0) return RECV_MSG;
    if (h->before_wait) h->before_wait();
    bool idle = !h->idle;
    for (;;) {
        if (interruptible && kiln_stop_now()) return RECV_NONE;
        zmq_pollitem_t items[3] = {
            {s, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}, {h->extra, 0, ZMQ_POLLIN, 0}};
        long wait = timeout_ms < 0 ? -1 : (long)((deadline - kiln_now()) * 1000);
        if (timeout_ms >= 0 && wait < 0) wait = 0;
        if (!idle && (wait < 0 || wait > IDLE_MS)) wait = IDLE_MS;
        int rc = zmq_poll(items, h->extra && idle ? 3 : 2, wait);
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
        if (h->extra && idle && (items[2].revents & ZMQ_POLLIN)) return RECV_EXTRA;
        if (rc == 0 && !idle) {
            h->idle(h->end);
            idle = true;
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

#define STRAYS 8 /* stray peers a bound end reports once each (more: reported again) */

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
    wait_hooks hooks;
    /* The end's probe after a disconnect: marks the peers that have gone (it sets their
     * `gone`, which frees their places for a restarted peer). */
    void (*check)(void *end, recv_result rr);
    void *end;
    /* A bound receiver: a second hello under a known identity (NULL for a sender, whose
     * receivers' first credit looks like any other). */
    void (*reintroduced)(void *end, peer *old);
    uint64_t strays[STRAYS]; /* hashes of the stray peers already reported */
    uint32_t nstrays;
} zlink;

static void link_open(zlink *l, const char *url, int peers, bool sender,
                      void (*check)(void *end, recv_result rr), void *end) {
    l->url = url;
    l->check = check;
    l->end = end;
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

/* What a monitor event means to the link: a disconnect, or news that is no message
 * (RECV_EVENT: handled; whoever drains the socket carries on). */
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
    return event == ZMQ_EVENT_DISCONNECTED && l->connected ? RECV_DISCONNECT : RECV_EVENT;
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

/* Wait for a message (RECV_MSG), a timeout or stop (RECV_NONE), a disconnect, or another
 * event (RECV_EVENT, handled); after a disconnect the end's check probes the peers for a
 * while. */
static recv_result link_recv(zlink *l, int timeout_ms, bool interruptible) {
    int event = 0;
    recv_result rr = recv_msg(l->sock, l->mon, l->router, &l->idf, &l->msg,
                              connect_wait_ms(l, probe_timeout(l->probe_until, timeout_ms)),
                              interruptible, &l->hooks, &event);
    if (rr == RECV_EVENT) rr = link_event(l, event);
    if (rr == RECV_MSG && !l->router) {
        l->connected = true;
        check_refused(l);
    }
    connect_watch(l);
    if (rr == RECV_DISCONNECT) l->probe_until = kiln_now() + PROBE_SECONDS;
    if (rr == RECV_DISCONNECT || kiln_now() < l->probe_until) l->check(l->end, rr);
    return rr;
}

/* Whether the last message introduces a peer to a bound end: a connecting sender's hello
 * ('H') at a receiver, a connecting receiver's first credit ('C') at a sender. */
static bool introduces(zlink *l) {
    const uint8_t *p = zmq_msg_data(&l->msg);
    size_t n = zmq_msg_size(&l->msg);
    return l->sender ? n == 5 && p[0] == 'C' : n == 1 && p[0] == 'H';
}

/* Peers that hold a place: all but those that died or left.  A restarted worker takes the
 * place of the one that died. */
static int places_taken(const zlink *l) {
    int n = 0;
    for (int i = 0; i < l->npeers; i++) n += !l->peers[i].gone;
    return n;
}

/* A peer beyond the number the bound end was told: it is told so ('R' and that number)
 * when it introduces itself, and the bound end carries on with the peers it has.  Always
 * NULL: the message is dropped. */
static peer *refuse_extra_peer(zlink *l) {
    uint32_t w = (uint32_t)l->want_peers;
    uint8_t m[5] = {'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
    if (zmq_send(l->sock, zmq_msg_data(&l->idf), zmq_msg_size(&l->idf),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(l->sock, m, sizeof m, ZMQ_DONTWAIT);
    kiln_warn("%s: refused an extra %s: --fan-%s %d, and %d came already", l->url,
              l->sender ? "receiver" : "sender", l->sender ? "out" : "in", l->want_peers,
              places_taken(l));
    return NULL;
}

static uint64_t id_hash(const uint8_t *id, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ id[i]) * 0x100000001b3ull;
    return h;
}

/* A message from a peer that never introduced itself (something else connected here, or a
 * peer whose connection came back under a new identity): dropped, and said once per peer.
 * Always NULL. */
static peer *ignore_stray(zlink *l) {
    uint64_t h = id_hash(zmq_msg_data(&l->idf), zmq_msg_size(&l->idf));
    uint32_t known = l->nstrays < STRAYS ? l->nstrays : STRAYS;
    for (uint32_t i = 0; i < known; i++)
        if (l->strays[i] == h) return NULL;
    l->strays[l->nstrays++ % STRAYS] = h;
    kiln_warn("%s: ignored a peer that sent a message without introducing itself (a connecting "
              "%s starts with %s); its messages are dropped",
              l->url, l->sender ? "receiver" : "sender", l->sender ? "'C', credit" : "'H', hello");
    return NULL;
}

/* The peer the last message came from; *is_new when it just arrived.  A bound end admits a
 * peer only on its introduction, and only while it has fewer than its N live peers: one that
 * died frees its place (a worker started again: under a new identity, or at a fan-in also
 * its old one).  NULL for a stray, an extra, or a full table. */
static peer *link_peer(zlink *l, bool *is_new) {
    *is_new = false;
    if (!l->router) return &l->peers[0];
    const uint8_t *id = zmq_msg_data(&l->idf);
    size_t idlen = zmq_msg_size(&l->idf);
    bool intro = introduces(l);
    /* The newest first.  At a bound receiver a known identity that says hello again is a
     * restart; at a bound sender a credit from a known identity is that peer's own, maybe the
     * last one a dead receiver sent (a restart there comes under a new identity). */
    for (int i = l->npeers - 1; i >= 0; i--) {
        peer *pe = &l->peers[i];
        if (pe->idlen != idlen || memcmp(pe->id, id, idlen) != 0) continue;
        if (!intro || !l->reintroduced) return pe;
        if (!pe->gone) l->reintroduced(l->end, pe);
        break;
    }
    if (!intro) return ignore_stray(l);
    /* All places taken: a peer killed a moment ago may not have been noticed yet. */
    if (places_taken(l) >= l->want_peers) l->check(l->end, RECV_NONE);
    if (places_taken(l) >= l->want_peers) return refuse_extra_peer(l);
    if (l->npeers == MAX_PEERS || idlen > sizeof l->peers[0].id) {
        kiln_warn("%s: ignored a peer: %d have come and gone, the most one end takes", l->url,
                  MAX_PEERS);
        return NULL;
    }
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

/* A worker is a stage whose input and output are both ZeroMQ: its input end learns from its
 * output end which records have gone on (finish reports), so the sending side's few functions
 * it needs come first. */
typedef struct zt_out zt_out;
static zt_out *local_out; /* this process's connecting ZeroMQ output, if any */
static bool pump(zt_out *z, int timeout_ms, bool interruptible);
static uint64_t out_sent(const zt_out *z);
static uint64_t out_delivered(const zt_out *z);
static void out_tell_moved(zt_out *z, uint32_t moved);
static void *out_socket(const zt_out *z);

#define DEDUP_RING 512 /* (epoch, id) a fan-in remembers per sender: a dead worker's last ones */
#define MARKS      128 /* a worker's records taken and not yet known finished, coarsened past it */
/* A sender that vanished without eos ends a fan-in with 74 unless, within this time, a live
 * worker passes on word from the fan-out that the dead one's records moved ('L'). */
#define VANISH_WAIT_S 10.0

typedef struct {
    uint64_t epoch, id;
} rkey;

/* What a receiver knows of one sender beyond the credit (peer). */
typedef struct {
    bool vanished;      /* disconnected without eos (counted in nvanished while not ended) */
    uint64_t received;  /* data records that came */
    uint64_t dropped;   /* second copies of records a dead worker's fan-out sent again */
    uint64_t eos_count; /* its eos said */
    rkey *ring;         /* its last DEDUP_RING keys (fan-in only) */
    uint32_t head, len;
} inpeer;

/* A fan-in's table of the keys in every sender's ring: key -> the sender that sent it first. */
typedef struct {
    uint64_t epoch, id;
    uint32_t owner; /* sender index + 1; 0: empty */
    uint32_t n;     /* occurrences in the owner's ring */
} dslot;

typedef struct {
    uint64_t taken, sent; /* records taken by then; output records sent when they were done */
} mark;

typedef struct {
    kt_conn base;
    zlink l;
    const kt_codec *codec;
    mpscan_limits lim;
    int nended, nvanished;
    double missing_since;  /* when every known sender had ended with some never seen */
    double vanished_since; /* when a sender vanished that no 'L' covers yet */
    bool have_hdr, done;
    uint64_t total;
    char status[KT_STATUS_MAX];
    uint8_t eos[KT_EOS_MAX]; /* the merged eos */
    uint32_t moved;          /* workers whose records a fan-out upstream moved ('L') */
    inpeer ip[MAX_PEERS];
    dslot *tab; /* fan-in of several senders: the duplicate check */
    size_t tabmask;
    /* A worker's finish reports ('F') to its one sender. */
    bool declared, reports;
    uint64_t taken, finished, reported; /* records taken; known finished; reported */
    mark marks[MARKS];
    uint32_t mhead, mlen;
} zt_in;

static void grant(zt_in *z, peer *p, uint32_t n) {
    uint8_t m[5] = {'C', (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    link_send(&z->l, p, m, sizeof m);
}

static void receiver_idle(void *end);
static void check_senders(void *end, recv_result rr);
static void sender_restarted(void *end, peer *old);

static kt_conn *zt_open_in(const char *url, const kt_opts *o) {
    zt_in *z = xcalloc(1, sizeof *z);
    z->base = (kt_conn){&kt_zmq, xstrdup(url), false, true};
    link_open(&z->l, z->base.name, o->peers, false, check_senders, z);
    z->l.reintroduced = sender_restarted;
    z->l.hooks = (wait_hooks){o->before_wait, receiver_idle, z, NULL};
    z->codec = o->codec;
    z->lim = kiln_record_limits();
    strcpy(z->status, "ok");
    if (z->l.router && z->l.want_peers > 1 && z->codec->key) {
        size_t slots = 1;
        while (slots < 2u * (size_t)z->l.want_peers * DEDUP_RING) slots *= 2;
        z->tab = xcalloc(slots, sizeof *z->tab);
        z->tabmask = slots - 1;
    }
    if (!z->l.router) grant(z, &z->l.peers[0], WINDOW); /* introduces a connecting receiver */
    return &z->base;
}

/* ---- a fan-in's duplicate check: (epoch, id) in the senders' recent records ---- */

static size_t key_slot(const zt_in *z, uint64_t epoch, uint64_t id) {
    uint64_t h = (epoch * 0x9e3779b97f4a7c15ull) ^ id;
    h ^= h >> 31, h *= 0xbf58476d1ce4e5b9ull, h ^= h >> 29;
    size_t i = (size_t)h & z->tabmask;
    while (z->tab[i].owner && (z->tab[i].epoch != epoch || z->tab[i].id != id))
        i = (i + 1) & z->tabmask;
    return i;
}

/* Remove one occurrence of a key; the last one empties its slot, and the rest of the probe
 * run is inserted again (no tombstones). */
static void forget_key(zt_in *z, rkey k) {
    size_t i = key_slot(z, k.epoch, k.id);
    if (!z->tab[i].owner || --z->tab[i].n > 0) return;
    z->tab[i].owner = 0;
    for (size_t j = (i + 1) & z->tabmask; z->tab[j].owner; j = (j + 1) & z->tabmask) {
        dslot d = z->tab[j];
        z->tab[j].owner = 0;
        z->tab[key_slot(z, d.epoch, d.id)] = d;
    }
}

/* The table holds every sender's ring at most half full: a sender admitted in a dead one's
 * place (whose keys stay, to catch the second copies of its records) may double it. */
static void keys_fit(zt_in *z) {
    size_t slots = z->tabmask + 1;
    if (!z->tab || 2u * (size_t)z->l.npeers * DEDUP_RING <= slots) return;
    dslot *old = z->tab;
    z->tab = xcalloc(2 * slots, sizeof *z->tab);
    z->tabmask = 2 * slots - 1;
    for (size_t i = 0; i < slots; i++)
        if (old[i].owner) z->tab[key_slot(z, old[i].epoch, old[i].id)] = old[i];
    free(old);
}

/* Remember a sender's record in its ring (its oldest falls out); a key first sent by another
 * sender is not taken over. */
static void remember_key(zt_in *z, int who, rkey k) {
    size_t i = key_slot(z, k.epoch, k.id);
    if (z->tab[i].owner && z->tab[i].owner != (uint32_t)who + 1) return;
    inpeer *q = &z->ip[who];
    if (!q->ring) q->ring = xmalloc(DEDUP_RING * sizeof *q->ring);
    if (q->len == DEDUP_RING) {
        forget_key(z, q->ring[q->head]);
        q->head = (q->head + 1) % DEDUP_RING;
        q->len--;
        i = key_slot(z, k.epoch, k.id); /* the table moved */
    }
    q->ring[(q->head + q->len++) % DEDUP_RING] = k;
    if (z->tab[i].owner) {
        z->tab[i].n++;
        return;
    }
    z->tab[i] = (dslot){k.epoch, k.id, (uint32_t)who + 1, 1};
}

/* A second copy: a record whose key another sender sent first, once a fan-out upstream has
 * moved a dead worker's records.  Before that, senders may share keys (unrelated streams). */
static bool duplicate(zt_in *z, peer *pe, const uint8_t *p, size_t n) {
    rkey k;
    if (!z->tab || !z->codec->key(p, n, &k.epoch, &k.id)) return false;
    int who = (int)(pe - z->l.peers);
    size_t i = key_slot(z, k.epoch, k.id);
    if (z->moved && z->tab[i].owner && z->tab[i].owner != (uint32_t)who + 1) return true;
    remember_key(z, who, k);
    return false;
}

/* ---- a worker's finish reports ---- */

/* First call after the hdr (the stage has opened its output by then): a worker whose output
 * is a connecting ZeroMQ socket reports finishes; any other receiver says it does not. */
static void declare(zt_in *z) {
    if (z->declared || z->l.router || !z->have_hdr) return;
    z->declared = true;
    z->reports = local_out != NULL;
    if (!z->reports) {
        link_send(&z->l, NULL, "U", 1);
        return;
    }
    uint8_t m[9] = {'F'};
    link_send(&z->l, NULL, m, sizeof m);
}

/* The stage asks for its next record: the ones it took are done, their output sent. */
static void note_done(zt_in *z) {
    uint64_t last = z->mlen ? z->marks[(z->mhead + z->mlen - 1) % MARKS].taken : z->finished;
    if (!z->reports || !local_out || z->taken == last) return;
    mark m = {z->taken, out_sent(local_out)};
    if (z->mlen == MARKS) /* coarser: finished only once the later output has gone too */
        z->marks[(z->mhead + z->mlen - 1) % MARKS] = m;
    else
        z->marks[(z->mhead + z->mlen++) % MARKS] = m;
}

/* Records whose output the next receiver has taken are finished: say so every half window,
 * and whenever idle. */
static void report_finished(zt_in *z, bool idle) {
    if (!z->reports || !local_out) return;
    uint64_t delivered = out_delivered(local_out);
    while (z->mlen && z->marks[z->mhead].sent <= delivered) {
        z->finished = z->marks[z->mhead].taken;
        z->mhead = (z->mhead + 1) % MARKS;
        z->mlen--;
    }
    if (z->finished == z->reported || (!idle && z->finished - z->reported < WINDOW / 2)) return;
    uint8_t m[9] = {'F'};
    for (int i = 0; i < 8; i++) m[1 + i] = (uint8_t)(z->finished >> (56 - 8 * i));
    link_send(&z->l, NULL, m, sizeof m);
    z->reported = z->finished;
}

/* Before a receiver waits: credit back for every record taken (so a sender learns what its
 * receiver has, even short of half a window), and a worker's finish report. */
static void receiver_idle(void *end) {
    zt_in *z = end;
    for (int i = 0; i < z->l.npeers; i++) {
        peer *pe = &z->l.peers[i];
        if (pe->taken_since_grant && !pe->ended && !z->ip[i].vanished) {
            grant(z, pe, (uint32_t)pe->taken_since_grant);
            pe->taken_since_grant = 0;
        }
    }
    if (z->reports && local_out) {
        while (pump(local_out, 0, false)) {
        }
        report_finished(z, true);
    }
}

/* ---- the end of a fan-in ---- */

/* A sender that vanished before its eos: as on a pipe, an upstream that died, unless a fan-out
 * upstream moved its records to live workers (fanin_settled decides). */
static void check_senders(void *end, recv_result rr) {
    zt_in *z = end;
    for (int i = 0; i < z->l.npeers; i++) {
        if (z->l.peers[i].ended || z->ip[i].vanished) continue;
        if (!link_peer_gone(&z->l, &z->l.peers[i], rr)) continue;
        z->ip[i].vanished = z->l.peers[i].gone = true; /* its place is free for a restart */
        z->nvanished++;
    }
}

/* A second hello under a sender's identity: ZeroMQ routes one connection per identity, so the
 * first has gone (a worker restarted under its own identity before its death was noticed).
 * It vanished, unless it had ended. */
static void sender_restarted(void *end, peer *old) {
    zt_in *z = end;
    int i = (int)(old - z->l.peers);
    if (old->ended || z->ip[i].vanished) return;
    z->ip[i].vanished = old->gone = true;
    z->nvanished++;
}

static void die_vanished(const zt_in *z, const char *when) {
    kiln_die(EX_KILN_IO,
             "%s: a sender disconnected without end-of-stream (did it crash, or send a record "
             "over the size limit?)%s%s",
             z->l.url, z->l.want_peers > 1 ? ", and no fan-out upstream moved its records" : "",
             when);
}

/* Whether the merged eos is due: every known sender ended or vanished, and the vanished and
 * the never-seen are workers whose records a fan-out moved.  Exits 74 for one that is not. */
static bool fanin_settled(zt_in *z) {
    int unsettled = z->l.npeers - z->nended - z->nvanished;
    int missing = z->l.want_peers > z->l.npeers ? z->l.want_peers - z->l.npeers : 0;
    double now = kiln_now();
    if (z->nvanished > (int)z->moved) {
        if (!unsettled && !missing) die_vanished(z, "");
        if (!z->vanished_since) z->vanished_since = now;
        if (now - z->vanished_since > VANISH_WAIT_S) die_vanished(z, " within 10 s");
    } else {
        z->vanished_since = 0;
    }
    if (unsettled || !z->l.npeers) {
        z->missing_since = 0;
        return false;
    }
    if (z->nended + (int)z->moved >= z->l.want_peers) return true;
    /* Every expected sender is watched from the start: once the known ones have ended, the
     * missing ones have a bounded time to come. */
    if (!z->missing_since) z->missing_since = now;
    if (now - z->missing_since > MISSING_PEER_WAIT_S)
        kiln_die(EX_KILN_IO,
                 "%s: %d of %d senders came and ended; the others never came in %.0f s "
                 "(did a worker die before it connected?)",
                 z->l.url, z->nended, z->l.want_peers, MISSING_PEER_WAIT_S);
    return false;
}

/* The one eos the stage gets: what each sender said it sent (what came, for one that
 * vanished), less the second copies dropped. */
static void merge_eos(zt_in *z, kt_msg *m) {
    uint64_t total = 0;
    for (int i = 0; i < z->l.npeers; i++)
        total += (z->l.peers[i].ended ? z->ip[i].eos_count : z->ip[i].received) - z->ip[i].dropped;
    z->done = true;
    *m = (kt_msg){.p = z->eos, .n = z->codec->pack_eos(z->eos, 0, total, z->status)};
}

/* A sender's eos: acknowledge it. */
static void sender_ended(zt_in *z, peer *pe, uint64_t count, const char *status) {
    link_send(&z->l, pe, "A", 1);
    if (pe->ended) return;
    int i = (int)(pe - z->l.peers);
    pe->ended = true;
    z->nended++;
    if (z->ip[i].vanished) z->ip[i].vanished = pe->gone = false, z->nvanished--;
    z->ip[i].eos_count = count;
    if (strcmp(status, "ok") != 0 && strcmp(z->status, "ok") == 0)
        snprintf(z->status, sizeof z->status, "%s", status);
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

/* Control messages for a receiver: hello and probe are ignored; 'L' (records of dead workers
 * moved) is remembered and passed on by a worker. */
static bool control_message(zt_in *z, const uint8_t *p, size_t n) {
    if (n == 1 && (p[0] == 'H' || p[0] == 'P')) return true;
    if (n != 5 || p[0] != 'L') return false;
    uint32_t moved = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (moved > z->moved) z->moved = moved;
    if (z->reports && local_out) out_tell_moved(local_out, z->moved);
    return true;
}

static kt_result zt_recv(kt_conn *c, kt_msg *m) {
    zt_in *z = (zt_in *)c;
    if (z->done) kiln_die(EX_KILN_SOFTWARE, "%s: read past the end of the stream", z->l.url);
    declare(z);
    note_done(z);
    report_finished(z, false);
    for (;;) {
        if (fanin_settled(z)) {
            merge_eos(z, m);
            return KT_MSG;
        }
        bool timed = z->vanished_since || z->missing_since;
        z->l.hooks.extra = z->reports && local_out ? out_socket(local_out) : NULL;
        recv_result rr = link_recv(&z->l, timed ? 200 : -1, true);
        if (rr == RECV_NONE && kiln_stop_now()) return KT_STOP;
        if (rr == RECV_EXTRA) { /* the worker's output: credit that says what is finished */
            while (local_out && pump(local_out, 0, false)) {
            }
            report_finished(z, false);
            continue;
        }
        if (rr != RECV_MSG) continue;
        bool is_new;
        peer *pe = link_peer(&z->l, &is_new);
        if (!pe) continue;
        if (is_new) {
            grant(z, pe, WINDOW);
            keys_fit(z);
        }
        const uint8_t *p = zmq_msg_data(&z->l.msg);
        size_t n = zmq_msg_size(&z->l.msg);
        if (control_message(z, p, n)) continue;
        if (!bounded(z, p, n, m)) return KT_BAD;
        uint64_t count = 0;
        char status[KT_STATUS_MAX] = "ok";
        kt_kind kind = z->codec->kind(p, n, &count, status);
        if (kind == KT_HDR) {
            if (z->have_hdr) continue; /* every fan-in sender sends one; pass on the first */
            z->have_hdr = true;
        } else if (kind == KT_EOS) {
            sender_ended(z, pe, count, status);
            continue; /* fanin_settled says when the one merged eos is due */
        } else {
            inpeer *q = &z->ip[pe - z->l.peers];
            q->received++;
            took_record(z, pe);
            if (duplicate(z, pe, p, n)) {
                q->dropped++;
                continue;
            }
            z->taken++;
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
    for (int i = 0; i < z->l.npeers; i++) free(z->ip[i].ring);
    free(z->tab);
    free(z->base.name);
    free(z);
}

/* ================================ sending ================================================ */

#define RETAIN_MAX     64 /* records a fan-out keeps per receiver until reported finished */
#define RETAIN_BYTES   (64u << 20) /* ... and their bytes: past either, that receiver waits */
#define DECLARE_WAIT_S 5.0 /* at the end, how long a receiver has to say if it reports finishes */

/* Does a fan-out's receiver report finishes ('F'), say it does not ('U', or credit without
 * either: a stage in another language), or has it not said yet? */
typedef enum { FIN_UNKNOWN, FIN_TRACKED, FIN_LEGACY } fin_mode;

/* A FIFO of messages; a copy shares its data with the message sent. */
typedef struct {
    zmq_msg_t *m;
    uint32_t cap, head, len;
    size_t bytes;
} msgq;

static void msgq_grow(msgq *q) {
    uint32_t cap = q->cap ? 2 * q->cap : 16;
    zmq_msg_t *m = xmalloc(xmul(cap, sizeof *m));
    for (uint32_t i = 0; i < q->len; i++) {
        zmq_msg_t *old = &q->m[(q->head + i) % q->cap];
        zmq_msg_init(&m[i]);
        zmq_msg_move(&m[i], old);
        zmq_msg_close(old);
    }
    free(q->m);
    *q = (msgq){m, cap, 0, q->len, q->bytes};
}

static void msgq_push(msgq *q, zmq_msg_t *src) {
    if (q->len == q->cap) msgq_grow(q);
    zmq_msg_t *slot = &q->m[(q->head + q->len++) % q->cap];
    zmq_msg_init(slot);
    if (zmq_msg_copy(slot, src) != 0)
        kiln_die(EX_KILN_SOFTWARE, "cannot keep a message: %s", zmq_strerror(errno));
    q->bytes += zmq_msg_size(slot);
}

/* The oldest message, moved into *out. */
static void msgq_pop(msgq *q, zmq_msg_t *out) {
    zmq_msg_t *slot = &q->m[q->head];
    q->bytes -= zmq_msg_size(slot);
    zmq_msg_init(out);
    zmq_msg_move(out, slot);
    zmq_msg_close(slot);
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

static void msgq_free(msgq *q) {
    while (q->len) {
        zmq_msg_t m;
        msgq_pop(q, &m);
        zmq_msg_close(&m);
    }
    free(q->m);
    *q = (msgq){0};
}

/* What a sender knows of one receiver beyond the credit (peer). */
typedef struct {
    fin_mode mode;
    int grants;         /* 'C' messages */
    uint64_t delivered; /* records it took: its grants after the first (a worker's output) */
    uint64_t finished;  /* records it reported finished */
    msgq kept;          /* a fan-out's copies of the records after those */
} outpeer;

struct zt_out {
    kt_conn base;
    zlink l;
    const kt_codec *codec;
    int next; /* round robin */
    uint8_t *hdr;
    size_t hdr_len;
    bool ending; /* eos sent: a receiver that dies now has nothing to move */
    outpeer op[MAX_PEERS];
    msgq moved;      /* records of receivers that died, to send again */
    uint32_t nmoved; /* receivers that died mid-stream (a worker's output: as told by 'L') */
};

static void check_receivers(void *end, recv_result rr);

static kt_conn *zt_open_out(const char *url, const kt_opts *o) {
    zt_out *z = xcalloc(1, sizeof *z);
    z->base = (kt_conn){&kt_zmq, xstrdup(url), true, false};
    link_open(&z->l, z->base.name, o->peers, true, check_receivers, z);
    z->codec = o->codec;
    if (!z->l.router) link_send(&z->l, NULL, "H", 1); /* a connecting sender introduces itself */
    if (!z->l.router && !local_out) local_out = z;
    return &z->base;
}

static int live_peers(const zt_out *z) {
    int n = 0;
    for (int i = 0; i < z->l.npeers; i++) n += !z->l.peers[i].gone;
    return n;
}

/* ---- redelivery: a fan-out's side ---- */

static outpeer *op_of(zt_out *z, const peer *pe) {
    return &z->op[pe - z->l.peers];
}

/* A fan-out keeps copies for a receiver that reports finishes or has not said yet. */
static bool keeps(const zt_out *z, const outpeer *o) {
    return z->l.router && o->mode != FIN_LEGACY;
}

static bool has_room(const zt_out *z, const outpeer *o) {
    return !keeps(z, o) || (o->kept.len < RETAIN_MAX && o->kept.bytes < RETAIN_BYTES);
}

static void tell_moved(zt_out *z, const peer *pe) {
    uint32_t n = z->nmoved;
    uint8_t m[5] = {'L', (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    link_send(&z->l, pe, m, sizeof m);
}

/* A receiver has gone.  One that said goodbye ('B'), acknowledged its eos, or reports no
 * finishes leaves as a closed pipe.  One that vanished mid-stream (killed) leaves its kept
 * records to go to live receivers, and every live worker passes word on ('L'), so that the
 * fan-in does not wait for the dead one's eos. */
static void receiver_gone(zt_out *z, peer *pe, bool bye) {
    if (pe->gone) return;
    pe->gone = true;
    outpeer *o = op_of(z, pe);
    if (bye || pe->acked || z->ending || !keeps(z, o)) {
        msgq_free(&o->kept);
        return;
    }
    while (o->kept.len) {
        zmq_msg_t m;
        msgq_pop(&o->kept, &m);
        msgq_push(&z->moved, &m);
        zmq_msg_close(&m);
    }
    msgq_free(&o->kept);
    z->nmoved++;
    for (int i = 0; i < z->l.npeers; i++)
        if (!z->l.peers[i].gone && z->op[i].mode == FIN_TRACKED) tell_moved(z, &z->l.peers[i]);
}

static void on_grant(zt_out *z, peer *pe, uint32_t n) {
    outpeer *o = op_of(z, pe);
    pe->credit += n;
    if (++o->grants > 1) o->delivered += n;
    if (o->grants > 1 && o->mode == FIN_UNKNOWN) { /* credit, no word on finishes: foreign */
        o->mode = FIN_LEGACY;
        msgq_free(&o->kept);
    }
}

/* 'F' n: the first n records sent to pe are finished, their copies dropped. */
static void on_finished(zt_out *z, peer *pe, uint64_t n) {
    outpeer *o = op_of(z, pe);
    if (o->mode == FIN_LEGACY) return;
    if (o->mode == FIN_UNKNOWN && z->nmoved) tell_moved(z, pe);
    o->mode = FIN_TRACKED;
    while (o->kept.len && o->finished < n) {
        zmq_msg_t m;
        msgq_pop(&o->kept, &m);
        zmq_msg_close(&m);
        o->finished++;
    }
}

/* A live receiver with credit and room, round robin; with tracked_only, one that reports
 * finishes (it passes on word of a move before the moved records).  NULL if none. */
static peer *ready_peer(zt_out *z, bool tracked_only) {
    for (int k = 0; k < z->l.npeers; k++) {
        int i = (z->next + k) % z->l.npeers;
        peer *pe = &z->l.peers[i];
        if (pe->gone || pe->credit == 0 || !has_room(z, &z->op[i])) continue;
        if (tracked_only && z->op[i].mode != FIN_TRACKED) continue;
        z->next = (i + 1) % z->l.npeers;
        return pe;
    }
    return NULL;
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

/* One record to pe, a copy kept when pe may die with it.  False when pe has gone and no copy
 * of the record moved on with its others: then it is the caller's to send elsewhere. */
static bool send_record_to(zt_out *z, peer *pe, zmq_msg_t *m) {
    outpeer *o = op_of(z, pe);
    bool kept = keeps(z, o);
    if (kept) msgq_push(&o->kept, m);
    if (!send_msg_to(&z->l, pe, m)) {
        receiver_gone(z, pe, false); /* mid-stream: the kept copy joins z->moved */
        return kept;
    }
    pe->credit--;
    pe->count++;
    return true;
}

/* The records of dead receivers go out again before any new one. */
static void resend_moved(zt_out *z) {
    while (z->moved.len) {
        peer *pe = ready_peer(z, true);
        if (!pe) return;
        zmq_msg_t m;
        msgq_pop(&z->moved, &m);
        send_record_to(z, pe, &m);
    }
}

/* Only when no receiver is left to take them does a fan-out fail: its receivers died (not
 * left, as a closed pipe does), or those left report no finishes and cannot take moved
 * records. */
static void check_left(zt_out *z) {
    if (!z->l.router || z->l.npeers < z->l.want_peers) return;
    int live = 0, able = 0;
    for (int i = 0; i < z->l.npeers; i++) {
        live += !z->l.peers[i].gone;
        able += !z->l.peers[i].gone && z->op[i].mode != FIN_LEGACY;
    }
    if (z->nmoved && !live)
        kiln_die(EX_KILN_IO, "%s: no receiver left: %u died mid-stream (%u records undelivered)",
                 z->l.url, z->nmoved, z->moved.len);
    if (z->moved.len && !able)
        kiln_die(EX_KILN_IO,
                 "%s: %u records of a receiver that died, and no live receiver that reports "
                 "finishes to take them",
                 z->l.url, z->moved.len);
}

/* Before the eos: every record a receiver was sent is finished, moved ones included. */
static void drain_unfinished(zt_out *z) {
    double t0 = kiln_now();
    while (z->l.router && !kiln_stop_signal()) {
        resend_moved(z);
        check_left(z);
        bool done = z->moved.len == 0;
        for (int i = 0; i < z->l.npeers; i++) {
            outpeer *o = &z->op[i];
            if (z->l.peers[i].gone || !o->kept.len) continue;
            if (o->mode == FIN_UNKNOWN && kiln_now() - t0 > DECLARE_WAIT_S) {
                o->mode = FIN_LEGACY; /* a receiver that took too few records to say */
                msgq_free(&o->kept);
                continue;
            }
            done = false;
        }
        if (done) return;
        pump(z, 100, true);
    }
}

/* ---- what a worker's input end asks of its output end ---- */

static void *out_socket(const zt_out *z) {
    return z->l.sock;
}

static uint64_t out_sent(const zt_out *z) {
    return z->l.peers[0].count;
}

static uint64_t out_delivered(const zt_out *z) {
    return z->op[0].delivered;
}

static void out_tell_moved(zt_out *z, uint32_t moved) {
    if (moved <= z->nmoved) return;
    z->nmoved = moved;
    if (!z->l.peers[0].gone) tell_moved(z, &z->l.peers[0]);
}

/* ---- sending ---- */

/* Receivers that vanished count as gone, like a closed pipe, unless their records move. */
static void check_receivers(void *end, recv_result rr) {
    zt_out *z = end;
    for (int i = 0; i < z->l.npeers; i++) {
        peer *pe = &z->l.peers[i];
        if (!pe->gone && !pe->acked && link_peer_gone(&z->l, pe, rr)) receiver_gone(z, pe, false);
    }
}

static uint64_t be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* Handle one control message, disconnect or monitor event; false on timeout or interruption
 * only, so that `while (pump(z, 0, false))` drains everything that is ready. */
static bool pump(zt_out *z, int timeout_ms, bool interruptible) {
    recv_result rr = link_recv(&z->l, timeout_ms, interruptible);
    if (rr != RECV_MSG) return rr == RECV_DISCONNECT || rr == RECV_EVENT;
    bool is_new;
    peer *pe = link_peer(&z->l, &is_new);
    if (!pe) return true;
    if (is_new && z->hdr && !link_send(&z->l, pe, z->hdr, z->hdr_len)) receiver_gone(z, pe, false);
    const uint8_t *p = zmq_msg_data(&z->l.msg);
    size_t n = zmq_msg_size(&z->l.msg);
    if (n == 5 && p[0] == 'C')
        on_grant(z, pe, (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    else if (n == 1 && p[0] == 'A')
        pe->acked = true;
    else if (n == 1 && p[0] == 'B')
        receiver_gone(z, pe, true);
    else if (n == 9 && p[0] == 'F')
        on_finished(z, pe, be64(p + 1));
    else if (n == 1 && p[0] == 'U' && op_of(z, pe)->mode == FIN_UNKNOWN)
        op_of(z, pe)->mode = FIN_LEGACY, msgq_free(&op_of(z, pe)->kept);
    return true;
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
            receiver_gone(z, &z->l.peers[i], false);
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
            pump(z, 0, false); /* take pending credit, finishes and goodbyes first */
        resend_moved(z);
        check_left(z);
        peer *pe = z->moved.len ? NULL : ready_peer(z, false);
        if (pe) {
            zmq_msg_t m;
            gather(&m, iov, iovcnt, total);
            if (send_record_to(z, pe, &m)) return true;
            continue;
        }
        if (!live_peers(z)) return false;
        if (!pump(z, -1, true) && kiln_stop_now()) return true;
    }
}

/* Records go out as they are sent: nothing waits in kiln. */
static bool zt_flush(kt_conn *c) {
    zt_out *z = (zt_out *)c;
    check_left(z);
    return z->l.npeers < z->l.want_peers || live_peers(z) > 0;
}

/* Take every pending goodbye and disconnect without waiting; gone once every expected
 * receiver came and none is left. */
static bool zt_gone(kt_conn *c) {
    zt_out *z = (zt_out *)c;
    while (pump(z, 0, false)) {
    }
    check_left(z);
    return z->l.npeers >= z->l.want_peers && z->l.npeers > 0 && !live_peers(z);
}

static void free_out(zt_out *z) {
    int linger = 0;
    zmq_setsockopt(z->l.sock, ZMQ_LINGER, &linger, sizeof linger);
    link_close(&z->l);
    for (int i = 0; i < z->l.npeers; i++) msgq_free(&z->op[i].kept);
    msgq_free(&z->moved);
    if (local_out == z) local_out = NULL;
    free(z->hdr);
    free(z->base.name);
    free(z);
}

/* Every record finished (a fan-out's moved ones too); then every expected receiver gets its
 * own eos with its own count, and acknowledges it; after a stop signal the wait is bounded. */
static bool zt_finish(kt_conn *c, const char *status, uint64_t seq) {
    zt_out *z = (zt_out *)c;
    drain_unfinished(z);
    z->ending = true;
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
