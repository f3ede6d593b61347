/* estimate — the plan, this machine's peak, a measured step, the hardware table, the cost. */
#include "run/estimate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "model/gemm.h"
#include "model/lora.h"
#include "model/optim.h"
#include "run/finetune.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ---- the plan ------------------------------------------------------------------------------- */

/* Which tensors train: --freeze, or --lora (the whole base) with --train's exceptions. */
static int frozen_flags(const kest_config *c, const gpt *shell, bool *frozen, char *err,
                        size_t errsz) {
    char why[512];
    if (c->freeze && !ft_freeze_parse(shell, c->freeze, frozen, why, sizeof why))
        return kiln_errf(err, errsz, EX_KILN_USAGE, "%s", why);
    if (!c->lora) return 0;
    for (int i = 0; i < shell->n_tensors; i++) frozen[i] = true;
    if (!c->train) return 0;
    bool *named = xcalloc((size_t)shell->n_tensors, sizeof(bool));
    bool ok = ft_freeze_parse(shell, c->train, named, why, sizeof why);
    for (int i = 0; ok && i < shell->n_tensors; i++) frozen[i] &= !named[i];
    free(named);
    return ok ? 0 : kiln_errf(err, errsz, EX_KILN_USAGE, "--train: %s", why);
}

/* The lowest block backward runs through, as lib/model/gpt.c lowest_trained_layer decides:
 * -1 when the embeddings train, n_layer when no block needs it. */
static int lowest_layer(const gpt *shell, const bool *frozen, bool lora_on) {
    int low = shell->cfg.n_layer;
    for (int i = 0; i < shell->n_tensors; i++) {
        const char *name = shell->tensors[i].name;
        if (frozen[i]) continue;
        if (!strncmp(name, "transformer.wte.", 16) || !strncmp(name, "transformer.wpe.", 16))
            return -1;
        if (!strncmp(name, "transformer.h.", 14) && atoi(name + 14) < low) low = atoi(name + 14);
    }
    return lora_on ? 0 : low;
}

/* Adapter parameters and their FLOPs per token (forward x A^T B^T: 2r(in+out); backward
 * the same twice more: A's and B's gradients and the input gradient). */
static void lora_work(const lora_config *lc, const gpt_config *g, size_t *n, double *flops) {
    *n = 0;
    for (int t = 0; t < LORA_N_TARGETS; t++) {
        if (!(lc->targets & (1u << t))) continue;
        int in, out;
        lora_dims((lora_target)t, g->n_embd, &in, &out);
        *n += (size_t)g->n_layer * (size_t)lc->r * (size_t)(in + out);
    }
    *flops = 6.0 * (double)*n;
}

/* FLOPs per token a step skips: a frozen matrix's weight gradient (2 x numel), and below
 * the lowest trained block its input gradient and attention's backward (8TC) too. */
static double frozen_savings(const gpt *shell, const bool *frozen, int low, int T) {
    double saved = 0, C = shell->cfg.n_embd;
    for (int i = 0; i < shell->n_tensors; i++) {
        const gpt_tensor *t = &shell->tensors[i];
        if (!frozen[i] || t->ndim != 2 || !strcmp(t->name, "transformer.wpe.weight")) continue;
        saved += 2.0 * (double)t->numel;
        bool block = !strncmp(t->name, "transformer.h.", 14);
        if (block && atoi(t->name + 14) < low) saved += 2.0 * (double)t->numel;
    }
    int below = low < 0 ? 0 : low;
    return saved + 8.0 * below * (double)T * C;
}

