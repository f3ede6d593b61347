/* progress — a training run at a glance (kiln show --progress), from its metrics and saved
 * records: one live line on stderr (step/total, a bar, train and eval loss, tokens/s, ETA;
 * off a terminal every 10 s and at every eval), then a summary: steps, time (summed over the
 * segments of a resumed run's log), train and eval loss, tokens/s, the other metrics by
 * stage and family (kplot_family), the checkpoints written and the best one. */
#ifndef KILN_PROGRESS_H
#define KILN_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/stream.h"

/* Metrics beyond the ones the live line shows (an objective's, retrieval's, ...): the last
 * value of each, by stage. */
#define KPROGRESS_MAX_OTHER 64
typedef struct kprogress_metric {
    char stage[16], field[64];
    double v;
    uint64_t step;
} kprogress_metric;

typedef struct kprogress {
    bool tty, drawn;
    uint64_t total, step, first_step, eval_step, best_step, saved;
    double t0, t_first, t_line, loss, first_loss, eval_loss, best_eval, bits, tok_s, tok_s_sum;
    uint64_t tok_s_n;
    /* A resumed run's log holds several segments (pipelines/pretrain.sh puts the history in
     * front with kiln cat --prepend): train's elapsed_s starts again at each.  The ETA
     * counts from the current segment; the time sums them. */
    double seg_elapsed, done_elapsed, anchor_t;
    uint64_t anchor_step, segments;
    bool have_loss, have_eval;
    kprogress_metric other[KPROGRESS_MAX_OTHER];
    int nother;
    const char *bits_name;
    char last_path[256], best_path[256];
} kprogress;

/* Start the clock; total: the run's steps for the bar and the ETA (0: unknown); tty: draw
 * one line that redraws itself (a terminal on stderr). */
void kprogress_start(kprogress *p, uint64_t total, bool tty);
/* Take a record: train and eval metrics move the line, saved records are counted, every
 * other record is ignored. */
void kprogress_record(kprogress *p, const krec *r);
/* The summary on stderr. */
void kprogress_summary(kprogress *p);

#endif
