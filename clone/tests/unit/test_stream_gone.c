/* stream: a downstream that has gone (stream.h, kwriter_gone) — found by looking and by a
 * failed write, records dropped, reading stops, and kiln_finish exits 0 without a word. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "stream/stream.h"

static float big[70000]; /* 280 KB: written by reference, past any pipe's buffer */

static void url_of(int fd, char *buf, size_t n) {
    snprintf(buf, n, "/dev/fd/%d", fd);
}

static void write_sample(kwriter *w, uint64_t id) {
    kwriter_begin(w, "sample");
    kw_u64(w, "id", id);
    ktensor t = ktensor_1d(KT_F32, big, 70000);
    kw_tensor(w, "big", &t);
    kwriter_end(w);
}

/* A stream file with a hdr and n samples, for a reader. */
static void make_stream(const char *path, int n) {
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "test", 0);
    kwriter_end(w);
    for (int i = 0; i < n; i++) write_sample(w, (uint64_t)i);
    kwriter_close(w, "ok");
}

/* A writer whose pipe reader closes: kwriter_gone says so before anything is written. */
static kwriter *writer_to_closed_pipe(void) {
    int p[2];
    char url[32];
    CHECK(pipe(p) == 0);
    url_of(p[1], url, sizeof url);
    kwriter *w = kwriter_open(url, 1);
    close(p[1]);
    kwriter_hdr_begin(w, NULL, "test", 0);
    kwriter_end(w);
    CHECK(!kwriter_gone(w));
    close(p[0]);
    return w;
}

static void test_found_by_looking(const char *path) {
    kreader *r = kreader_open(path, 1);
    krec rec;
    CHECK(kreader_next(r, &rec)); /* nothing has gone yet */
    kwriter *w = writer_to_closed_pipe();
    usleep(20000); /* kwriter_gone looks at most every 10 ms */
    CHECK(kwriter_gone(w));
    write_sample(w, 1); /* dropped, quietly */
    CHECK(kwriter_count(w) == 0);
    CHECK(!kreader_next(r, &rec));    /* nobody is left to read what would be made of it */
    CHECK(kreader_status(r) == NULL); /* stopped before the eos */
    kwriter_close(w, "ok");
    kreader_close(r);
}

/* In a child: a stage writing into a closed pipe, found out by the failed write alone; it
 * ends with kiln_finish.  Its exit status and what it said on stderr come back. */
static int stage_into_closed_pipe(const char *path, char *said, size_t saidsz) {
    int err[2];
    CHECK(pipe(err) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        kreader *r = kreader_open(path, 1);
        kwriter *w = writer_to_closed_pipe();
        krec rec;
        int n = 0;
        while (kreader_next(r, &rec)) {
            kwriter_pass(w, &rec);
            n++;
        }
        if (n != 1 || !kwriter_gone(w)) fprintf(stderr, "passed %d records\n", n);
        kiln_finish(r, w);
    }
    close(err[1]);
    ssize_t n = read(err[0], said, saidsz - 1);
    said[n > 0 ? n : 0] = 0;
    close(err[0]);
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    return status;
}

int main(void) {
    kiln_set_prog("test-stream-gone");
    signal(SIGPIPE, SIG_IGN); /* as every stage does (kiln_signals_init) */
    char path[] = "/tmp/kiln-test-gone-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    make_stream(path, 5);

    char said[256];
    int status = stage_into_closed_pipe(path, said, sizeof said);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(said[0] == 0);
    if (said[0]) fprintf(stderr, "the stage said: %s", said);

    test_found_by_looking(path); /* last: the process's output stays gone */
    unlink(path);
    return check_report("test_stream_gone");
}
