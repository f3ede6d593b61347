/* labeller — kiln label's pairs: rollout records grouped by prompt (consecutive records with
 * the same id), the pairs of completions to show (the first two of each prompt, or every
 * pair), which side each goes on (--shuffle: a hash of the pair's texts decides, the same in
 * every session), the decisions standing in the label file (lib/data/labelfile.h), and the
 * `pref` records of the pairs decided left or right.  The terminal is lib/data/labelui.h. */
#ifndef KILN_LABELLER_H
#define KILN_LABELLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "data/labelfile.h"
#include "data/sample.h"
#include "stream/stream.h"

typedef struct klabel_completion {
    kstored *rec;
    uint64_t k;
    const char *text; /* the completion text, or NULL for an image rollout */
    size_t len;
    kimage im; /* image rollouts */
} klabel_completion;

typedef struct klabel_group {
    uint64_t id;
    const char *prompt; /* prompt text, or an image rollout's label */
    size_t plen;
    klabel_completion *c;
    int n;
} klabel_group;

typedef struct klabel_pair {
    int g, a, b; /* group, left and right completion */
    klabel_key key;
    bool now; /* decided in this session (--skipped shows a pair skipped again no more) */
} klabel_pair;

typedef struct klabeller {
    klabel_group *g;
    int ng;
    klabel_pair *p;
    size_t np;
    uint64_t lonely, others; /* prompts with one completion; records that are not rollouts */
    klabels *L;              /* the label file (owned: klabeller_free closes it) */
    const char *png_dir;
    bool shuffle; /* --shuffle: which completion goes left is drawn from the pair's texts */
    bool skipped; /* --skipped: pairs skipped in earlier sessions are shown again */
} klabeller;

/* Keep a rollout record as one completion of its prompt's group.  Exits 65 naming the record
 * when it has no id, no completion (text or image) or no prompt (text or label). */
void klabeller_add(klabeller *S, const krec *rollout);
/* The pairs: (0,1) of each prompt, or every pair with all_pairs; prompts with a single
 * completion are counted in S->lonely. */
void klabeller_pairs(klabeller *S, bool all_pairs);
/* The first pair to show from `from` on, wrapping: undecided, or with S->skipped skipped
 * before this session; -1 when there is none. */
long klabeller_next(const klabeller *S, size_t from);
/* The index of the pair with that key, or -1 (a decision about another input). */
long klabeller_find(const klabeller *S, const klabel_key *key);
/* Decided pairs of this input by kind (KLABEL_LEFT..KLABEL_SKIP); returns their sum. */
size_t klabeller_decided(const klabeller *S, uint64_t counts[4]);
/* A pref record (by "person") for every pair decided left or right; returns how many. */
uint64_t klabeller_write_prefs(const klabeller *S, kwriter *w);
/* The pair's images as PNG_DIR/left.png and right.png, replaced atomically, for a viewer.
 * 0, or 74 with the message in err. */
int klabeller_write_pngs(const klabeller *S, const klabel_pair *p, char *err, size_t errsz);
void klabeller_free(klabeller *S);

#endif
