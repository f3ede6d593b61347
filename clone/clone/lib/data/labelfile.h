/* labelfile — a person's preferences as they are given (kiln label): an append-only file of
 * JSON lines, one a decision, each written in one write(2), then fsync'd before the next key
 * is read, so a crash, kill -9 or Ctrl-C loses no decision already shown as taken.
 *
 *     {"label":"left","id":7,"a":0,"b":1,"hash":"9c1f0e2a7d3b4c55","time":1796000000.5}
 *     {"label":"undo","id":7,"a":0,"b":1,"hash":"9c1f0e2a7d3b4c55","time":1796000003.1}
 *
 * label is left, right, tie, skip or undo; id the prompt's id; a and b the k of the completions
 * shown on the left and on the right; hash a hash of the prompt and both completions (texts,
 * or image bytes), so a file is never applied to different rollouts that reuse the ids.  An
 * undo line withdraws the last decision still standing (it names that decision's pair).  On
 * open the file is replayed: each pair holds at most one standing decision, the latest.
 * A last line cut short by a crash (no newline) is dropped with a warning; any other line that
 * does not parse exits 65 naming the file and line.  The file is locked (flock) while open,
 * so two labellers never interleave in it. */
#ifndef KILN_LABELFILE_H
#define KILN_LABELFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum klabel_choice {
    KLABEL_NONE = -1, /* no standing decision */
    KLABEL_LEFT,
    KLABEL_RIGHT,
    KLABEL_TIE,
    KLABEL_SKIP,
} klabel_choice;

/* Which pair a decision is about. */
typedef struct klabel_key {
    uint64_t id;   /* the prompt's id */
    uint64_t a, b; /* the k of the left and of the right completion */
    uint64_t hash; /* klabel_hash of prompt, left, right */
} klabel_key;

typedef struct klabels klabels;

/* Open (creating it) and replay the label file.  0, or 74 (cannot open, lock, read or
 * repair it) / 65 (a line that does not parse) with the message in err. */
int klabels_open(const char *path, klabels **out, char *err, size_t errsz);
void klabels_close(klabels *L);

/* The standing decision on key, or KLABEL_NONE. */
klabel_choice klabels_find(const klabels *L, const klabel_key *key);
/* Record a decision: appended, flushed and fsync'd before this returns.  0 or 74. */
int klabels_add(klabels *L, const klabel_key *key, klabel_choice c, char *err, size_t errsz);
/* Withdraw the last standing decision (appending an undo line, fsync'd); *undone names its
 * pair.  0; 1 when there is nothing to undo; 74 on a write error. */
int klabels_undo(klabels *L, klabel_key *undone, char *err, size_t errsz);
/* Standing decisions of each kind, indexed by klabel_choice (KLABEL_LEFT..KLABEL_SKIP). */
void klabels_counts(const klabels *L, uint64_t counts[4]);

/* FNV-1a over the pieces in order, each preceded by its length (so "ab"+"c" differs from
 * "a"+"bc"). */
uint64_t klabel_hash(const void *const *pieces, const size_t *lens, int n);

/* "left", "right", "tie", "skip". */
const char *klabel_name(klabel_choice c);

#endif
