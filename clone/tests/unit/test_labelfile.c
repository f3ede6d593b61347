/* test_labelfile — the label file of kiln label (lib/data/labelfile.h): decisions replayed
 * after a reopen, undo as a stack, a later decision replacing an earlier one, a last line cut
 * short by a crash dropped, a bad line refused with 65, a second opener refused with 74. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "data/labelfile.h"

static klabel_key key(uint64_t id) {
    const char *s = "text";
    const void *p[1] = {s};
    size_t n[1] = {4};
    return (klabel_key){id, 0, 1, klabel_hash(p, n, 1) + id};
}

static klabels *open_or_null(const char *path, int *rc) {
    klabels *L = NULL;
    char err[512];
    *rc = klabels_open(path, &L, err, sizeof err);
    return L;
}

static void append_raw(const char *path, const char *bytes) {
    FILE *f = fopen(path, "a");
    CHECK(f != NULL);
    if (!f) return;
    fputs(bytes, f);
    fclose(f);
}

static void test_replay_and_undo(const char *path) {
    int rc;
    char err[512];
    klabels *L = open_or_null(path, &rc);
    CHECK(rc == 0 && L);
    klabel_key a = key(1), b = key(2), c = key(3), undone;
    CHECK(klabels_add(L, &a, KLABEL_LEFT, err, sizeof err) == 0);
    CHECK(klabels_add(L, &b, KLABEL_TIE, err, sizeof err) == 0);
    CHECK(klabels_add(L, &c, KLABEL_RIGHT, err, sizeof err) == 0);
    CHECK(klabels_undo(L, &undone, err, sizeof err) == 0 && undone.id == 3);
    CHECK(klabels_undo(L, &undone, err, sizeof err) == 0 && undone.id == 2);
    CHECK(klabels_add(L, &b, KLABEL_SKIP, err, sizeof err) == 0);
    CHECK(klabels_add(L, &a, KLABEL_RIGHT, err, sizeof err) == 0); /* replaces the left */
    int other;
    CHECK(open_or_null(path, &other) == NULL && other == 74); /* locked by L */
    klabels_close(L);

    L = open_or_null(path, &rc);
    CHECK(rc == 0 && L);
    uint64_t n[4];
    klabels_counts(L, n);
    CHECK(n[KLABEL_LEFT] == 0 && n[KLABEL_RIGHT] == 1 && n[KLABEL_TIE] == 0 && n[KLABEL_SKIP] == 1);
    CHECK(klabels_find(L, &a) == KLABEL_RIGHT);
    CHECK(klabels_find(L, &b) == KLABEL_SKIP);
    CHECK(klabels_find(L, &c) == KLABEL_NONE);
    klabel_key other_hash = a;
    other_hash.hash ^= 1; /* the same ids over other texts: not this decision */
    CHECK(klabels_find(L, &other_hash) == KLABEL_NONE);
    CHECK(klabels_undo(L, &undone, err, sizeof err) == 0 && undone.id == 1);
    CHECK(klabels_undo(L, &undone, err, sizeof err) == 0 && undone.id == 2);
    CHECK(klabels_undo(L, &undone, err, sizeof err) == 1); /* nothing left */
    klabels_close(L);
}

static void test_torn_and_bad_lines(const char *path) {
    int rc;
    char err[512];
    klabels *L = open_or_null(path, &rc);
    klabel_key a = key(7);
    CHECK(rc == 0 && klabels_add(L, &a, KLABEL_LEFT, err, sizeof err) == 0);
    klabels_close(L);
    append_raw(path, "{\"label\":\"right\",\"id\":8,\"a\""); /* a crash mid-line */
    L = open_or_null(path, &rc);
    CHECK(rc == 0 && L && klabels_find(L, &a) == KLABEL_LEFT);
    klabel_key b = key(9);
    CHECK(L && klabels_add(L, &b, KLABEL_TIE, err, sizeof err) == 0); /* after the cut */
    klabels_close(L);
    L = open_or_null(path, &rc);
    CHECK(rc == 0 && L && klabels_find(L, &b) == KLABEL_TIE);
    klabels_close(L);
    append_raw(path,
               "{\"label\":\"maybe\",\"id\":1,\"a\":0,\"b\":1,\"hash\":\"0000000000000000\"}\n");
    CHECK(open_or_null(path, &rc) == NULL && rc == 65);
}

int main(void) {
    char dir[] = "/tmp/kiln-labelfile.XXXXXX", path[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    test_replay_and_undo(path);
    snprintf(path, sizeof path, "%s/b.jsonl", dir);
    test_torn_and_bad_lines(path);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return check_report("test_labelfile");
}
