/* loader — kiln load's sources (text:, png:, idx:, jsonl:) and the `sample` records their
 * items become: ids (an item's position in one unshuffled pass), epochs, --shard / --skip /
 * --limit, --skip-bad's `err` records, and --shuffle's index of every item, each epoch a
 * permutation drawn from (seed, epoch).  stages/load.c is its options and its main.
 *
 * These functions exit as kiln load does, before or while it writes records: 2 for a source
 * argument of no known kind, 65 for a source that holds nothing or a bad item without
 * --skip-bad, 74 when a file changed during a shuffled run. */
#ifndef KILN_LOADER_H
#define KILN_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "data/idx.h"
#include "data/image.h"
#include "data/text.h"
#include "stream/stream.h"

typedef enum { KLOAD_TEXT, KLOAD_PNG, KLOAD_IDX, KLOAD_JSONL } kload_kind;

typedef struct kload_source {
    kload_kind kind;
    const char *path, *labels_path; /* labels_path: IDX labels */
    char **files;                   /* text, png, jsonl: the files, sorted */
    size_t nfiles;
    size_t root_len; /* png: length of DIR, to find the first subfolder */
    kidx images, labels;
    const char *error_src; /* idx: the file that could not be used, */
    char error[512];       /* and why: reported as an item with --skip-bad */
} kload_source;

typedef struct kloader {
    /* options (kiln load's rows) */
    ksplit split;
    bool utf8_reject, skip_bad;
    int channels, height, width; /* 0: as stored */
    uint64_t max_pixels, epochs, shard_i, shard_n, skip, limit, seed;
    bool shuffle;
    const char *classes_path;
    char **classes; /* the --classes file's names (owned), or NULL */
    uint32_t nclasses;
    /* state */
    kwriter *w;       /* borrowed: where the records go */
    uint64_t record;  /* position in the full stream, all epochs */
    uint64_t kept;    /* records of this shard seen */
    uint64_t emitted; /* records written (err records included) */
    uint64_t bad;     /* err records */
    uint64_t id, epoch;
    kimage im, work;
    /* progress on a terminal */
    bool tty;
    double start, shown;
} kloader;

/* Parse "KIND:PATH" into s and find its files (IDX: read them now).  IDX files that cannot
 * be used are kept as one bad item when L->skip_bad is set. */
void kload_source_open(kloader *L, const char *arg, kload_source *s);
void kload_source_free(kload_source *s);

/* The hdr: schema `sample`, L->seed, `classes` (the --classes file's, else the PNG
 * subfolders or IDX labels seen), and `skip` when resuming. */
void kloader_hdr(kloader *L, const kload_source *src, int nsrc);

/* The items of one source in order, for the epoch L->epoch; L->id counts on. */
void kloader_pass(kloader *L, const kload_source *s);
/* --limit reached, a stop signal, or the downstream gone. */
bool kloader_finished(const kloader *L);
/* "kiln load: 12000 records, 30000/s (epoch 0)" on stderr, at most twice a second unless
 * last (which ends the line). */
void kloader_progress(kloader *L, bool last);
void kloader_free(kloader *L);

/* --shuffle: every item of the sources indexed once (text pieces as file offsets, repaired
 * UTF-8 kept in memory). */
typedef struct kload_index kload_index;
kload_index *kload_index_build(kloader *L, const kload_source *src, int nsrc);
/* One epoch in the order drawn from (L->seed, L->epoch); ids stay the items' positions in
 * the unshuffled pass, and L->id ends at the item count. */
void kloader_shuffled(kloader *L, const kload_source *src, const kload_index *x);
void kload_index_free(kload_index *x, const kload_source *src, int nsrc);

#endif
