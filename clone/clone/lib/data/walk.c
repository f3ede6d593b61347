/* walk — recursive directory listing with a depth limit (symlink loops end there). */
#include "data/walk.h"

#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define WALK_MAX_DEPTH 32

typedef struct {
    char **paths;
    size_t n, cap;
    const char *suffix;
    char *err;
    size_t errlen;
} walk_ctx;

static bool has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), k = suffix ? strlen(suffix) : 0;
    return k == 0 || (n >= k && strcasecmp(name + n - k, suffix) == 0);
}

static void add_path(walk_ctx *w, char *path) {
    if (w->n == w->cap)
        w->paths = xrealloc(w->paths, xmul(w->cap = w->cap ? w->cap * 2 : 64, sizeof(char *)));
    w->paths[w->n++] = path;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool walk_dir(walk_ctx *w, const char *dir, int depth) {
    if (depth > WALK_MAX_DEPTH) {
        snprintf(w->err, w->errlen, "%s: directories nested deeper than %d", dir, WALK_MAX_DEPTH);
        return false;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(w->err, w->errlen, "%s: cannot read directory (%s)", dir, strerror(errno));
        return false;
    }
    /* Read the names first and sort them, so the walk order is the sorted order. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = xrealloc(names, xmul(cap = cap ? cap * 2 : 64, sizeof(char *)));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = xmalloc(len);
        snprintf(path, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        struct stat st;
        bool found = stat(path, &st) == 0;
        if (ok && found && S_ISDIR(st.st_mode)) {
            ok = walk_dir(w, path, depth + 1);
            free(path);
        } else if (ok && (!found || S_ISREG(st.st_mode)) && has_suffix(names[i], w->suffix)) {
            /* A file that cannot be reached (a dangling symlink) is listed all the same: its
             * reader reports it, rather than the walk passing over it without a word. */
            add_path(w, path);
        } else {
            free(path);
        }
        free(names[i]);
    }
    free(names);
    return ok;
}

bool kwalk(const char *root, const char *suffix, char ***paths, size_t *n, char *err,
           size_t errlen) {
    walk_ctx w = {NULL, 0, 0, suffix, err, errlen};
    struct stat st;
    if (stat(root, &st) != 0) {
        snprintf(err, errlen, "%s: cannot open (%s)", root, strerror(errno));
        return false;
    }
    bool ok = true;
    if (S_ISDIR(st.st_mode))
        ok = walk_dir(&w, root, 0);
    else
        add_path(&w, xstrdup(root));
    if (!ok) {
        kwalk_free(w.paths, w.n);
        return false;
    }
    /* Sorting each directory's names is not the same as sorting whole paths ("a-b" vs
     * "a/b"); sort the final list so the order is simply bytewise by path. */
    if (w.n) qsort(w.paths, w.n, sizeof *w.paths, by_name);
    *paths = w.paths, *n = w.n;
    return true;
}

void kwalk_free(char **paths, size_t n) {
    for (size_t i = 0; paths && i < n; i++) free(paths[i]);
    free(paths);
}
