/* stream — the record stream between stages (README.md, "The record stream").
 *
 * A stream is a sequence of MessagePack maps, each with "t" (type) and "seq" (u64):
 * concatenated on a pipe, one map per ZeroMQ message.  `hdr` comes first, `eos` last.
 * kreader hands a stage one decoded record at a time, after its transport bounded it
 * (record size, map/array lengths, nesting depth: mpscan.h) so msgpack-c never trusts a
 * hostile length header.  kwriter builds records field by field and writes them without
 * copying tensor data.  Pipes, files and ZeroMQ sockets are transports (transport.h): this
 * module knows records, they know bytes.
 *
 * Every failure here is fatal with a clear message and the documented exit code:
 * 65 for a record that does not parse, 74 for I/O errors and truncated streams. */
#ifndef KILN_STREAM_H
#define KILN_STREAM_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "stream/mpscan.h" /* the limits on every record read: KILN_MAX_*, kiln_max_record_bytes */

#define KILN_FORMAT_VERSION 1

/* ---- records ---------------------------------------------------------------------------- */

typedef struct krec {
    char t[32];                /* record type, NUL-terminated ("sample", "batch", ...) */
    uint64_t seq;              /* as read */
    const msgpack_object *map; /* the whole record */
    const uint8_t *raw;        /* the record's bytes as they arrived */
    size_t raw_len;
    uint64_t index;  /* 0-based position in this input (hdr is record 0): for messages */
    uint64_t offset; /* byte offset in this input where the record starts */
} krec;

/* Field lookup; NULL when absent. */
const msgpack_object *krec_get(const krec *r, const char *key);
bool krec_is(const krec *r, const char *type);
/* Typed getters: false when absent or of another type.  Strings are not NUL-terminated. */
bool krec_str(const krec *r, const char *key, const char **s, size_t *n);
bool krec_u64(const krec *r, const char *key, uint64_t *v);
bool krec_i64(const krec *r, const char *key, int64_t *v);
bool krec_f64(const krec *r, const char *key, double *v); /* accepts ints too */
/* A tensor field, validated (dtype known, shape sane, data length = prod(shape)*itemsize). */
bool krec_tensor(const krec *r, const char *key, ktensor *out);
/* The same on a bare msgpack object (a tensor nested in an array or map). */
bool kobj_tensor(const msgpack_object *o, ktensor *out);
const msgpack_object *kobj_get(const msgpack_object *map, const char *key);
bool kobj_str_eq(const msgpack_object *o, const char *s);
/* Copy a string object into buf (NUL-terminated, truncated); false if not a string. */
bool kobj_cstr(const msgpack_object *o, char *buf, size_t bufsize);

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct kreader kreader;

/* url: NULL or "-" reads stdin; a path reads a file; tcp://, ipc://, inproc:// (with the
 * CZMQ prefixes '@' bind, '>' connect; default connect) read from ZeroMQ.
 * peers: how many upstream senders end the stream (fan-in over a bound socket); 1 otherwise.
 * The hdr is read before returning, so kreader_hdr() is valid at once. */
kreader *kreader_open(const char *url, int peers);
/* The upstream hdr record (valid for the reader's lifetime). */
const krec *kreader_hdr(const kreader *r);
/* The next record that is neither hdr nor eos.  Concatenated streams on a byte stream
 * (`cat a.rec b.rec`) are read segment by segment, each eos count checked; anything after
 * an eos that does not start with a hdr exits 65.  After a first stop signal a reader of a
 * running upstream (a pipe, a socket) reads on to its eos (util.h, kiln_stop_now).
 * Returns false at the clean end (eos seen),
 * when a stop signal interrupted the wait, or once a writer's downstream has gone (see
 * kwriter_gone: nobody is left to read what the stage would make of it).  The record is
 * valid until the next call.  A truncated stream or a bad record exits 74 / 65 with a
 * message. */
bool kreader_next(kreader *r, krec *out);
/* After kreader_next returned false: the upstream eos status ("ok", "error",
 * "interrupted"), or NULL if the read stopped before eos. */
const char *kreader_status(const kreader *r);
/* The name used for the input in messages ("stdin", a path, a URL). */
const char *kreader_name(const kreader *r);
void kreader_close(kreader *r);
/* Call fn(ctx) whenever a reader finds no input ready and is about to wait for it (before the
 * writers are flushed for the same reason; not while records are already buffered or waiting
 * in the pipe or socket, and never on a file): a stage that holds records back to batch them
 * writes them out then,
 * so a peer that waits for their results (kiln ppo and its reward stage on a pipe pair) is
 * never stuck behind a batch that cannot fill.  fn may write records; NULL removes it. */
