/* test_estreport — kiln estimate's report (lib/run/estreport.h): --on's names match whole
 * rows only; the run's tokens come from --tokens or --steps x --accum x B x T (T the context
 * when not given); the table is this machine's row, then the file's rows, then --hw's, which
 * override a row of the same name; the JSON report says whether the run fits an --on row. */
#include "check.h"
#include "run/estreport.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    CHECK(kest_on(NULL, "anything"));
    CHECK(kest_on("h100,a100", "a100") && kest_on("h100,a100", "h100"));
    CHECK(!kest_on("h100,a100", "a10") && !kest_on("h100,a100", "h10") && !kest_on("", "h100"));
    CHECK(kest_on("a,b,", "b"));

    char table[] = "/tmp/kiln-test-estreport-XXXXXX";
    FILE *f = fdopen(mkstemp(table), "w");
    fprintf(f, "# a comment\nname=big tflops=100 eff=0.5 mem=80 price=2\n"
               "name=tiny tflops=1 mem=0.001\n");
    fclose(f);
    kest_opts o = {.B = 4, .vocab = 259, .machines = 1, .measure = 0, .net = 10};
    kengine_opts_init(&o.e);
    o.e.preset = "small";
    o.e.steps = 10;
    o.e.accum = 2;
    o.hw_file = table;
    o.hw[o.n_hw++] = "name=tiny,price=7";
    o.on = "tiny";
    kest_report r;
    kest_report_open(&o, &r);
    CHECK(r.c.B == 4 && r.c.T == r.c.cfg.n_ctx && r.c.T > 0);
    CHECK(r.tokens == 10.0 * 2 * 4 * r.c.T);
    CHECK(r.t.n == 3 && !strcmp(r.t.rows[0].name, "this") && !strcmp(r.t.rows[1].name, "big"));
    CHECK(!strcmp(r.t.rows[2].name, "tiny") && r.t.rows[2].price == 7 && r.t.rows[2].tflops == 1);
    CHECK(!strcmp(r.path, table) && r.me.steps == 0);

    /* 1 MB holds no model: nothing fits --on tiny; --on big fits */
    o.json = true;
    fflush(stdout); /* the report goes to stdout: to /dev/null here */
    int keep = dup(1), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    bool tiny_fits = kest_report_print(&o, &r);
    o.on = "big";
    bool big_fits = kest_report_print(&o, &r);
    fflush(stdout);
    dup2(keep, 1);
    close(keep), close(null);
    CHECK(!tiny_fits && big_fits);
    kest_report_close(&o, &r, big_fits);

    o.have_tokens = true, o.tokens = 1e6, o.T = 64;
    kest_report_open(&o, &r);
    CHECK(r.tokens == 1e6 && r.c.T == 64);
    kest_report_close(&o, &r, true);
    unlink(table);
    return check_report("estreport");
}
