/* mpscan — measures one MessagePack object in a byte buffer without trusting it, and owns
 * the limits every record read must keep.
 *
 * msgpack-c believes length headers: a 5-byte map32 header makes it reserve gigabytes.
 * So before msgpack-c sees a record, mpscan walks it and enforces kiln's limits: total
 * size, entries per map/array, nesting depth.  It also says how many bytes a partial
 * record needs at least, so a reader fails fast on a bin32 claiming 4 GB instead of
 * waiting for data that will never come.  Both transports (fdio.c, zmqio.c) bound what
 * they receive with kiln_record_limits() before anything above them decodes it. */
#ifndef KILN_MPSCAN_H
#define KILN_MPSCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t max_bytes;     /* whole object */
    uint32_t max_entries; /* per map or array */
    int max_depth;        /* nesting of maps/arrays; the top-level map is depth 1 */
    uint32_t max_objects; /* values in the whole object (msgpack-c allocates one each); 0: none */
} mpscan_limits;

typedef enum {
    MPSCAN_OK,   /* *len = the object's size */
    MPSCAN_MORE, /* incomplete: *len = a lower bound of the total size needed */
    MPSCAN_BAD,  /* invalid or over a limit: why says which; *len = offset of the fault */
} mpscan_result;

/* kiln's limits on every record it reads (README.md, "The record stream").  stream.h
 * re-exports them for stages that size their own output to fit. */
#define KILN_MAX_RECORD_DEFAULT (256u << 20) /* bytes; env KILN_MAX_RECORD overrides */
#define KILN_MAX_CONTAINER      1024         /* entries in one map or array */
#define KILN_MAX_DEPTH          8            /* nesting of maps and arrays */
#define KILN_MAX_OBJECTS        (1u << 20)   /* values in one record: bounds msgpack-c's zone */

/* The record size limit: KILN_MAX_RECORD from the environment when it is a number of at
 * least 64, else KILN_MAX_RECORD_DEFAULT. */
size_t kiln_max_record_bytes(void);
/* All of the limits above, for mpscan(). */
mpscan_limits kiln_record_limits(void);

mpscan_result mpscan(const uint8_t *p, size_t avail, const mpscan_limits *lim, size_t *len,
                     char *why, size_t whysz);

#endif