void kiln_on_input_wait(void (*fn)(void *ctx), void *ctx);

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct kwriter kwriter;

/* url: NULL or "-" writes stdout (refused when it is a terminal); a path writes a file;
 * ZeroMQ URLs as for kreader (default bind).  peers: how many downstream receivers must
 * get an eos (fan-out over a bound socket); 1 otherwise. */
kwriter *kwriter_open(const char *url, int peers);

/* The hdr record: format version, this stage, schema, seed, and the upstream chain copied
 * from `upstream` (may be NULL).  schema NULL keeps the upstream's.  Extra fields may follow with
 * kw_* before kwriter_end. */
void kwriter_hdr_begin(kwriter *w, const krec *upstream, const char *schema, uint64_t seed);

/* Build one record: begin, fields, end.  Tensor data is referenced, not copied, until
 * kwriter_end returns. */
void kwriter_begin(kwriter *w, const char *type);
void kw_str(kwriter *w, const char *key, const char *s);
void kw_strn(kwriter *w, const char *key, const char *s, size_t n);
void kw_u64(kwriter *w, const char *key, uint64_t v);
void kw_i64(kwriter *w, const char *key, int64_t v);
void kw_f64(kwriter *w, const char *key, double v);
void kw_bool(kwriter *w, const char *key, bool v);
void kw_tensor(kwriter *w, const char *key, const ktensor *t);
void kw_obj(kwriter *w, const char *key, const msgpack_object *o); /* copy a value */
/* Nested values: kw_key, then pack the value with msgpack_pack_* on kw_packer(w). */
void kw_key(kwriter *w, const char *key);
msgpack_packer *kw_packer(kwriter *w);
/* Pack a tensor value (after kw_key, or inside an array) referencing its data. */
void kw_tensor_value(kwriter *w, const ktensor *t);
void kwriter_end(kwriter *w);

/* Write out records gathered in memory now (small records are batched; a stage about to
 * compute for long after emitting metrics calls this). */
void kwriter_flush(kwriter *w);

/* Copy a record through unchanged except for its seq. */
void kwriter_pass(kwriter *w, const krec *r);

/* Write eos {count, status} and flush; over ZeroMQ, wait until every receiver has it.
 * Without an eos when the downstream has gone.  Frees the writer.  status: "ok", "error"
 * or "interrupted". */
void kwriter_close(kwriter *w, const char *status);
/* Records written so far (excluding hdr and eos). */
uint64_t kwriter_count(const kwriter *w);
/* True once the downstream has gone: a closed pipe (a write failed with EPIPE, or the pipe's
 * reader is found closed), or every ZeroMQ receiver left.  From then on records are dropped
 * and kreader_next returns false; the stage should stop its own loops and end with
 * kiln_finish, which exits 0 quietly.  Looks at the downstream without blocking, at most
 * every 10 ms, so a stage that writes seldom (train between metrics) notices too. */
bool kwriter_gone(kwriter *w);

/* ---- a stage's life ------------------------------------------------------------------- */

/* The usual end of a stage: close the writer with the right status and exit with the
 * right code (0, 130/143 after a stop signal, 74 when the upstream's eos says error, so
 * `... | kiln ckpt` fails in a shell without pipefail).  A stage whose downstream is gone
 * exits 0 quietly (README.md, "Exit codes, signals and closed pipes": `kiln ... | head`
 * is not an error). */
_Noreturn void kiln_finish(kreader *r, kwriter *w);

/* The end of a stage that must stop on an error after writing what it legitimately could:
 * "prog: msg" on stderr, eos "error" downstream (so the next stage knows), exit code. */
_Noreturn void kiln_fail(kreader *r, kwriter *w, int code, const char *msg);

/* For a stage that writes text to stdout (detok, sample): call right after a write or
 * fflush to stdout failed.  Exits 0 quietly when stdout's reader has gone (`kiln detok |
 * head`), else 74 naming the error. */
_Noreturn void kiln_stdout_failed(void);

/* For a stage that writes a file at the end of its input instead of records (kiln palette,
 * kiln bpe): close the reader and say whether to write.  0: write it; the exit status of a
 * stop signal: write nothing and return that; an upstream that ended otherwise than "ok"
 * exits 65 ("upstream ended with status S: no WHAT written"). */
int kreader_finish_for_file(kreader *r, const char *what);

#endif
