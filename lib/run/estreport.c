/* estreport — kiln estimate's report (lib/run/estreport.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/config.h"
#include "ckpt/load.h"
#include "ckpt/store.h"
#include "run/estreport.h"
#include "stream/options.h"

/* The model shape: kiln train's rule (lib/run/engine.c model_config) without a stream. */
static gpt_config shape(const kest_opts *o) {
    gpt_config c = {0};
    kcfg_preset(o->e.preset ? o->e.preset : "small", &c);
    c.vocab = o->vocab;
    if (o->e.init && !o->e.preset) {
        kckpt *ck = kckpt_load(o->e.init, false);
        uint64_t v;
        gpt_config_from_ckpt(ck, &c);
        if (kckpt_config_u64(ck, "vocab", &v) && v <= 1u << 24) c.vocab = (int)v;
        kckpt_free(ck);
    }
    if (o->e.layers) c.n_layer = o->e.layers;
    if (o->e.dim) c.n_embd = o->e.dim;
    if (o->e.heads) c.n_head = o->e.heads;
    if (o->e.ctx) c.n_ctx = o->e.ctx;
    return c;
}

/* The shipped table: share/kiln/hardware.txt one, two or three folders above the program
 * (bin/ of a checkout or of `make install`; build/san/bin and the like). */
static void shipped_table(char *path, size_t pathsz) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *ups[] = {"..", "../..", "../../.."};
    for (int i = 0; i < 3; i++) {
        snprintf(path, pathsz, "%s/%s/share/kiln/hardware.txt", exe, ups[i]);
        if (!access(path, R_OK)) return;
    }
    snprintf(path, pathsz, "%s/../share/kiln/hardware.txt", exe);
}

/* The hardware table: the file (given, $KILN_HARDWARE, or the shipped one), then --hw rows. */
static void load_table(const kest_opts *o, kest_hw_table *t, char *path, size_t pathsz) {
    char err[1024];
    const char *env = getenv("KILN_HARDWARE");
    if (o->hw_file || env)
        snprintf(path, pathsz, "%s", o->hw_file ? o->hw_file : env);
    else
        shipped_table(path, pathsz);
    int rc = access(path, R_OK) && !o->hw_file && !env ? 0 : kest_hw_load(t, path, err, sizeof err);
    if (t->n == 1 && !rc) kiln_warn("no hardware table at %s: this machine only", path);
    for (int i = 0; !rc && i < o->n_hw; i++)
        if (kest_hw_add(t, o->hw[i], err, sizeof err)) {
            kest_hw_free(t);
            kiln_usage_error("--hw %s: %s", o->hw[i], err);
        }
    if (rc) kest_hw_free(t);
    if (rc) kiln_die(rc, "%s", err);
}

/* The configuration and the tokens of the run the options describe. */
static double resolve(const kest_opts *o, kest_config *c) {
    *c = (kest_config){.cfg = shape(o),
                       .B = o->B,
                       .threads = o->e.threads,
                       .freeze = o->e.freeze,
                       .lora = o->e.lora,
                       .train = o->e.train,
                       .accum = (int)o->e.accum,
                       .net_gbit_s = o->net};
    c->T = o->T ? o->T : c->cfg.n_ctx;
    if (o->have_tokens) return o->tokens;
    if (!o->e.steps) kiln_usage_error("give the run's length: --tokens X or --steps N");
    return (double)o->e.steps * (double)o->e.accum * c->B * c->T;
}

/* This machine's row, its peak from the clock, cores and FMA width, its efficiency from
 * the measured steps (or 50% when not measured), first in the table. */
static void this_machine(const kest_opts *o, const kest_config *c, const kest_plan *p,
                         kest_cpu *cpu, kest_measured *me, kest_hw_table *t) {
    kest_cpu_measure(cpu, c->threads);
    *me = (kest_measured){0};
    char err[512];
    /* the measurement may shrink the batch to 1, not the weights and AdamW */
    bool room = cpu->mem_gb <= 0 || kest_memory_at(c, p, 1).total < 0.8 * cpu->mem_gb * 1e9;
    if (o->measure > 0 && room) {
        int rc = kest_measure(c, p, o->measure, 0.5 * cpu->peak_gflops, me, err, sizeof err);
        if (rc) kiln_die(rc, "%s", err);
    }
    char spec[256];
    double eff = me->steps && cpu->peak_gflops > 0 ? me->gflops / cpu->peak_gflops : 0.5;
    snprintf(spec, sizeof spec, "name=this,tflops=%.10g,eff=%.10g,mem=%.10g",
             cpu->peak_gflops > 0 ? cpu->peak_gflops / 1e3 : 0.01, eff > 1 ? 1 : eff, cpu->mem_gb);
    if (kest_hw_add(t, spec, err, sizeof err)) kiln_die(EX_KILN_SOFTWARE, "%s", err);
}

