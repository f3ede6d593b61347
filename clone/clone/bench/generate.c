/* generate — time batched generation (lib/model/generate's kgen_run) on a freshly
 * initialised model: R rows, each a P-token prompt then N new tokens (no stop token, so
 * every row runs to the end), temperature 1 sampling included.  With --logprobs 1, RL
 * rollouts instead (lib/run/rollout's krollout_generate): R / K prompts, K completions each,
 * every drawn token's log-probability recorded (bench/rollout.sh).  Prints one JSON line: the
 * best and median wall time over --reps runs and the new tokens per second they give.
 *   build/rel/bench/generate [--layers 4 --dim 256 --heads 4 --ctx 256 --vocab 259]
 *                            [--rows 64 --new 64 --prompt 16 --threads 2 --reps 5]
 *                            [--logprobs 1 --k 4] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"
#include "model/generate.h"
#include "run/rollout.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench_opts {
    gpt_config cfg;
    int rows, n_new, prompt, threads, reps, logprobs, k;
} bench_opts;

static bench_opts parse(int argc, char **argv) {
    bench_opts o = {{.n_layer = 4, .n_embd = 256, .n_head = 4, .n_ctx = 256, .vocab = 259},
                    64,
                    64,
                    16,
                    2,
                    5,
                    0,
                    1};
    static const struct option opts[] = {
        {"layers", 1, 0, 'l'}, {"dim", 1, 0, 'd'},      {"heads", 1, 0, 'h'},
        {"ctx", 1, 0, 'c'},    {"vocab", 1, 0, 'v'},    {"rows", 1, 0, 'R'},
        {"new", 1, 0, 'N'},    {"prompt", 1, 0, 'P'},   {"threads", 1, 0, 'j'},
        {"reps", 1, 0, 'r'},   {"logprobs", 1, 0, 'L'}, {"k", 1, 0, 'K'},
        {0, 0, 0, 0}};
    int *field[128] = {
        ['l'] = &o.cfg.n_layer, ['d'] = &o.cfg.n_embd, ['h'] = &o.cfg.n_head, ['c'] = &o.cfg.n_ctx,
        ['v'] = &o.cfg.vocab,   ['R'] = &o.rows,       ['N'] = &o.n_new,      ['P'] = &o.prompt,
        ['j'] = &o.threads,     ['r'] = &o.reps,       ['L'] = &o.logprobs,   ['K'] = &o.k};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c < 0 || c >= 128 || !field[c])
            kiln_die(EX_KILN_USAGE, "usage: generate [--layers --dim --heads --ctx --vocab "
                                    "--rows --new --prompt --threads --reps --logprobs --k]");
        *field[c] = (int)opt_u64(argv[optind - 1], optarg);
    }
    if (o.rows < 1 || o.n_new < 1 || o.prompt < 1 || o.reps < 1 || o.k < 1 || o.rows % o.k)
        kiln_die(EX_KILN_USAGE, "rows, new, prompt, reps and k must be positive, k divide rows");
    return o;
}

static double time_generate(kgen *g, const bench_opts *o, const int32_t *prompts, int32_t *out,
                            int *lens, uint64_t seed, const ksampler *s) {
    double t = kiln_now();
    kgen_run(g, prompts, o->prompt, o->n_new, s, NULL, -1, seed, NULL, NULL, out, lens);
    return kiln_now() - t;
}

/* rows / k prompts (the first rows of prompts), k completions each, with their logprobs. */
static double time_rollouts(krollout_gen *g, const bench_opts *o, const int32_t *prompts,
                            uint64_t seed) {
    int n = o->rows / o->k;
    const int32_t **ptrs = xmalloc(xmul((size_t)n, sizeof *ptrs));
    int *plen = xmalloc(xmul((size_t)n, sizeof(int)));
    for (int i = 0; i < n; i++) ptrs[i] = prompts + (size_t)i * o->prompt, plen[i] = o->prompt;
    krollout_opts ro = krollout_opts_default();
    ro.K = o->k, ro.max_new = o->n_new, ro.seed = seed;
    krollout_batch b;
    double t = kiln_now();
    krollout_generate(g, ptrs, plen, n, &ro, 0, &b);
    t = kiln_now() - t;
    krollout_batch_free(&b);
    free(ptrs), free(plen);
    return t;
}

int main(int argc, char **argv) {
    kiln_set_prog(argv[0]);
    bench_opts o = parse(argc, argv);
    kpool *pool = kpool_create(o.threads);
    gpt *m = gpt_create(&o.cfg, pool, 1);
    size_t R = (size_t)o.rows;
    int32_t *prompts = xmalloc(xmul(R * (size_t)o.prompt, sizeof(int32_t)));
    int32_t *out = xmalloc(xmul(R * (size_t)o.n_new, sizeof(int32_t)));
    int *lens = xmalloc(xmul(R, sizeof(int)));
    for (size_t i = 0; i < R * (size_t)o.prompt; i++) prompts[i] = (int32_t)(i * 37 % 256);
    double *times = xmalloc(xmul((size_t)o.reps, sizeof(double)));
    ksampler s = ksampler_default();
    kgen *g = kgen_create(m, o.rows, pool); /* caches made on the first run, reused */
    krollout_gen *rg = krollout_gen_create(m, pool);
    for (int r = 0; r < o.reps; r++)
        times[r] = o.logprobs ? time_rollouts(rg, &o, prompts, (uint64_t)r)
                              : time_generate(g, &o, prompts, out, lens, (uint64_t)r, &s);
    qsort(times, (size_t)o.reps, sizeof(double), cmp_double);
    double toks = (double)o.rows * o.n_new;
    printf("{\"layers\": %d, \"dim\": %d, \"heads\": %d, \"ctx\": %d, \"vocab\": %d, "
           "\"rows\": %d, \"prompt\": %d, \"new\": %d, \"threads\": %d, \"logprobs\": %d, "
           "\"k\": %d, \"best_s\": %.4f, "
           "\"median_s\": %.4f, \"tokens_per_s_best\": %.0f, \"tokens_per_s_median\": %.0f}\n",
           o.cfg.n_layer, o.cfg.n_embd, o.cfg.n_head, o.cfg.n_ctx, o.cfg.vocab, o.rows, o.prompt,
           o.n_new, kpool_size(pool), o.logprobs, o.k, times[0], times[o.reps / 2], toks / times[0],
           toks / times[o.reps / 2]);
    kgen_free(g);
    krollout_gen_free(rg);
    gpt_free(m);
    kpool_free(pool);
    free(prompts), free(out), free(lens), free(times);
    return 0;
}
