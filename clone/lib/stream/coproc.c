/* coproc — a command on a pipe pair. */
#include "stream/coproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

struct kcoproc {
    pid_t pid;
    int in_fd, out_fd; /* the stage's ends, until the stream layer has opened its own */
    int status;        /* waitpid's, once reaped */
    int reaped;
    size_t pipe_bytes;
    char in_url[32], out_url[32], what[64];
};

/* The pipe as big as the system lets it be, up to 1 MiB; its size. */
static size_t widen(int fd) {
    int got = fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    if (got < 0) got = fcntl(fd, F_GETPIPE_SZ);
    return got > 0 ? (size_t)got : 65536;
}

_Noreturn static void exec_child(const char *cmd, int in_fd, int out_fd) {
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0) _exit(127);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

kcoproc *kcoproc_start(const char *cmd, char *err, size_t errsz) {
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) < 0) {
        kiln_errf(err, errsz, EX_KILN_IO, "pipe: %s", strerror(errno));
        return NULL;
    }
    if (pipe2(from, O_CLOEXEC) < 0) {
        kiln_errf(err, errsz, EX_KILN_IO, "pipe: %s", strerror(errno));
        close(to[0]), close(to[1]);
        return NULL;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        kiln_errf(err, errsz, EX_KILN_IO, "fork: %s", strerror(errno));
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        return NULL;
    }
    if (pid == 0) exec_child(cmd, to[0], from[1]); /* dup2 clears CLOEXEC on 0 and 1 */
    setpgid(pid, pid);                             /* (both sides set it: whichever runs first) */
    close(to[0]);
    close(from[1]);
    kcoproc *c = xcalloc(1, sizeof *c);
    c->pid = pid;
    c->in_fd = to[1];
    c->out_fd = from[0];
    size_t a = widen(to[1]), b = widen(from[0]);
    c->pipe_bytes = a < b ? a : b;
    /* the stream layer opens /dev/fd/N afresh, then kcoproc_opened closes these */
    snprintf(c->in_url, sizeof c->in_url, "/dev/fd/%d", to[1]);
    snprintf(c->out_url, sizeof c->out_url, "/dev/fd/%d", from[0]);
    return c;
}

const char *kcoproc_in_url(const kcoproc *c) {
    return c->in_url;
}

const char *kcoproc_out_url(const kcoproc *c) {
    return c->out_url;
}

size_t kcoproc_pipe_bytes(const kcoproc *c) {
    return c->pipe_bytes;
}

void kcoproc_opened(kcoproc *c) {
    if (c->in_fd >= 0) close(c->in_fd);
    if (c->out_fd >= 0) close(c->out_fd);
    c->in_fd = c->out_fd = -1;
}

static bool try_reap(kcoproc *c) {
    if (!c->reaped && waitpid(c->pid, &c->status, WNOHANG) == c->pid) c->reaped = 1;
    return c->reaped;
}

const char *kcoproc_describe(kcoproc *c, double wait_s) {
    for (double t = 0; !try_reap(c) && t < wait_s; t += 0.01)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    if (!c->reaped)
        snprintf(c->what, sizeof c->what, "still running");
    else if (WIFEXITED(c->status))
        snprintf(c->what, sizeof c->what, "exited with status %d", WEXITSTATUS(c->status));
    else
        snprintf(c->what, sizeof c->what, "killed by signal %d", WTERMSIG(c->status));
    return c->what;
}

int kcoproc_wait(kcoproc *c) {
    kcoproc_opened(c);
    while (!c->reaped && waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR) continue;
    c->reaped = 1;
    int rc = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : 128 + WTERMSIG(c->status);
    free(c);
    return rc;
}