static int plan_finetune(const kest_config *c, kest_plan *p, char *err, size_t errsz) {
    int n;
    size_t total;
    gpt_tensor *tensors = gpt_tensors_of(&c->cfg, &n, &total);
    gpt shell = {.cfg = c->cfg, .tensors = tensors, .n_tensors = n, .n_params = total};
    bool *frozen = xcalloc((size_t)n, sizeof(bool));
    lora_config lc = {0};
    char why[512];
    int rc = frozen_flags(c, &shell, frozen, err, errsz);
    if (!rc && c->lora && !lora_parse(c->lora, &lc, why, sizeof why))
        rc = kiln_errf(err, errsz, EX_KILN_USAGE, "--lora: %s", why);
    if (!rc) {
        double lora_flops = 0;
        if (c->lora) lora_work(&lc, &c->cfg, &p->n_lora, &lora_flops);
        p->lora_r = c->lora ? lc.r : 0;
        p->lora_dropout = lc.dropout > 0;
        p->n_trainable = p->n_lora;
        for (int i = 0; i < n; i++) p->n_trainable += frozen[i] ? 0 : tensors[i].numel;
        p->low_layer = lowest_layer(&shell, frozen, c->lora && lc.targets);
        p->step_flops =
            p->model_flops + lora_flops - frozen_savings(&shell, frozen, p->low_layer, c->T);
    }
    free(frozen);
    free(tensors);
    return rc;
}

int kest_plan_make(const kest_config *c, kest_plan *p, char *err, size_t errsz) {
    *p = (kest_plan){.low_layer = -1};
    const char *bad = gpt_config_check(&c->cfg);
    if (bad) return kiln_errf(err, errsz, EX_KILN_USAGE, "model: %s", bad);
    if (c->B < 1 || c->T < 1 || c->T > c->cfg.n_ctx)
        return kiln_errf(err, errsz, EX_KILN_USAGE, "-T must be 1..%d (the context), got %d",
                         c->cfg.n_ctx, c->T);
    int n;
    free(gpt_tensors_of(&c->cfg, &n, &p->n_params));
    p->model_flops = gpt_flops_per_token(&c->cfg, c->T);
    p->step_flops = p->model_flops;
    p->n_trainable = p->n_params;
    if (c->freeze || c->lora) {
        int rc = plan_finetune(c, p, err, errsz);
        if (rc) return rc;
    }
    p->mem = kest_memory_at(c, p, c->B);
    return 0;
}

static int pool_threads(int threads) {
    if (threads > 0) return threads;
    const char *env = getenv("KILN_THREADS");
    uint64_t v;
    if (env && parse_u64(env, &v) && v > 0 && v <= 1024) return (int)v;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Floats of activations and scratch lib/model/gpt.c ensure_acts allocates for (B, T). */
static double act_floats(const gpt_config *g, int B, int T, int nt) {
    double L = g->n_layer, C = g->n_embd, H = g->n_head, V = g->vocab, N = (double)B * T;
    double hd = C / H;
    double blocks = L * N * C * 16 + L * N * 4 + L * N * H; /* res2 ln1 qkv atty ln2 fch gelu */
    double outer = N * C * 2 + N * 5 + N * V + B * C;       /* res[L], lnf, logits, lse, pooled.. */
    double backward = N * C * 9 + B * 3 * C;                /* dres dc d3c d4c att_dbias */
    double packed = fmax((double)kgemm_packed_floats(g->n_embd, 4 * g->n_embd),
                         (double)kgemm_packed_floats(4 * g->n_embd, g->n_embd));
    double per_thread = 2.0 * T * T + 2 * hd * T + 4 * C + (double)kgemm_workspace_floats();
    double wgrad = nt > 1 && nt <= 4 ? (nt - 1) * 4 * C * C : 0; /* WGRAD_SPLIT_MAX */
    return blocks + outer + backward + packed + nt * per_thread + wgrad + 2 * N /* x, y */;
}

kest_memory kest_memory_at(const kest_config *c, const kest_plan *p, int B) {
    kest_memory m = {0};
    double N = (double)B * c->T, r = p->lora_r;
    m.weights = 4.0 * (double)p->n_params;
    m.grads = 4.0 * (double)p->n_params; /* one buffer for every tensor, frozen or not */
    m.optim = 8.0 * (double)p->n_trainable;
    m.acts = 4.0 * act_floats(&c->cfg, B, c->T, pool_threads(c->threads));
    if (p->lora_r) /* params and grads; x A^T per layer and target; dropout's two buffers */
        m.lora = 4.0 * (2.0 * (double)p->n_lora + c->cfg.n_layer * LORA_N_TARGETS * N * r + N * r +
                        (p->lora_dropout ? 2 * N * 4 * c->cfg.n_embd : 0));
    m.total = m.weights + m.grads + m.optim + m.acts + m.lora;
    return m;
}

/* ---- hardware ------------------------------------------------------------------------------- */

kest_hw *kest_hw_find(kest_hw_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].name, name)) return &t->rows[i];
    return NULL;
}

