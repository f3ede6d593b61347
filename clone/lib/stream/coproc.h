/* coproc — a command as a record filter beside the stage: `sh -c CMD` started with its stdin
 * and stdout on a pipe pair, so the stage writes records to it and reads its answers back
 * (kiln ppo's reward stage, docs/stages-rlhf.md).  The command runs in its own process group,
 * so a Ctrl-C at the terminal reaches the stage, which ends the command by closing its input,
 * not the command mid-answer.  Both pipes are enlarged (up to 1 MiB, F_SETPIPE_SZ) so a batch
 * of records can be written whole before its answers are read.
 *
 *     kcoproc *c = kcoproc_start("kiln judge --score afinn", err, sizeof err);
 *     kwriter *to = kwriter_open(kcoproc_in_url(c), 1);    // then hdr, records, flush
 *     kreader *from = kreader_open(kcoproc_out_url(c), 1); // after the hdr went out
 *     kcoproc_opened(c);
 *     ...
 *     kwriter_close(to, "ok"); kreader_next(from, ...) to its eos; kcoproc_wait(c); */
#ifndef KILN_COPROC_H
#define KILN_COPROC_H

#include <stddef.h>

typedef struct kcoproc kcoproc;

/* Start the command.  NULL with the reason in err when the pipes or fork fail. */
kcoproc *kcoproc_start(const char *cmd, char *err, size_t errsz);
/* Paths for kwriter_open / kreader_open: the command's stdin and stdout (/dev/fd/N). */
const char *kcoproc_in_url(const kcoproc *c);
const char *kcoproc_out_url(const kcoproc *c);
/* Once kwriter_open and kreader_open have opened the URLs: close the descriptors they were
 * opened from (else the command would never see the end of its input). */
void kcoproc_opened(kcoproc *c);
/* Bytes a pipe holds (what may be written before the command must have read). */
size_t kcoproc_pipe_bytes(const kcoproc *c);
/* How the command is doing, for messages: "running", "exited with status 3", "killed by
 * signal 9"; waits up to wait_s seconds for it to end first. */
const char *kcoproc_describe(kcoproc *c, double wait_s);
/* Wait for the command to end (after its input was closed); its exit status, 128 + signal
 * when killed.  Frees c. */
int kcoproc_wait(kcoproc *c);

#endif
