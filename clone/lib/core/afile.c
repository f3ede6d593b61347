/* afile — temp file, write, fsync, rename, fsync the directory (see afile.h). */
#include "core/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

struct afile {
    int fd;
    char *path, *tmp, *dir;
    int err;            /* errno of the first failure, 0 if none */
    const char *failed; /* what failed: "write", "fsync", ... */
};

static void set_error(char *err, size_t errsz, const char *path, const char *what, int e) {
    if (!err || !errsz) return;
    const char *why = e == ENOSPC || e == EDQUOT ? "disk full"
                      : e == EFBIG               ? "file too large"
                                                 : NULL;
    if (why)
        snprintf(err, errsz, "%s: %s: %s (%s); any earlier file is intact", path, what, why,
                 strerror(e));
    else
        snprintf(err, errsz, "%s: %s: %s", path, what, strerror(e));
}

afile *afile_open(const char *path, char *err, size_t errsz) {
    static unsigned counter;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    if (!*base) {
        set_error(err, errsz, path, "cannot write", EISDIR);
        return NULL;
    }
    afile *a = xcalloc(1, sizeof *a);
    a->path = xstrdup(path);
    a->dir = xmalloc(dirlen + 2);
    if (slash) {
        memcpy(a->dir, path, dirlen ? dirlen : 1); /* "/x" -> "/" */
        a->dir[dirlen ? dirlen : 1] = '\0';
    } else
        strcpy(a->dir, ".");
    size_t cap = strlen(path) + 64;
    a->tmp = xmalloc(cap);
    for (int tries = 0; tries < 100; tries++) {
        snprintf(a->tmp, cap, "%.*s.%s.tmp.%ld.%u", (int)(base - path), path, base, (long)getpid(),
                 counter++);
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (a->fd >= 0 || errno != EEXIST) break;
    }
    if (a->fd < 0) {
        set_error(err, errsz, path, "cannot create temp file", errno);
        free(a->path), free(a->dir), free(a->tmp), free(a);
        return NULL;
    }
    return a;
}

bool afile_write(afile *a, const void *bytes, size_t n) {
    const char *p = bytes;
    while (n > 0 && !a->err) {
        ssize_t k = write(a->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            a->err = k < 0 ? errno : EIO;
            a->failed = "write";
            break;
        }
        p += k;
        n -= (size_t)k;
    }
    return !a->err;
}

const char *afile_temp_path(const afile *a) {
    return a->tmp;
}

static void release(afile *a) {
    free(a->path);
    free(a->dir);
    free(a->tmp);
    free(a);
}

void afile_abort(afile *a) {
    if (!a) return;
    if (a->fd >= 0) close(a->fd);
    unlink(a->tmp);
    release(a);
}

/* fsync of the directory makes the rename durable; some file systems refuse it (EINVAL),
 * which is not worth failing a checkpoint over. */
static int sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int e = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    close(fd);
    return e;
}

int afile_commit(afile *a, char *err, size_t errsz) {
    if (!a->err && fsync(a->fd) != 0) a->err = errno, a->failed = "fsync";
    /* close can report a deferred write error (NFS): check it too. */
    if (close(a->fd) != 0 && !a->err) a->err = errno, a->failed = "close";
    a->fd = -1;
    if (!a->err && rename(a->tmp, a->path) != 0) a->err = errno, a->failed = "rename";
    if (a->err) {
        set_error(err, errsz, a->path, a->failed, a->err);
        unlink(a->tmp);
        release(a);
        return EX_KILN_IO;
    }
    int e = sync_dir(a->dir);
    if (e) set_error(err, errsz, a->path, "fsync of the directory", e);
    release(a);
    return e ? EX_KILN_IO : 0;
}

int afile_write_all(const char *path, const void *bytes, size_t n, char *err, size_t errsz) {
    afile *a = afile_open(path, err, errsz);
    if (!a) return EX_KILN_IO;
    afile_write(a, bytes, n);
    return afile_commit(a, err, errsz);
}

int afile_symlink(const char *target, const char *path, char *err, size_t errsz) {
    /* afile_open gives a fresh temp name and the directory; the temp file is swapped for a
     * link of the same name. */
    afile *a = afile_open(path, err, errsz);
    if (!a) return EX_KILN_IO;
    close(a->fd);
    a->fd = -1;
    int e = 0;
    const char *what = "symlink";
    if (unlink(a->tmp) != 0 || symlink(target, a->tmp) != 0)
        e = errno;
    else if (rename(a->tmp, a->path) != 0)
        e = errno, what = "rename";
    else
        e = sync_dir(a->dir), what = "fsync of the directory";
    if (e) {
        set_error(err, errsz, path, what, e);
        unlink(a->tmp);
    }
    release(a);
    return e ? EX_KILN_IO : 0;
}