void kest_hw_free(kest_hw_table *t) {
    free(t->rows);
    *t = (kest_hw_table){0};
}

/* One key=value of a row into hw; *have_tflops when it set the peak. */
static int hw_field(kest_hw *hw, const char *key, const char *val, bool *have_tflops, char *err,
                    size_t errsz) {
    static const char *const keys[] = {"tflops", "eff", "mem", "price", "step_ms"};
    double *dest[] = {&hw->tflops, &hw->eff, &hw->mem_gb, &hw->price, &hw->step_ms};
    for (int k = 0; k < 5; k++) {
        if (strcmp(key, keys[k])) continue;
        double v;
        bool ok = parse_f64(val, &v) && isfinite(v);
        if (k == 0) ok = ok && v > 0;           /* a peak must be positive */
        if (k == 1) ok = ok && v > 0 && v <= 1; /* a share of the peak */
        if (k >= 2) ok = ok && v >= 0;          /* 0: unknown / free */
        if (!ok)
            return kiln_errf(err, errsz, EX_KILN_USAGE, "%s=%s: want %s", key, val,
                             k == 0   ? "a peak above 0 (TFLOP/s)"
                             : k == 1 ? "an efficiency in (0, 1]"
                                      : "a number >= 0");
        *dest[k] = v;
        *have_tflops |= k == 0;
        return 0;
    }
    const char *near = kiln_closest(
        key, (const char *const[]){"name", "tflops", "eff", "mem", "price", "step_ms"}, 6);
    return kiln_errf(err, errsz, EX_KILN_USAGE,
                     "unknown field '%s'%s%s%s (name, tflops, eff, mem, price, step_ms)", key,
                     near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
}

/* Split "k=v,k=v k=v" into fields; the name first, then the rest applied to hw. */
static int hw_fields(const char *spec, char *name, size_t namesz, kest_hw *hw, bool *have_tflops,
                     char *err, size_t errsz) {
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return kiln_errf(err, errsz, EX_KILN_USAGE, "a row longer than %zu bytes", sizeof buf);
    strcpy(buf, spec);
    for (char *save = NULL, *f = strtok_r(buf, ", \t\r\n", &save); f;
         f = strtok_r(NULL, ", \t\r\n", &save)) {
        char *eq = strchr(f, '=');
        if (!eq || eq == f) return kiln_errf(err, errsz, EX_KILN_USAGE, "'%s' is not key=value", f);
        *eq = 0;
        int rc = 0;
        if (!strcmp(f, "name")) {
            bool ok = eq[1] && strlen(eq + 1) < namesz;
            for (const char *s = eq + 1; ok && *s; s++)
                ok = isalnum((unsigned char)*s) || strchr("-_.", *s);
            if (!ok)
                return kiln_errf(err, errsz, EX_KILN_USAGE,
                                 "name=%s: want 1..%zu letters, digits, '-', '_' or '.'", eq + 1,
                                 namesz - 1);
            strcpy(name, eq + 1);
        } else if (hw) {
            rc = hw_field(hw, f, eq + 1, have_tflops, err, errsz);
        }
        if (rc) return rc;
    }
    return 0;
}

int kest_hw_add(kest_hw_table *t, const char *spec, char *err, size_t errsz) {
    char name[sizeof t->rows->name] = "";
    int rc = hw_fields(spec, name, sizeof name, NULL, NULL, err, errsz);
    if (rc) return rc;
    if (!*name) return kiln_errf(err, errsz, EX_KILN_USAGE, "'%s': no name=", spec);
    kest_hw *hw = kest_hw_find(t, name);
    kest_hw fresh = {.eff = 0.4};
    bool have_tflops = false;
    rc = hw_fields(spec, name, sizeof name, hw ? hw : &fresh, &have_tflops, err, errsz);
    if (rc || hw) return rc;
    if (!have_tflops)
        return kiln_errf(err, errsz, EX_KILN_USAGE, "a new row '%s' needs tflops=", name);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->rows = xrealloc(t->rows, xmul((size_t)t->cap, sizeof *t->rows));
    }
    strcpy(fresh.name, name);
    t->rows[t->n++] = fresh;
    return 0;
}

