/* train_kiln — time kiln's training step (forward, backward, AdamW) on random tokens.
 * Prints one JSON line: the median step time over --steps steps after --warmup steps,
 * tokens/s, model GFLOP/s (6 * params + 12 * L * T * C per token) and peak RSS.
 * bench/train.sh runs it beside bench/train_torch.py on the same configs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "model/gemm.h"
#include "model/gpt.h"
#include "model/optim.h"
#include "core/util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    kiln_set_prog(argv[0]);
    gpt_config cfg = {.n_layer = 4, .n_embd = 256, .n_head = 4, .n_ctx = 256, .vocab = 256};
    int B = 8, T = 256, steps = 10, warmup = 2, threads = 0;
    static const struct option opts[] = {
        {"layers", 1, 0, 'l'},  {"dim", 1, 0, 'd'}, {"heads", 1, 0, 'h'}, {"vocab", 1, 0, 'v'},
        {"batch", 1, 0, 'B'},   {"seq", 1, 0, 'T'}, {"steps", 1, 0, 's'}, {"warmup", 1, 0, 'w'},
        {"threads", 1, 0, 'j'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "B:T:", opts, NULL)) != -1) {
        int v = (int)opt_u64(argv[optind - 1], optarg);
        switch (c) {
        case 'l':
            cfg.n_layer = v;
            break;
        case 'd':
            cfg.n_embd = v;
            break;
        case 'h':
            cfg.n_head = v;
            break;
        case 'v':
            cfg.vocab = v;
            break;
        case 'B':
            B = v;
            break;
        case 'T':
            T = v;
            break;
        case 's':
            steps = v;
            break;
        case 'w':
            warmup = v;
            break;
        case 'j':
            threads = v;
            break;
        default:
            kiln_die(EX_KILN_USAGE, "usage: train_kiln [--layers --dim --heads --vocab -B -T "
                                    "--steps --warmup --threads]");
        }
    }
    cfg.n_ctx = T;
    kpool *pool = kpool_create(threads);
    gpt *m = gpt_create(&cfg, pool, 1);
    adamw *opt = adamw_create(m->n_params);
    int32_t *x = xmalloc(sizeof(int32_t) * B * T), *y = xmalloc(sizeof(int32_t) * B * T);
    uint64_t s = 12345;
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (int32_t)((s >> 33) % (uint64_t)cfg.vocab);
        y[i] = (int32_t)((s >> 17) % (uint64_t)cfg.vocab);
    }
    double *times = xcalloc((size_t)steps, sizeof(double)), loss = 0;
    for (int i = 0; i < warmup + steps; i++) {
        double t0 = kiln_now();
        gpt_zero_grad(m);
        loss = gpt_forward(m, x, y, NULL, B, T);
        gpt_backward(m, 1.0f);
        double norm = grad_global_norm(pool, m->grads, m->n_params);
        adamw_update(opt, pool, m->params, m->grads, m->tensors, m->n_tensors, 1e-4, norm);
        if (i >= warmup) times[i - warmup] = kiln_now() - t0;
    }
    qsort(times, (size_t)steps, sizeof(double), cmp_double);
    double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
    double tps = B * T / med, gflops = tps * gpt_flops_per_token(&cfg, T) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\":\"kiln\",\"params\":%zu,\"threads\":%d,\"step_ms\":%.1f,\"min_ms\":%.1f,"
           "\"tokens_per_s\":%.0f,\"gflops\":%.1f,\"rss_mb\":%.0f,\"loss\":%.4f,\"gemm\":\"%s\"}\n",
           m->n_params, kpool_size(pool), med * 1e3, times[0] * 1e3, tps, gflops,
           ru.ru_maxrss / 1024.0, loss, kgemm_kernel());
    free(times);
    free(x);
    free(y);
    adamw_free(opt);
    gpt_free(m);
    kpool_free(pool);
    return 0;
}
