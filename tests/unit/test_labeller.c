/* test_labeller — kiln label's pairs (lib/data/labeller.h): consecutive rollouts with one id
 * are a prompt's group, the first two (or with all_pairs every two) make the pairs, a
 * prompt with one completion is counted as lonely, --shuffle sides are the same every time
 * and swap some pairs, the next open pair follows the label file, and only pairs decided
 * left or right become pref records, the winner as `chosen`. */
#include "check.h"
#include "core/util.h"
#include "data/labeller.h"
#include "data/rlhf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void rollout(kwriter *w, uint64_t id, uint64_t k, const char *prompt, const char *text) {
    kwriter_begin(w, KROLLOUT);
    kw_u64(w, KRL_ID, id);
    kw_u64(w, KRL_K, k);
    kw_str(w, KRL_PROMPT, prompt);
    kw_str(w, KRL_COMPLETION, text);
    kwriter_end(w);
}

/* Prompts 0..7 with three completions each, then prompt 8 with one. */
static void write_rollouts(const char *path) {
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, KROLLOUT, 0);
    kwriter_end(w);
    char prompt[32], text[32];
    for (uint64_t id = 0; id < 8; id++)
        for (uint64_t k = 0; k < 3; k++) {
            snprintf(prompt, sizeof prompt, "prompt %llu", (unsigned long long)id);
            snprintf(text, sizeof text, "completion %llu.%llu", (unsigned long long)id,
                     (unsigned long long)k);
            rollout(w, id, k, prompt, text);
        }
    rollout(w, 8, 0, "alone", "just one");
    kwriter_close(w, "ok");
}

/* A labeller over the rollouts of path with the label file labels (kept open in S). */
static void load(klabeller *S, const char *path, const char *labels, bool all_pairs, kreader **r) {
    char err[512];
    CHECK(klabels_open(labels, &S->L, err, sizeof err) == 0);
    *r = kreader_open(path, 1);
    krec rec;
    while (kreader_next(*r, &rec)) klabeller_add(S, &rec);
    klabeller_pairs(S, all_pairs);
}

int main(void) {
    char path[] = "/tmp/kiln-test-labeller-XXXXXX", out[] = "/tmp/kiln-test-labeller-out-XXXXXX";
    char labels[64];
    close(mkstemp(path)), close(mkstemp(out));
    snprintf(labels, sizeof labels, "%s.labels", path);
    write_rollouts(path);

    klabeller S = {0};
    kreader *r;
    load(&S, path, labels, false, &r);
    CHECK(S.ng == 9 && S.g[0].n == 3 && S.g[8].n == 1 && S.lonely == 1);
    CHECK(S.np == 8 && S.p[3].g == 3 && S.p[3].a == 0 && S.p[3].b == 1);
    CHECK(S.p[3].key.id == 3 && S.p[3].key.a == 0 && S.p[3].key.b == 1);
    CHECK(klabeller_next(&S, 0) == 0 && klabeller_next(&S, 5) == 5);
    CHECK(klabeller_find(&S, &S.p[6].key) == 6);

    /* decide pair 0 right, pair 1 a tie, pair 2 left: the next open pair is 3 */
    char err[512];
    CHECK(klabels_add(S.L, &S.p[0].key, KLABEL_RIGHT, err, sizeof err) == 0);
    CHECK(klabels_add(S.L, &S.p[1].key, KLABEL_TIE, err, sizeof err) == 0);
    CHECK(klabels_add(S.L, &S.p[2].key, KLABEL_LEFT, err, sizeof err) == 0);
    uint64_t n[4];
    CHECK(klabeller_decided(&S, n) == 3 && n[KLABEL_LEFT] == 1 && n[KLABEL_RIGHT] == 1 &&
          n[KLABEL_TIE] == 1 && n[KLABEL_SKIP] == 0);
    CHECK(klabeller_next(&S, 0) == 3 && klabeller_next(&S, 7) == 7);

    kwriter *w = kwriter_open(out, 1);
    kwriter_hdr_begin(w, NULL, KPREF, 0);
    kwriter_end(w);
    CHECK(klabeller_write_prefs(&S, w) == 2);
    kwriter_close(w, "ok");
    kreader_close(r);
    klabeller_free(&S);
    kreader *pr = kreader_open(out, 1);
    krec rec;
    const char *s;
    size_t len;
    CHECK(kreader_next(pr, &rec) && krec_is(&rec, KPREF));
    CHECK(krec_str(&rec, KPREF_CHOSEN, &s, &len) && len == 14 && !memcmp(s, "completion 0.1", 14));
    CHECK(krec_str(&rec, KPREF_BY, &s, &len) && len == 6 && !memcmp(s, "person", 6));
    CHECK(krec_u64_or(&rec, "chosen_k", 9) == 1 && krec_u64_or(&rec, "rejected_k", 9) == 0);
    CHECK(kreader_next(pr, &rec) && krec_u64_or(&rec, KRL_ID, 9) == 2);
    CHECK(krec_str(&rec, KPREF_CHOSEN, &s, &len) && !memcmp(s, "completion 2.0", 14));
    CHECK(!kreader_next(pr, &rec));
    kreader_close(pr);

    /* every pair, shuffled: 3 a prompt; the sides are a function of the texts alone */
    klabeller A = {.shuffle = true}, B = {.shuffle = true};
    kreader *ra, *rb;
    load(&A, path, labels, true, &ra);
    CHECK(A.np == 24);
    int swapped = 0;
    for (size_t i = 0; i < A.np; i++) swapped += A.p[i].a > A.p[i].b;
    CHECK(swapped > 0 && swapped < 24);
    kreader_close(ra);
    klabels_close(A.L), A.L = NULL; /* the file is locked while open */
    load(&B, path, labels, true, &rb);
    CHECK(B.np == A.np);
    for (size_t i = 0; i < A.np && i < B.np; i++)
        CHECK(A.p[i].a == B.p[i].a && A.p[i].b == B.p[i].b && A.p[i].key.hash == B.p[i].key.hash);
    kreader_close(rb);
    klabeller_free(&A), klabeller_free(&B);

    unlink(path), unlink(out), unlink(labels);
    return check_report("labeller");
}
