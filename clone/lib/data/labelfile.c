/* labelfile — the append-only file of a person's decisions (labelfile.h). */
#include "data/labelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "data/json.h"

typedef struct entry {
    klabel_key key;
    klabel_choice choice;
    bool live; /* false once undone or replaced by a later decision on the same pair */
} entry;

struct klabels {
    int fd;
    char *path;
    entry *e;
    size_t n, cap;
    /* Open addressing, key -> 1 + the index of its latest entry (0: empty).  Only a pair's
     * latest entry can stand (apply withdraws the earlier ones), so one slot a pair does. */
    size_t *slot, nslot, used;
};

static const char *const NAMES[] = {"left", "right", "tie", "skip"};

const char *klabel_name(klabel_choice c) {
    return c >= KLABEL_LEFT && c <= KLABEL_SKIP ? NAMES[c] : "none";
}

uint64_t klabel_hash(const void *const *pieces, const size_t *lens, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        uint64_t len = lens[i];
        for (int b = 0; b < 8; b++) h = (h ^ ((len >> (8 * b)) & 0xff)) * 0x100000001b3ull;
        const uint8_t *p = pieces[i];
        for (size_t j = 0; j < lens[i]; j++) h = (h ^ p[j]) * 0x100000001b3ull;
    }
    return h;
}

static bool same_key(const klabel_key *x, const klabel_key *y) {
    return x->id == y->id && x->a == y->a && x->b == y->b && x->hash == y->hash;
}

static size_t key_slot(const klabels *L, const klabel_key *key) {
    uint64_t h = key->hash ^ (key->id * 0x9e3779b97f4a7c15ull) ^ (key->a << 32) ^ key->b;
    size_t i = (size_t)(h ^ (h >> 29)) & (L->nslot - 1);
    while (L->slot[i] && !same_key(&L->e[L->slot[i] - 1].key, key)) i = (i + 1) & (L->nslot - 1);
    return i;
}

static void grow_slots(klabels *L) {
    size_t *old = L->slot, n = L->nslot;
    L->nslot = n ? 2 * n : 256;
    L->slot = xcalloc(L->nslot, sizeof *L->slot);
    for (size_t i = 0; i < n; i++)
        if (old[i]) L->slot[key_slot(L, &L->e[old[i] - 1].key)] = old[i];
    free(old);
}

/* The index of the standing decision on key, or -1. */
static long find_live(const klabels *L, const klabel_key *key) {
    if (!L->nslot) return -1;
    size_t s = L->slot[key_slot(L, key)];
    return s && L->e[s - 1].live ? (long)(s - 1) : -1;
}

/* A decision in memory: it replaces any standing one on the same pair. */
static void apply(klabels *L, const klabel_key *key, klabel_choice c) {
    long old = find_live(L, key);
    if (old >= 0) L->e[old].live = false;
    if (L->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 64;
        L->e = xrealloc(L->e, xmul(L->cap, sizeof *L->e));
    }
    L->e[L->n++] = (entry){*key, c, true};
    if (2 * (L->used + 1) > L->nslot) grow_slots(L);
    size_t s = key_slot(L, key);
    L->used += !L->slot[s];
    L->slot[s] = L->n;
}

klabel_choice klabels_find(const klabels *L, const klabel_key *key) {
    long i = find_live(L, key);
    return i < 0 ? KLABEL_NONE : L->e[i].choice;
}

void klabels_counts(const klabels *L, uint64_t counts[4]) {
    memset(counts, 0, 4 * sizeof *counts);
    for (size_t i = 0; i < L->n; i++)
        if (L->e[i].live) counts[L->e[i].choice]++;
}

/* ---- reading ----------------------------------------------------------------------------- */

static bool field_u64(const jval *o, const char *name, uint64_t *v) {
    return json_u64(json_get(o, name), v);
}

/* One line of the file into memory; false when it is not a decision or an undo. */
static bool replay_line(klabels *L, const char *line, size_t n, char *why, size_t whysz) {
    jval *o = json_parse(line, n, 4, why, whysz);
    if (!o) return false;
    const jval *lab = json_get(o, "label"), *hash = json_get(o, "hash");
    klabel_key key;
    char *end = NULL;
    bool ok = lab && lab->type == JSON_STR && hash && hash->type == JSON_STR &&
              field_u64(o, "id", &key.id) && field_u64(o, "a", &key.a) && field_u64(o, "b", &key.b);
    if (ok) {
        errno = 0;
        key.hash = strtoull(hash->s, &end, 16);
        ok = hash->len == 16 && end == hash->s + 16 && !errno;
    }
    int c = -1;
    for (int i = 0; ok && i < 4; i++)
        if (!strcmp(lab->s, NAMES[i])) c = i;
    if (ok && c >= 0) {
        apply(L, &key, (klabel_choice)c);
    } else if (ok && !strcmp(lab->s, "undo")) {
        long i = find_live(L, &key);
        if (i >= 0) L->e[i].live = false;
    } else {
        snprintf(why, whysz, "%s", "not a label line: wants label, id, a, b, hash");
        ok = false;
    }
    json_free(o);
    return ok;
}

