/* znet — ZeroMQ edges that cross hosts: endpoint checks, CURVE keys and the ZAP handler.
 *
 * zmqio.c opens every ZeroMQ socket; before it binds or connects, it asks this module to
 * check the endpoint (a tcp port must be 1..65535, or '*' to bind) and to secure the socket.
 * A tcp socket is secured with CURVE when the stage has keys (kt_net below, or the
 * KILN_CURVE_* variables): a bound end is a CURVE server that admits only the listed client
 * public keys, checked by a ZAP handler (a thread on inproc://zeromq.zap.01 that logs every
 * refusal with the refused key); a connecting end is a CURVE client of the server's public
 * key.  ipc:// and inproc:// stay plain: they never leave the host.  A tcp endpoint that is
 * not loopback and has no keys gets a warning that records travel in clear.
 *
 * Keys are ZeroMQ's Z85 text (40 characters): NAME.key holds the secret key, NAME.pub the
 * public one, as znet_write_keypair (kiln keygen) writes them.  README.md, "Stages on other
 * hosts", shows the recipe. */
#ifndef KILN_ZNET_H
#define KILN_ZNET_H

#include <stdbool.h>
#include <stddef.h>

/* The stage's network settings: options write them (KOPT_STREAM_NET in options.h); a field
 * left NULL (or 0) falls back to its environment variable. */
typedef struct {
    const char *curve_key;    /* this end's secret key file ($KILN_CURVE_KEY) */
    const char *curve_server; /* the bound end's public key file ($KILN_CURVE_SERVER) */
    const char
        *curve_clients;     /* public keys a bound end admits: file or dir ($KILN_CURVE_CLIENTS) */
    double connect_timeout; /* seconds a connecting end tries; 0: forever ($KILN_CONNECT_TIMEOUT) */
} kt_net_opts;

extern kt_net_opts kt_net;

/* Exit 2 when a tcp endpoint's port is out of range (ZeroMQ would bind some other port). */
void znet_check_endpoint(const char *url, const char *ep, bool bind);
/* Set CURVE on sock when ep is tcp and the stage has keys (starting the ZAP handler on ctx
 * for a bound end); warn about clear text off loopback.  Exits 2 on missing or bad keys. */
void znet_secure(void *ctx, void *sock, const char *url, const char *ep, bool bind);
/* After zmq_ctx_term: join the ZAP handler of the context that ended, if any. */
void znet_context_ended(void);
/* Why a connecting end may not be connected yet, into why: its host does not resolve, or
 * nothing is bound there. */
void znet_unreachable_why(const char *url, char *why, size_t whysz);
/* Seconds a connecting end keeps trying before it gives up (0: forever). */
double znet_connect_timeout(void);

/* Write NAME.key (secret, mode 0600) and NAME.pub; 0, or an exit code with err filled.
 * Refuses to overwrite an existing key. */
int znet_write_keypair(const char *name, char *err, size_t errsz);

#endif