int kest_hw_load(kest_hw_table *t, const char *path, char *err, size_t errsz) {
    FILE *f = fopen(path, "r");
    if (!f) return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(errno));
    char line[1024], why[512];
    int rc = 0;
    for (int no = 1; !rc && fgets(line, sizeof line, f); no++) {
        if (!strchr(line, '\n') && !feof(f))
            rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s:%d: a line longer than %zu bytes", path,
                           no, sizeof line - 2);
        line[strcspn(line, "#")] = 0;
        if (rc || !line[strspn(line, " \t\r\n")]) continue;
        if (kest_hw_add(t, line, why, sizeof why))
            rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s:%d: %s", path, no, why);
    }
    if (!rc && ferror(f)) rc = kiln_errf(err, errsz, EX_KILN_IO, "%s: read error", path);
    fclose(f);
    return rc;
}

/* ---- this machine --------------------------------------------------------------------------- */

int kest_cpu_flops_per_cycle(bool avx512, bool avx2_fma, bool vendor_amd, int family,
                             const char **isa) {
    if (avx512 && vendor_amd && family < 0x1a) {
        *isa = "AVX-512 on two 256-bit FMA pipes (AMD Zen 4): 2 x 8 lanes x 2";
        return 32;
    }
    if (avx512) {
        *isa = "AVX-512, two 512-bit FMA units: 2 x 16 lanes x 2 (parts with one unit reach half)";
        return 64;
    }
    if (avx2_fma) {
        *isa = "AVX2 + FMA, two 256-bit FMA units: 2 x 8 lanes x 2";
        return 32;
    }
    *isa = "no FMA known: 2 x 4 lanes (an SSE add and a multiply per cycle)";
    return 8;
}

static int cpu_flops_per_cycle(const char **isa) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d, vendor_b = 0, family = 0;
    if (__get_cpuid(0, &a, &vendor_b, &c, &d) && __get_cpuid(1, &a, &b, &c, &d))
        family = ((a >> 8) & 0xf) + (((a >> 8) & 0xf) == 0xf ? (a >> 20) & 0xff : 0);
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return kest_cpu_flops_per_cycle(avx512, fma, vendor_b == 0x68747541 /* "Auth" */, (int)family,
                                    isa);
#elif defined(__aarch64__)
    *isa = "AArch64 NEON, two 128-bit FMA pipes assumed: 2 x 4 lanes x 2";
    return 16;
#else
    return kest_cpu_flops_per_cycle(false, false, false, 0, isa);
#endif
}

/* Seconds of CPU this thread has run: a shared machine's other jobs do not count. */
static double thread_cpu_s(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) return kiln_now();
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The core clock: a chain of dependent adds runs one add per cycle, so adds per second of
 * this thread's CPU time is the frequency the core runs at under load.  The best of a few
 * tries; without x86 assembly, the highest "cpu MHz" of /proc/cpuinfo. */
static double cpu_ghz(void) {
    double best = 0;
#if defined(__x86_64__)
    for (int rep = 0; rep < 7; rep++) {
        uint64_t x = 0;
        const long iters = 4000000; /* 32M cycles: ~10 ms at 3 GHz */
        double t0 = thread_cpu_s();
        for (long i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        double dt = thread_cpu_s() - t0, ghz = 8.0 * (double)iters / dt / 1e9;
        if (dt > 0 && ghz > best) best = ghz;
    }
    if (best > 0) return best;
#endif
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        double mhz;
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1 && mhz / 1e3 > best) best = mhz / 1e3;
    }
    if (f) fclose(f);
    return best;
}

/* A number from a sysfs file, or def. */
static long read_long(const char *path, long def) {
    FILE *f = fopen(path, "r");
    long v = def;
    if (f && fscanf(f, "%ld", &v) != 1) v = def;
    if (f) fclose(f);
    return v;
}

/* Physical cores among the online CPUs: distinct (package, core) pairs in sysfs; the CPU
 * count when sysfs does not say (an SMT sibling adds no FMA units). */
