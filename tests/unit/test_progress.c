/* test_progress — kiln show --progress's account of a run (lib/plot/progress.h): the first and
 * last train loss, the best eval, the segments of a resumed run's log (elapsed_s starting
 * again), other metrics kept by stage and name, and the checkpoints saved. */
#include "check.h"
#include "plot/progress.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void train(kwriter *w, uint64_t step, double loss, double elapsed) {
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "train");
    kw_u64(w, "step", step);
    kw_f64(w, "loss", loss);
    kw_f64(w, "elapsed_s", elapsed);
    kw_f64(w, "tokens_per_s", 1000);
    kwriter_end(w);
}

static void eval(kwriter *w, uint64_t step, double loss) {
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "eval");
    kw_u64(w, "step", step);
    kw_f64(w, "loss", loss);
    kw_f64(w, "bits_per_byte", loss / 2);
    kw_f64(w, "accuracy@1", 0.25);
    kwriter_end(w);
}

static void saved(kwriter *w, const char *path, bool best) {
    kwriter_begin(w, "saved");
    kw_str(w, "path", path);
    kw_bool(w, "best", best);
    kwriter_end(w);
}

int main(void) {
    char path[] = "/tmp/kiln-test-progress-XXXXXX";
    close(mkstemp(path));
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "metrics", 0);
    kwriter_end(w);
    train(w, 10, 4.0, 5);
    eval(w, 10, 3.5);
    saved(w, "a.safetensors", true);
    train(w, 20, 3.0, 10);
    train(w, 30, 2.5, 2); /* a resumed run: a new segment */
    eval(w, 30, 3.7);
    saved(w, "b.safetensors", false);
    kwriter_close(w, "ok");

    kprogress p;
    kprogress_start(&p, 100, false);
    kreader *r = kreader_open(path, 1);
    krec rec;
    while (kreader_next(r, &rec)) kprogress_record(&p, &rec);
    kreader_close(r);
    CHECK(p.have_loss && p.first_step == 10 && p.first_loss == 4.0);
    CHECK(p.step == 30 && p.loss == 2.5 && p.total == 100);
    CHECK(p.segments == 2 && p.done_elapsed == 10 && p.seg_elapsed == 2);
    CHECK(p.have_eval && p.eval_loss == 3.7 && p.eval_step == 30);
    CHECK(p.best_eval == 3.5 && p.best_step == 10);
    CHECK(p.bits_name && !strcmp(p.bits_name, "bits/byte") && p.bits == 3.7 / 2);
    CHECK(p.tok_s_n == 3 && p.tok_s_sum == 3000);
    /* loss, bits_per_byte and tokens_per_s are on the live line; accuracy@1 is another */
    CHECK(p.nother == 1 && !strcmp(p.other[0].stage, "eval") &&
          !strcmp(p.other[0].field, "accuracy@1") && p.other[0].v == 0.25);
    CHECK(p.saved == 2 && !strcmp(p.last_path, "b.safetensors") &&
          !strcmp(p.best_path, "a.safetensors"));
    unlink(path);
    return check_report("progress");
}
