/* estreport — kiln estimate's report over the cost model of lib/run/estimate.h: the run the
 * options describe (the model shape as kiln train would build it, --init's checkpoint
 * included; the tokens from --tokens or --steps), this machine's row (measured by a few real
 * steps when it has room), the hardware table (--hw-file, $KILN_HARDWARE, or
 * share/kiln/hardware.txt one to three folders above the program, then --hw rows), and the
 * report as a table or one JSON object on stdout.
 *
 * These functions exit as kiln estimate does: 2 for bad options (a bad shape or spec, an
 * unknown --on name, a run that fits none of the --on rows), 65 for a bad table row, 74 for
 * an unreadable file. */
#ifndef KILN_ESTREPORT_H
#define KILN_ESTREPORT_H

#include <stdbool.h>

#include "run/engine.h"
#include "run/estimate.h"

/* kiln estimate's options. */
typedef struct kest_opts {
    kengine_opts e; /* the model and fine-tuning rows kiln train has */
    int B, T, vocab, machines;
    double net;
    double tokens, measure;
    bool have_tokens, json;
    const char *hw_file, *on;
    const char *hw[64]; /* --hw specs, applied over the file's rows */
    int n_hw;
} kest_opts;

typedef struct kest_report {
    kest_config c;
    kest_plan p;
    double tokens;
    kest_cpu cpu;
    kest_measured me;
    kest_hw_table t; /* "this" first, then the table's rows */
    char path[4200]; /* the table's file */
} kest_report;

/* Whether row `name` is among on's comma-separated names (every row when on is NULL). */
bool kest_on(const char *on, const char *name);

/* The run, this machine and the table; every --on name must be a row. */
void kest_report_open(const kest_opts *o, kest_report *r);
/* The report on stdout: parameters, memory, FLOPs, this CPU and a line per row, or with
 * o->json one object.  Returns whether the run fits one of the --on rows. */
bool kest_report_print(const kest_opts *o, kest_report *r);
/* Exits 2 saying what would fit when --on was given and nothing fits; frees the table. */
void kest_report_close(const kest_opts *o, kest_report *r, bool any_fits);

#endif