/* Whether row name is among --on's names (all rows without --on). */
bool kest_on(const char *on, const char *name) {
    if (!on) return true;
    size_t n = strlen(name);
    for (const char *s = on; *s; s += strcspn(s, ",") + (s[strcspn(s, ",")] == ',')) {
        if (strcspn(s, ",") == n && !strncmp(s, name, n)) return true;
    }
    return false;
}

/* Every --on name must be a row. */
static void check_on(const char *on, kest_hw_table *t) {
    const char **names = xcalloc((size_t)t->n, sizeof *names);
    for (int i = 0; i < t->n; i++) names[i] = t->rows[i].name;
    for (const char *s = on; s && *s; s += strcspn(s, ",") + (s[strcspn(s, ",")] == ',')) {
        char name[64], near[64] = "";
        snprintf(name, sizeof name, "%.*s", (int)strcspn(s, ","), s);
        bool found = false;
        for (int i = 0; i < t->n && !found; i++) found = !strcmp(names[i], name);
        if (found) continue;
        const char *close = kiln_closest(name, names, (size_t)t->n);
        if (close) snprintf(near, sizeof near, "; did you mean %s?", close);
        free(names); /* (a clean exit for the leak checker) */
        kest_hw_free(t);
        kiln_usage_error("--on: unknown hardware '%s'%s (the table: --hw-file, or add it with "
                         "--hw name=%s,tflops=...)",
                         name, near, name);
    }
    free(names);
}

static void print_head(const kest_config *c, const kest_plan *p, double tokens, const kest_cpu *cpu,
                       const kest_measured *me) {
    char w[32], g[32], o[32], a[32], l[32], tot[32];
    const kest_memory *m = &p->mem;
    kest_fmt_bytes(m->weights, w, sizeof w), kest_fmt_bytes(m->grads, g, sizeof g);
    kest_fmt_bytes(m->optim, o, sizeof o), kest_fmt_bytes(m->acts, a, sizeof a);
    kest_fmt_bytes(m->lora, l, sizeof l), kest_fmt_bytes(m->total, tot, sizeof tot);
    printf("model       %d layers, %d wide, %d heads, context %d, vocab %d\n", c->cfg.n_layer,
           c->cfg.n_embd, c->cfg.n_head, c->cfg.n_ctx, c->cfg.vocab);
    printf("parameters  %.4g M (%.4g M train)\n", p->n_params / 1e6, p->n_trainable / 1e6);
    printf("FLOPs/token %.4g M (6N + 12LTC at T %d)", p->model_flops / 1e6, c->T);
    if (p->step_flops != p->model_flops)
        printf("; a step does %.4g M (frozen tensors get no gradient)", p->step_flops / 1e6);
    printf("\nmemory      %s at B %d x T %d: weights %s, gradients %s, AdamW %s, activations %s",
           tot, c->B, c->T, w, g, o, a);
    printf("%s%s\n", p->lora_r ? ", LoRA " : "", p->lora_r ? l : "");
    char n_tok[32], n_steps[32];
    kest_fmt_count(tokens, n_tok, sizeof n_tok),
        kest_fmt_count(tokens / (c->B * c->T), n_steps, sizeof n_steps);
    printf("the run     %s tokens = %s steps of B %d x T %d\n", n_tok, n_steps, c->B, c->T);
    printf("this CPU    %d cores x %.2f GHz (measured) x %d FLOPs/cycle = %.0f GFLOP/s FP32 peak "
           "(%s)\n",
           cpu->cores, cpu->ghz, cpu->flops_per_cycle, cpu->peak_gflops, cpu->isa);
    if (me->steps)
        printf("measured    %d steps at B %d x T %d: %.0f ms a step, %.1f GFLOP/s (%.0f%% of "
               "peak)%s\n",
               me->steps, me->B, me->T, me->step_s * 1e3, me->gflops,
               cpu->peak_gflops > 0 ? 100 * me->gflops / cpu->peak_gflops : 0,
               me->reduced ? "; the full batch scaled by FLOPs" : "");
    else
        printf("measured    nothing (--measure 0, or the run does not fit this machine's memory): "
               "this machine at 50%% of its peak\n");
}

