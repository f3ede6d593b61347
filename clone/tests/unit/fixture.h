/* fixture — reading the reference values the PyTorch scripts in tests/ write (b"KILNFIX1",
 * then entries: u32 name length, name, u32 count, count float32) and comparing against
 * them: max |kiln - torch| / max |torch| per tensor. */
#ifndef KILN_FIXTURE_H
#define KILN_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

typedef struct fixture_entry {
    char name[96];
    uint32_t n;
    float *v;
} fixture_entry;

static fixture_entry fixture_entries[512];
static int fixture_n;
static double fixture_worst;

/* $KILN_ROOT/tests/fixtures/NAME; false when it is not there. */
static bool fixture_load(const char *name) {
    const char *root = getenv("KILN_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "KILNFIX1", 8)) {
        fclose(f);
        return false;
    }
    uint32_t len;
    while (fixture_n < 512 && fread(&len, 4, 1, f) == 1) {
        fixture_entry *e = &fixture_entries[fixture_n++];
        CHECK(len < sizeof e->name);
        if (len >= sizeof e->name || fread(e->name, 1, len, f) != len) break;
        e->name[len] = 0;
        if (fread(&e->n, 4, 1, f) != 1) break;
        e->v = malloc(sizeof(float) * (e->n ? e->n : 1));
        CHECK(e->v && fread(e->v, sizeof(float), e->n, f) == e->n);
    }
    fclose(f);
    return true;
}

static const fixture_entry *fixture_get(const char *prefix, const char *name) {
    char key[160];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    for (int i = 0; i < fixture_n; i++)
        if (!strcmp(fixture_entries[i].name, key)) return &fixture_entries[i];
    fprintf(stderr, "fixture has no %s\n", key);
    CHECK(0);
    return NULL;
}

/* max |a - ref| / max |ref| over n values must be <= tol. */
static void fixture_compare(const char *what, const float *a, const fixture_entry *ref, size_t n,
                            double tol) {
    if (!ref) return;
    CHECK(ref->n == n);
    if (ref->n != n) return;
    double diff = 0, scale = 1e-12;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - ref->v[i]));
        scale = fmax(scale, fabs((double)ref->v[i]));
    }
    double rel = diff / scale;
    fixture_worst = fmax(fixture_worst, rel);
    if (rel > tol) fprintf(stderr, "%s: relative error %.3g\n", what, rel);
    CHECK(rel <= tol);
}

static void fixture_free(void) {
    for (int i = 0; i < fixture_n; i++) free(fixture_entries[i].v);
    fixture_n = 0;
}

#endif