static int read_all(int fd, char **buf, size_t *len, const char *path, char *err, size_t errsz) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(errno));
    size_t cap = (size_t)st.st_size + 1, n = 0;
    *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) *buf = xrealloc(*buf, cap *= 2);
        ssize_t got = pread(fd, *buf + n, cap - 1 - n, (off_t)n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(errno));
        if (got == 0) break;
        n += (size_t)got;
    }
    (*buf)[n] = 0;
    *len = n;
    return 0;
}

/* Replay every line; cut a last line without its newline (a crash while writing it). */
static int replay(klabels *L, char *err, size_t errsz) {
    char *buf = NULL;
    size_t len = 0;
    int rc = read_all(L->fd, &buf, &len, L->path, err, errsz);
    size_t start = 0, lineno = 0;
    while (!rc && start < len) {
        char *nl = memchr(buf + start, '\n', len - start);
        lineno++;
        if (!nl) {
            kiln_warn("%s:%zu: dropped a last line cut short (a crash while it was written)",
                      L->path, lineno);
            if (ftruncate(L->fd, (off_t)start) != 0)
                rc = kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", L->path, strerror(errno));
            break;
        }
        size_t n = (size_t)(nl - (buf + start));
        char why[160];
        if (n && !replay_line(L, buf + start, n, why, sizeof why))
            rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s:%zu: %s", L->path, lineno, why);
        start += n + 1;
    }
    free(buf);
    return rc;
}

int klabels_open(const char *path, klabels **out, char *err, size_t errsz) {
    klabels *L = xcalloc(1, sizeof *L);
    L->path = xstrdup(path);
    L->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    int rc = 0;
    if (L->fd < 0)
        rc = kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(errno));
    else if (flock(L->fd, LOCK_EX | LOCK_NB) != 0)
        rc = kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path,
                       errno == EWOULDBLOCK ? "in use by another kiln label" : strerror(errno));
    else
        rc = replay(L, err, errsz);
    if (rc) {
        klabels_close(L);
        return rc;
    }
    *out = L;
    return 0;
}

void klabels_close(klabels *L) {
    if (!L) return;
    if (L->fd >= 0) close(L->fd);
    free(L->e), free(L->slot), free(L->path), free(L);
}

/* ---- writing ----------------------------------------------------------------------------- */

/* One line in one write (O_APPEND), then fsync: on disk before the caller moves on. */
static int append_line(klabels *L, const char *label, const klabel_key *key, char *err,
                       size_t errsz) {
    char line[256];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* when, for a person reading the file */
    int n =
        snprintf(line, sizeof line,
                 "{\"label\":\"%s\",\"id\":%" PRIu64 ",\"a\":%" PRIu64 ",\"b\":%" PRIu64
                 ",\"hash\":\"%016" PRIx64 "\",\"time\":%.3f}\n",
                 label, key->id, key->a, key->b, key->hash, (double)now.tv_sec + now.tv_nsec / 1e9);
    for (int done = 0; done < n;) {
        ssize_t w = write(L->fd, line + done, (size_t)(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", L->path, strerror(errno));
        done += (int)w;
    }
    if (fsync(L->fd) != 0)
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: fsync: %s", L->path, strerror(errno));
    return 0;
}

int klabels_add(klabels *L, const klabel_key *key, klabel_choice c, char *err, size_t errsz) {
    int rc = append_line(L, klabel_name(c), key, err, errsz);
    if (!rc) apply(L, key, c);
    return rc;
}

int klabels_undo(klabels *L, klabel_key *undone, char *err, size_t errsz) {
    size_t i = L->n;
    while (i > 0 && !L->e[i - 1].live) i--;
    if (i == 0) return 1;
    int rc = append_line(L, "undo", &L->e[i - 1].key, err, errsz);
    if (rc) return rc;
    L->e[i - 1].live = false;
    *undone = L->e[i - 1].key;
    return 0;
}
