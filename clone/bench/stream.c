/* bench-stream — the stream layer's cost over a raw byte copy (bench/stream.sh drives it).
 *
 *   bench-stream gen N BYTES [URL]   write N records, each a U8 tensor of BYTES
 *   bench-stream sink [URL]          read records, print records and payload bytes
 *   bench-stream raw-gen N BYTES [wide]  write N*BYTES raw bytes in BYTES writes
 *                                    (wide: through a 1 MiB pipe, as kiln's writer makes it)
 *   bench-stream raw-sink BYTES      read everything in BYTES reads, print the byte count */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/stream.h"
#include "core/util.h"

static int gen(uint64_t n, uint64_t bytes, const char *url) {
    uint8_t *data = xmalloc(bytes);
    for (uint64_t i = 0; i < bytes; i++) data[i] = (uint8_t)(i * 31);
    kwriter *w = kwriter_open(url, 1);
    kwriter_hdr_begin(w, NULL, "bench", 0);
    kwriter_end(w);
    ktensor t = ktensor_1d(KT_U8, data, bytes);
    for (uint64_t i = 0; i < n; i++) {
        kwriter_begin(w, "sample");
        kw_u64(w, "id", i);
        kw_tensor(w, "image", &t);
        kwriter_end(w);
    }
    kwriter_close(w, "ok");
    free(data);
    return 0;
}

static int sink(const char *url) {
    kreader *r = kreader_open(url, 1);
    krec rec;
    uint64_t n = 0, bytes = 0, check = 0;
    while (kreader_next(r, &rec)) {
        ktensor t;
        if (!krec_tensor(&rec, "image", &t)) kiln_die(EX_KILN_DATA, "record without image");
        check += ((const uint8_t *)t.data)[t.nbytes - 1]; /* touch the data */
        bytes += t.nbytes;
        n++;
    }
    printf("%llu %llu %llu\n", (unsigned long long)n, (unsigned long long)bytes,
           (unsigned long long)check);
    kreader_close(r);
    return 0;
}

static int raw_gen(uint64_t n, uint64_t bytes, bool wide) {
    uint8_t *data = xmalloc(bytes);
    if (wide) (void)fcntl(1, F_SETPIPE_SZ, 1 << 20); /* as kiln's writer does */
    memset(data, 7, bytes);
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t off = 0; off < bytes;) {
            ssize_t k = write(1, data + off, bytes - off);
            if (k < 0 && errno != EINTR) kiln_die(EX_KILN_IO, "write: %s", strerror(errno));
            if (k > 0) off += (uint64_t)k;
        }
    free(data);
    return 0;
}

static int raw_sink(uint64_t bytes) {
    uint8_t *buf = xmalloc(bytes);
    uint64_t total = 0;
    for (ssize_t k; (k = read(0, buf, bytes)) != 0;) {
        if (k < 0 && errno != EINTR) kiln_die(EX_KILN_IO, "read: %s", strerror(errno));
        if (k > 0) total += (uint64_t)k;
    }
    printf("%llu\n", (unsigned long long)total);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    kiln_set_prog("bench-stream");
    kiln_signals_init();
    if (argc >= 4 && !strcmp(argv[1], "gen"))
        return gen(opt_u64("N", argv[2]), opt_u64("BYTES", argv[3]), argc > 4 ? argv[4] : NULL);
    if (argc >= 2 && !strcmp(argv[1], "sink")) return sink(argc > 2 ? argv[2] : NULL);
    if (argc >= 4 && !strcmp(argv[1], "raw-gen"))
        return raw_gen(opt_u64("N", argv[2]), opt_u64("BYTES", argv[3]),
                       argc > 4 && !strcmp(argv[4], "wide"));
    if (argc == 3 && !strcmp(argv[1], "raw-sink")) return raw_sink(opt_u64("BYTES", argv[2]));
    fprintf(
        stderr,
        "usage: bench-stream gen N BYTES [URL] | sink [URL] | raw-gen N BYTES | raw-sink BYTES\n");
    return EX_KILN_USAGE;
}