static int physical_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    long *ids = xcalloc((size_t)n, sizeof(long));
    int distinct = 0;
    for (long cpu = 0; cpu < n; cpu++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/core_id", cpu);
        long core = read_long(path, -1);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id",
                 cpu);
        long id = read_long(path, 0) * 1000000 + core;
        bool seen = core < 0;
        for (int i = 0; i < distinct && !seen; i++) seen = ids[i] == id;
        if (core < 0) distinct = (int)n;
        if (core < 0) break;
        if (!seen) ids[distinct++] = id;
    }
    free(ids);
    return distinct;
}

void kest_cpu_measure(kest_cpu *cpu, int threads) {
    int nt = pool_threads(threads), cores = physical_cores();
    cpu->cores = nt < cores ? nt : cores;
    cpu->flops_per_cycle = cpu_flops_per_cycle(&cpu->isa);
    cpu->ghz = cpu_ghz();
    cpu->peak_gflops = cpu->ghz * cpu->cores * cpu->flops_per_cycle;
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    cpu->mem_gb = pages > 0 && size > 0 ? (double)pages * (double)size / 1e9 : 0;
}

/* ---- a measured step ------------------------------------------------------------------------ */

typedef struct step_rig {
    kpool *pool;
    gpt *m;
    bool *frozen;
    lora *adapters;
    kparam *ps;
    int n_ps;
    adamw *opt;
    int32_t *x, *y;
} step_rig;

static void rig_free(step_rig *r) {
    free(r->x);
    free(r->y);
    adamw_free(r->opt);
    free(r->ps);
    lora_free(r->adapters);
    free(r->frozen);
    gpt_free(r->m);
    kpool_free(r->pool);
}

/* The model, fine-tuning and AdamW as kiln train sets them up (lib/run/engine.c). */
static int rig_open(step_rig *r, const kest_config *c, int B, int T, char *err, size_t errsz) {
    r->pool = kpool_create(c->threads);
    r->m = gpt_create(&c->cfg, r->pool, 1);
    if (c->freeze || c->lora) {
        r->frozen = xcalloc((size_t)r->m->n_tensors, sizeof(bool));
        int rc = frozen_flags(c, r->m, r->frozen, err, errsz);
        if (rc) return rc;
        r->m->frozen = r->frozen;
    }
    lora_config lc;
    char why[256];
    if (c->lora && !lora_parse(c->lora, &lc, why, sizeof why))
        return kiln_errf(err, errsz, EX_KILN_USAGE, "--lora: %s", why);
    if (c->lora) {
        r->adapters = lora_create(&lc, &c->cfg, 1);
        r->adapters->training = true;
        r->m->lora = r->adapters;
    }
    size_t total;
    r->ps = ft_params(r->m, r->frozen, r->adapters, &r->n_ps, &total);
    r->opt = adamw_create(total);
    r->x = xmalloc(xmul((size_t)B * T, sizeof(int32_t)));
    r->y = xmalloc(xmul((size_t)B * T, sizeof(int32_t)));
    uint64_t s = 12345; /* bench/train_kiln.c's tokens */
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        r->x[i] = (int32_t)((s >> 33) % (uint64_t)c->cfg.vocab);
        r->y[i] = (int32_t)((s >> 17) % (uint64_t)c->cfg.vocab);
    }
    return 0;
}

