/* afile — atomic file writes: a file appears complete under its name or not at all.
 *
 * Bytes go to a hidden temp file in the target's directory (".NAME.tmp.PID.N", created
 * with O_EXCL and the usual 0666 & ~umask permissions); commit fsyncs it, renames it over
 * the target and fsyncs the directory so the rename itself survives a crash.  Any failure,
 * a full disk included, removes the temp file and leaves an existing target untouched.
 * Used for checkpoints (lib/ckpt/safetensors) and small pointer files (kiln ckpt's `latest`).
 *
 * Errors are returned as exit codes (0, or 74 for I/O) with "PATH: what went wrong". */
#ifndef KILN_AFILE_H
#define KILN_AFILE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct afile afile;

/* NULL (and a message) when the temp file cannot be created. */
afile *afile_open(const char *path, char *err, size_t errsz);
/* Append bytes; false after the first failure (the error is kept for afile_commit). */
bool afile_write(afile *a, const void *bytes, size_t n);
/* fsync, rename, fsync the directory; frees a.  0, or 74 with the message of the first
 * failure (including one from afile_write); on failure the temp file is removed. */
int afile_commit(afile *a, char *err, size_t errsz);
/* The temp file's name, for code that can only write by name (libpng's writer): write
 * there, then afile_commit (its fsync reaches what was written under that name). */
const char *afile_temp_path(const afile *a);
/* Give up: remove the temp file, free a. */
void afile_abort(afile *a);

/* The whole cycle for bytes already in memory. */
int afile_write_all(const char *path, const void *bytes, size_t n, char *err, size_t errsz);

/* Point the symlink path at target (relative to path's directory), replacing whatever
 * link or file was there in one rename; fsyncs the directory. */
int afile_symlink(const char *target, const char *path, char *err, size_t errsz);

#endif
