/* test_ckptdir — kiln ckpt's directory (lib/ckpt/ckptdir.h) and inspect's checksum
 * (lib/ckpt/inspect.h): opening a directory makes it with its parents, removes what a killed
 * writer left (a temporary file of a process that is gone, an optimizer file without its
 * model) and leaves every other file alone; only eval metrics records give a step's loss. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ckpt/ckptdir.h"
#include "ckpt/inspect.h"

static char root[64];

static char *in(const char *name) {
    static char p[4][200];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/runs/a/%s", root, name);
    return p[k];
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void metrics(kwriter *w, const char *stage, uint64_t step, double loss) {
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", stage);
    kw_u64(w, "step", step);
    kw_f64(w, "loss", loss);
    kwriter_end(w);
}

int main(void) {
    CHECK(kckpt_crc32("123456789", 9) == 0xCBF43926u); /* the CRC-32 check value */
    CHECK(kckpt_crc32("", 0) == 0);

    snprintf(root, sizeof root, "/tmp/kiln-test-ckptdir-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/runs/a", root);
    kckptdir s;
    kckptdir_open(&s, dir, 2); /* made with its parent */
    CHECK(exists(dir) && s.n == 0 && s.keep == 2);
    kckptdir_close(&s);

    /* pid 2147483646 is no process: its temporary file is stale */
    touch(in(".step-000001.safetensors.tmp.2147483646.0"));
    char mine[80];
    snprintf(mine, sizeof mine, ".latest.safetensors.tmp.%d.0", (int)getpid());
    touch(in(mine));                            /* a live writer's: kept */
    touch(in(".notes.tmp.2147483646.0"));       /* not one of kiln ckpt's names: kept */
    touch(in("step-000002.optim.safetensors")); /* no model file: removed */
    touch(in("step-000003.safetensors"));       /* not a checkpoint: left alone */
    touch(in("step-000003.optim.safetensors")); /* its model file is there: kept */
    touch(in("step-5.safetensors"));            /* not a name kiln ckpt writes */
    kckptdir_open(&s, dir, 2);
    CHECK(!exists(in(".step-000001.safetensors.tmp.2147483646.0")));
    CHECK(exists(in(mine)) && exists(in(".notes.tmp.2147483646.0")));
    CHECK(!exists(in("step-000002.optim.safetensors")));
    CHECK(exists(in("step-000003.safetensors")) && exists(in("step-000003.optim.safetensors")));
    CHECK(exists(in("step-5.safetensors")));
    CHECK(s.n == 0); /* the unreadable step file is not counted towards --keep */

    /* eval metrics name a step's loss; train metrics do not */
    char path[160];
    snprintf(path, sizeof path, "%s/m.rec", root);
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "metrics", 0);
    kwriter_end(w);
    metrics(w, "eval", 100, 2.5);
    metrics(w, "train", 200, 1.0);
    kwriter_close(w, "ok");
    kreader *r = kreader_open(path, 1);
    krec rec;
    while (kreader_next(r, &rec)) kckptdir_metrics(&s, &rec);
    kreader_close(r);
    CHECK(s.have_eval && s.eval_step == 100 && s.eval_loss == 2.5);
    kckptdir_close(&s);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
    return check_report("ckptdir");
}