/* One optimizer step as lib/run/engine.c takes it; its seconds. */
static double rig_step(step_rig *r, int B, int T) {
    double t0 = kiln_now();
    gpt_zero_grad(r->m);
    gpt_forward(r->m, r->x, r->y, NULL, B, T);
    gpt_backward(r->m, 1.0f);
    double norm = params_grad_norm(r->pool, r->ps, r->n_ps);
    adamw_update_params(r->opt, r->pool, r->ps, r->n_ps, 1e-4, norm);
    return kiln_now() - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int kest_measure(const kest_config *c, const kest_plan *p, double budget_s, double guess_gflops,
                 kest_measured *out, char *err, size_t errsz) {
    int B = c->B, T = c->T;
    double rate = guess_gflops > 0 ? guess_gflops * 1e9 : 1e10, target = budget_s / 4;
    while (B > 1 && p->step_flops * B * T / rate > target) B = (B + 1) / 2;
    while (T > 128 && p->step_flops * B * T / rate > target) T = T / 2 < 128 ? 128 : T / 2;
    step_rig r = {0};
    int rc = rig_open(&r, c, B, T, err, errsz);
    enum { MAX_STEPS = 50 };
    double times[MAX_STEPS], spent = 0;
    int n = 0;
    if (!rc) rig_step(&r, B, T); /* first touch of every buffer: not timed */
    while (!rc && n < MAX_STEPS && (n < 3 || spent < budget_s) && !kiln_stop_signal())
        spent += times[n++] = rig_step(&r, B, T);
    rig_free(&r);
    if (rc) return rc;
    if (n == 0) return kiln_errf(err, errsz, EX_KILN_SOFTWARE, "stopped before a timed step");
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    double med = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    /* the FLOPs of the step that ran: the attention term follows its T */
    double flops_T = p->step_flops - 12.0 * c->cfg.n_layer * (double)(c->T - T) * c->cfg.n_embd;
    *out = (kest_measured){
        .B = B, .T = T, .steps = n, .step_s = med, .reduced = B != c->B || T != c->T};
    out->gflops = flops_T * B * T / med / 1e9;
    out->tokens_per_s = out->reduced ? out->gflops * 1e9 / p->step_flops : (double)B * T / med;
    return 0;
}

/* ---- cost ----------------------------------------------------------------------------------- */

double kest_allreduce_s(const kest_plan *p, int machines, double gbit_s) {
    if (machines < 2 || gbit_s <= 0) return 0;
    double bytes = 4.0 * (double)p->n_trainable;
    return 2.0 * (machines - 1) / machines * bytes / (gbit_s * 1e9 / 8);
}

kest_row kest_cost(const kest_config *c, const kest_plan *p, const kest_hw *hw, int machines,
                   double tokens, double tokens_per_s) {
    kest_row row = {.fits = true};
    double one = tokens_per_s > 0 ? tokens_per_s : hw->tflops * 1e12 * hw->eff / p->step_flops;
    double steps = tokens / machines / ((double)c->B * c->T); /* each machine's */
    row.seconds = tokens / machines / one + (tokens_per_s > 0 ? 0 : steps * hw->step_ms / 1e3);
    row.seconds +=
        steps / (c->accum > 1 ? c->accum : 1) * kest_allreduce_s(p, machines, c->net_gbit_s);
    row.tokens_per_s = tokens / row.seconds;
    row.cost = row.seconds / 3600 * hw->price * machines;
    double cap = hw->mem_gb * 1e9;
    if (cap > 0 && p->mem.total > cap) {
        row.fits = false;
        int lo = 1, hi = c->B - 1; /* memory grows with B: the largest B that fits */
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (kest_memory_at(c, p, mid).total <= cap)
                lo = mid;
            else
                hi = mid - 1;
        }
        row.max_B = hi >= 1 && kest_memory_at(c, p, lo).total <= cap ? lo : 0;
    }
    return row;
}

void kest_fmt_duration(double s, char *buf, size_t n) {
    static const struct {
        double secs;
        const char *unit;
    } units[] = {{365.25 * 86400, "years"}, {86400, "days"}, {3600, "h"}, {60, "min"}, {1, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (s >= units[i].secs * 0.995 || i + 1 == sizeof units / sizeof units[0]) {
            double v = s / units[i].secs;
            snprintf(buf, n, v < 9.95 ? "%.1f %s" : "%.0f %s", v, units[i].unit);
            return;
        }
}

void kest_fmt_bytes(double b, char *buf, size_t n) {
    const char *units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 999.5 && u < 4) b /= 1e3, u++;
    snprintf(buf, n,
             b < 9.95 && u   ? "%.2f %s"
             : b < 99.5 && u ? "%.1f %s"
                             : "%.0f %s",
             b, units[u]);
}

void kest_fmt_count(double v, char *buf, size_t n) {
    const char *units[] = {"", " k", " M", " G", " T"};
    int u = 0;
    while (v >= 9999.5 && u < 4) v /= 1e3, u++;
    snprintf(buf, n, u && v < 99.95 ? "%.1f%s" : "%.0f%s", v, units[u]);
}