/* One table line; returns whether the run fits the row. */
static bool print_row(const kest_config *c, const kest_plan *p, const kest_hw *h, int machines,
                      double tokens, const kest_measured *me) {
    bool here = !strcmp(h->name, "this");
    kest_row r =
        kest_cost(c, p, h, here ? 1 : machines, tokens, here && me->steps ? me->tokens_per_s : 0);
    char name[48], t[32], mem[96], cost[32], need[32], cap[32], price[32] = "-", rate[32];
    kest_fmt_count(r.tokens_per_s, rate, sizeof rate);
    if (machines > 1 && !here)
        snprintf(name, sizeof name, "%d x %s", machines, h->name);
    else
        snprintf(name, sizeof name, "%s", h->name);
    kest_fmt_duration(r.seconds, t, sizeof t);
    snprintf(cost, sizeof cost, "-");
    if (h->price > 0) snprintf(cost, sizeof cost, "$%.2f", r.cost);
    if (h->price > 0) snprintf(price, sizeof price, "$%.2f", h->price);
    kest_fmt_bytes(p->mem.total, need, sizeof need),
        kest_fmt_bytes(h->mem_gb * 1e9, cap, sizeof cap);
    if (r.fits)
        snprintf(mem, sizeof mem, "fits (%s)", h->mem_gb > 0 ? cap : "memory unknown");
    else if (r.max_B)
        snprintf(mem, sizeof mem, "needs %s > %s: fits at -B %d", need, cap, r.max_B);
    else
        snprintf(mem, sizeof mem, "needs %s > %s even at -B 1", need, cap);
    printf("%-18s %9.3g %4.0f%% %10s %10s %7s %10s  %s%s\n", name, h->tflops, 100 * h->eff, rate, t,
           price, cost, mem, here && me->steps ? "  (measured)" : "");
    return r.fits;
}

static void put_json(const kest_opts *o, const kest_config *c, const kest_plan *p, double tokens,
                     const kest_cpu *cpu, const kest_measured *me, const kest_hw_table *t) {
    printf("{\"params\":%zu,\"trainable\":%zu,\"flops_per_token\":%.17g,\"step_flops_per_token\":"
           "%.17g,\"B\":%d,\"T\":%d,\"tokens\":%.17g,",
           p->n_params, p->n_trainable, p->model_flops, p->step_flops, c->B, c->T, tokens);
    printf("\"memory\":{\"weights\":%.0f,\"grads\":%.0f,\"optim\":%.0f,\"acts\":%.0f,\"lora\":%.0f,"
           "\"total\":%.0f},",
           p->mem.weights, p->mem.grads, p->mem.optim, p->mem.acts, p->mem.lora, p->mem.total);
    printf("\"cpu\":{\"cores\":%d,\"ghz\":%.4g,\"flops_per_cycle\":%d,\"peak_gflops\":%.10g},",
           cpu->cores, cpu->ghz, cpu->flops_per_cycle, cpu->peak_gflops);
    printf("\"measured\":{\"steps\":%d,\"B\":%d,\"T\":%d,\"step_s\":%.10g,\"gflops\":%.10g,"
           "\"tokens_per_s\":%.10g,\"reduced\":%s},\"rows\":[",
           me->steps, me->B, me->T, me->step_s, me->gflops, me->tokens_per_s,
           me->reduced ? "true" : "false");
    for (int i = 0, first = 1; i < t->n; i++) {
        const kest_hw *h = &t->rows[i];
        bool here = !strcmp(h->name, "this");
        if (!kest_on(o->on, h->name) && !here) continue;
        int n = here ? 1 : o->machines;
        kest_row r = kest_cost(c, p, h, n, tokens, here && me->steps ? me->tokens_per_s : 0);
        printf("%s{\"name\":\"%s\",\"machines\":%d,\"tflops\":%.10g,\"eff\":%.4g,\"price\":%.4g,"
               "\"tokens_per_s\":%.10g,\"seconds\":%.10g,\"cost\":%.10g,\"fits\":%s,\"max_B\":%d}",
               first ? "" : ",", h->name, n, h->tflops, h->eff, h->price, r.tokens_per_s, r.seconds,
               r.cost, r.fits ? "true" : "false", r.max_B);
        first = 0;
    }
    printf("]}\n");
}

