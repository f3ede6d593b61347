/* zmqio — records over ZeroMQ, one record per message, for stream.c.
 *
 * Each edge pairs a ROUTER on the side that binds with DEALERs on the side that connects,
 * so the bound side can address each peer.  The receiver grants credit (a few records),
 * which bounds memory and balances load across workers like PUSH/PULL; the sender sends
 * only against credit.  At the end the sender sends each peer its own eos and waits for
 * every peer's acknowledgement, so nothing in flight is lost when it exits.  A receiver
 * bound for N peers (fan-in) ends after N eos and reports one merged eos.
 * The wire protocol is documented in README.md, "Streams over ZeroMQ". */
#ifndef KILN_ZMQIO_H
#define KILN_ZMQIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

bool kzmq_is_url(const char *url);

typedef struct kzin kzin;
/* Open for reading; exits 2 on a bad URL, 74 when it cannot bind/connect. */
kzin *kzin_open(const char *url, int peers);
/* The next record: 1 with p and n valid until the next call.  The merged eos is returned as
 * a record like any other.  0 when interrupted by a stop signal. */
int kzin_next(kzin *z, const uint8_t **p, size_t *n);
/* Tell the senders we stop early (they see it as a closed pipe), then close. */
void kzin_close(kzin *z, bool early);

typedef struct kzout kzout;
kzout *kzout_open(const char *url, int peers);
/* Send one record gathered from iov; is_hdr marks the hdr, which every peer gets first.
 * Returns false when every receiver has gone. */
bool kzout_send(kzout *z, const struct iovec *iov, int iovcnt, size_t total, bool is_hdr);
/* Send each peer its eos {count, status} and wait for all acknowledgements; frees z. */
void kzout_finish(kzout *z, const char *status, uint64_t first_seq);

#endif