/* The run fits none of the --on rows: say what would (a smaller batch, or less to hold). */
_Noreturn static void refuse(const kest_config *c, const kest_plan *p, kest_hw_table *t,
                             const char *on) {
    int best = 0;
    double cap = 0;
    for (int i = 0; i < t->n; i++) {
        if (!kest_on(on, t->rows[i].name)) continue;
        kest_row r = kest_cost(c, p, &t->rows[i], 1, 1, 1);
        best = r.max_B > best ? r.max_B : best;
        cap = t->rows[i].mem_gb > cap ? t->rows[i].mem_gb : cap;
    }
    char fix[160];
    if (best)
        snprintf(fix, sizeof fix, "-B %d fits (the same tokens in more steps, or --accum)", best);
    else
        snprintf(fix, sizeof fix,
                 "even -B 1 does not: weights, gradients and AdamW alone take "
                 "%.3g GB; try --lora or a smaller --dim / --layers",
                 (p->mem.weights + p->mem.grads + p->mem.optim) / 1e9);
    kest_hw_free(t);
    kiln_usage_error("the run needs %.3g GB at B %d, more than --on %s has (%.3g GB): %s",
                     p->mem.total / 1e9, c->B, on, cap, fix);
}

void kest_report_open(const kest_opts *o, kest_report *r) {
    *r = (kest_report){0};
    r->tokens = resolve(o, &r->c);
    char err[512];
    int rc = kest_plan_make(&r->c, &r->p, err, sizeof err);
    if (rc) kiln_usage_error("%s", err);
    this_machine(o, &r->c, &r->p, &r->cpu, &r->me, &r->t);
    load_table(o, &r->t, r->path, sizeof r->path);
    check_on(o->on, &r->t);
}

bool kest_report_print(const kest_opts *o, kest_report *r) {
    bool any_fits = false;
    if (o->json) {
        put_json(o, &r->c, &r->p, r->tokens, &r->cpu, &r->me, &r->t);
        for (int i = 0; i < r->t.n; i++)
            any_fits |= kest_on(o->on, r->t.rows[i].name) &&
                        kest_cost(&r->c, &r->p, &r->t.rows[i], 1, r->tokens, 1).fits;
    } else {
        print_head(&r->c, &r->p, r->tokens, &r->cpu, &r->me);
        printf("\n%-18s %9s %5s %10s %10s %7s %10s  %s\n", "hardware", "TFLOP/s", "eff", "tokens/s",
               "time", "$/h", "cost", "memory");
        for (int i = 0; i < r->t.n; i++)
            if (kest_on(o->on, r->t.rows[i].name) || !strcmp(r->t.rows[i].name, "this"))
                any_fits |=
                    print_row(&r->c, &r->p, &r->t.rows[i], o->machines, r->tokens, &r->me) &&
                    kest_on(o->on, r->t.rows[i].name);
        if (o->machines > 1 && o->net > 0) {
            char bytes[32];
            kest_fmt_bytes(4.0 * (double)r->p.n_trainable, bytes, sizeof bytes);
            printf("\n%d machines: the compute divided by %d, plus a ring all-reduce of %s of "
                   "gradients each optimizer step over %g Gbit/s: %.3g s a step, not overlapped "
                   "(README: More than one machine: MPI).\n",
                   o->machines, o->machines, bytes, o->net,
                   kest_allreduce_s(&r->p, o->machines, o->net));
        } else if (o->machines > 1) {
            printf("\n%d machines: compute only (--net 0), the time divided by %d.\n", o->machines,
                   o->machines);
        }
        printf("\nthis: this machine; the other rows from %s (each row's sources and assumptions "
               "are in the file).\n",
               r->path);
    }
    return any_fits;
}

void kest_report_close(const kest_opts *o, kest_report *r, bool any_fits) {
    if (o->on && !any_fits) refuse(&r->c, &r->p, &r->t, o->on);
    kest_hw_free(&r->t);
}
