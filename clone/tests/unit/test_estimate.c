/* test_estimate — kiln estimate's plan (parameters, FLOPs, memory, fine-tuning), the
 * hardware table (rows, overrides, bad rows and files), the FMA widths, the cost of a run,
 * and a measured step of a tiny model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "model/gpt.h"
#include "run/estimate.h"

static kest_config tiny(void) {
    return (kest_config){
        .cfg = {.n_layer = 2, .n_embd = 64, .n_head = 4, .n_ctx = 64, .vocab = 259},
        .B = 4,
        .T = 32,
        .threads = 2};
}

static void test_plan_matches_the_model(void) {
    kest_config c = tiny();
    kest_plan p;
    char err[512];
    CHECK(kest_plan_make(&c, &p, err, sizeof err) == 0);
    kpool *pool = kpool_create(1);
    gpt *m = gpt_create(&c.cfg, pool, 1);
    CHECK(p.n_params == m->n_params);
    CHECK(p.n_trainable == m->n_params);
    CHECK(p.model_flops == gpt_flops_per_token(&c.cfg, c.T));
    CHECK(p.step_flops == p.model_flops);
    /* GPT-2 124M: the well-known 124,439,808 parameters (tied head) */
    kest_config g = {
        .cfg = {.n_layer = 12, .n_embd = 768, .n_head = 12, .n_ctx = 1024, .vocab = 50257},
        .B = 1,
        .T = 1024,
        .threads = 2};
    kest_plan gp;
    CHECK(kest_plan_make(&g, &gp, err, sizeof err) == 0);
    CHECK(gp.n_params == 124439808);
    /* weights and gradients 4 bytes each a parameter, AdamW two moments */
    CHECK(gp.mem.weights == 4.0 * 124439808 && gp.mem.grads == gp.mem.weights);
    CHECK(gp.mem.optim == 2 * gp.mem.weights);
    CHECK_NEAR(gp.mem.total, gp.mem.weights + gp.mem.grads + gp.mem.optim + gp.mem.acts, 1e-12);
    /* activations: 16 LNC floats for the blocks and N x V logits dominate */
    double LNC = 12.0 * 1024 * 768, NV = 1024.0 * 50257;
    CHECK(gp.mem.acts > 4 * (16 * LNC + NV) && gp.mem.acts < 4 * (16 * LNC + NV) * 1.3);
    /* activations grow with B, the rest does not */
    kest_memory m2 = kest_memory_at(&g, &gp, 2);
    CHECK(m2.weights == gp.mem.weights && m2.acts > 1.9 * gp.mem.acts);
    gpt_free(m);
    kpool_free(pool);
}

static void test_plan_finetune(void) {
    kest_config c = tiny();
    kest_plan full, frozen, lora, lora_train;
    char err[512];
    CHECK(kest_plan_make(&c, &full, err, sizeof err) == 0);
    c.freeze = "embeddings,blocks:0";
    CHECK(kest_plan_make(&c, &frozen, err, sizeof err) == 0);
    size_t C = 64, block = 12 * C * C + 13 * C, emb = (259 + 64) * C;
    CHECK(frozen.n_trainable == full.n_params - emb - block);
    CHECK(frozen.low_layer == 1);
    /* block 0 does no backward at all; the head's weight gradient goes with wte */
    CHECK(frozen.step_flops < full.step_flops - 2.0 * 259 * 64);
    CHECK(frozen.mem.optim == 8.0 * frozen.n_trainable);
    c.freeze = NULL;
    c.lora = "r=4,targets=all";
    CHECK(kest_plan_make(&c, &lora, err, sizeof err) == 0);
    size_t adapters = 2 * 4 * ((C + 3 * C) + (C + C) + (C + 4 * C) + (4 * C + C));
    CHECK(lora.n_lora == adapters && lora.n_trainable == adapters);
    CHECK(lora.low_layer == 0 && lora.step_flops < full.step_flops && lora.mem.lora > 0);
    c.train = "ln_f";
    CHECK(kest_plan_make(&c, &lora_train, err, sizeof err) == 0);
    CHECK(lora_train.n_trainable == adapters + 2 * C);
    c.lora = "r=x";
    CHECK(kest_plan_make(&c, &lora, err, sizeof err) == EX_KILN_USAGE && strstr(err, "--lora"));
    c.lora = NULL, c.train = NULL, c.freeze = "blocks:9";
    CHECK(kest_plan_make(&c, &frozen, err, sizeof err) == EX_KILN_USAGE);
    c.freeze = NULL, c.T = 65;
    CHECK(kest_plan_make(&c, &frozen, err, sizeof err) == EX_KILN_USAGE && strstr(err, "-T"));
    c.T = 32, c.cfg.n_head = 5;
    CHECK(kest_plan_make(&c, &frozen, err, sizeof err) == EX_KILN_USAGE);
}

static void test_hardware_rows(void) {
    kest_hw_table t = {0};
    char err[512];
    CHECK(kest_hw_add(&t, "name=h100,tflops=989,eff=0.4,mem=80,price=3,step_ms=5", err,
                      sizeof err) == 0);
    CHECK(kest_hw_find(&t, "h100")->step_ms == 5);
    CHECK(kest_hw_add(&t, "name=box tflops=1.5", err, sizeof err) == 0);
    CHECK(t.n == 2 && kest_hw_find(&t, "box")->eff == 0.4 && kest_hw_find(&t, "box")->price == 0);
    CHECK(kest_hw_add(&t, "name=h100,price=2.5", err, sizeof err) == 0); /* override */
    kest_hw *h = kest_hw_find(&t, "h100");
    CHECK(t.n == 2 && h->price == 2.5 && h->tflops == 989 && h->mem_gb == 80);
    const char *bad[] = {"name=x",
                         "tflops=3",
                         "name=x,tflops=-1",
                         "name=x,tflops=0",
                         "name=x,tflops=nan",
                         "name=x,tflops=inf",
                         "name=x,tflops=1,eff=1.5",
                         "name=x,tflops=1,eff=0",
                         "name=x,tflops=1,price=-2",
                         "name=x,tflops=1,speed=3",
                         "name=x,tflops",
                         "name=a/b,tflops=1",
                         "name=h100,eff=abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(kest_hw_add(&t, bad[i], err, sizeof err) == EX_KILN_USAGE && err[0]);
    }
    CHECK(t.n == 2 && h->eff == 0.4);
    CHECK(kest_hw_add(&t, "name=x,tflops=1,prise=2", err, sizeof err) && strstr(err, "price"));

    char path[] = "/tmp/kiln-test-hw.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# a comment\nname=cpu tflops=0.2 eff=0.8 # trailing\n\nname=gpu,tflops=100\n", f);
    fclose(f);
    CHECK(kest_hw_load(&t, path, err, sizeof err) == 0);
    CHECK(t.n == 4 && kest_hw_find(&t, "cpu")->eff == 0.8 && kest_hw_find(&t, "gpu"));
    f = fopen(path, "w");
    fputs("name=ok tflops=1\nname=bad tflops=-3\n", f);
    fclose(f);
    CHECK(kest_hw_load(&t, path, err, sizeof err) == EX_KILN_DATA);
    char want[600];
    snprintf(want, sizeof want, "%s:2: ", path);
    CHECK(strncmp(err, want, strlen(want)) == 0);
    unlink(path);
    CHECK(kest_hw_load(&t, path, err, sizeof err) == EX_KILN_IO && strstr(err, path));
    kest_hw_free(&t);
}

static void test_fma_widths(void) {
    const char *isa;
    CHECK(kest_cpu_flops_per_cycle(true, true, true, 0x19, &isa) == 32); /* Zen 4 */
    CHECK(kest_cpu_flops_per_cycle(true, true, true, 0x1a, &isa) == 64); /* Zen 5 */
    CHECK(kest_cpu_flops_per_cycle(true, true, false, 6, &isa) == 64);   /* Intel AVX-512 */
    CHECK(kest_cpu_flops_per_cycle(false, true, false, 6, &isa) == 32);  /* AVX2 + FMA */
    CHECK(kest_cpu_flops_per_cycle(false, false, false, 6, &isa) == 8 && isa);
    kest_cpu cpu;
    kest_cpu_measure(&cpu, 1);
    CHECK(cpu.cores == 1 && cpu.ghz > 0.2 && cpu.ghz < 8 && cpu.mem_gb > 0);
    CHECK_NEAR(cpu.peak_gflops, cpu.ghz * cpu.flops_per_cycle, 1e-12);
}

static void test_cost(void) {
    kest_config c = tiny();
    kest_plan p;
    char err[512];
    CHECK(kest_plan_make(&c, &p, err, sizeof err) == 0);
    kest_hw h = {.name = "g", .tflops = 10, .eff = 0.5, .mem_gb = 1, .price = 2};
    kest_row r = kest_cost(&c, &p, &h, 1, 1e9, 0);
    CHECK_NEAR(r.tokens_per_s, 5e12 / p.step_flops, 1e-12);
    CHECK_NEAR(r.seconds, 1e9 * p.step_flops / 5e12, 1e-12);
    CHECK_NEAR(r.cost, r.seconds / 3600 * 2, 1e-12);
    CHECK(r.fits);
    kest_row r4 = kest_cost(&c, &p, &h, 4, 1e9, 0); /* 4 machines: a quarter of the time */
    CHECK_NEAR(r4.seconds, r.seconds / 4, 1e-12);
    CHECK_NEAR(r4.cost, r.cost, 1e-12);
    CHECK_NEAR(kest_cost(&c, &p, &h, 1, 1e6, 1000).seconds, 1000, 1e-12); /* measured rate */
    h.step_ms = 5; /* a fixed cost per step of B x T = 128 tokens */
    CHECK_NEAR(kest_cost(&c, &p, &h, 1, 1e9, 0).seconds, r.seconds + 1e9 / 128 * 5e-3, 1e-12);
    CHECK_NEAR(kest_cost(&c, &p, &h, 4, 1e9, 0).seconds, (r.seconds + 1e9 / 128 * 5e-3) / 4, 1e-12);
    h.step_ms = 0;
    /* 4 machines on 10 Gbit/s: each of the 1e9 / 4 / 128 steps adds 2 x 3/4 x the gradient
     * bytes over 1.25e9 bytes/s; --accum 2 halves the all-reduces */
    double ring = 1.5 * 4.0 * (double)p.n_trainable / 1.25e9;
    CHECK_NEAR(kest_allreduce_s(&p, 4, 10), ring, 1e-15);
    CHECK(kest_allreduce_s(&p, 1, 10) == 0);
    c.net_gbit_s = 10;
    CHECK_NEAR(kest_cost(&c, &p, &h, 4, 1e9, 0).seconds, r.seconds / 4 + 1e9 / 4 / 128 * ring,
               1e-9);
    c.accum = 2;
    CHECK_NEAR(kest_cost(&c, &p, &h, 4, 1e9, 0).seconds, r.seconds / 4 + 1e9 / 4 / 256 * ring,
               1e-9);
    CHECK_NEAR(kest_cost(&c, &p, &h, 1, 1e9, 0).seconds, r.seconds, 1e-12); /* one machine */
    c.net_gbit_s = 0, c.accum = 0;
    /* too small a memory: it says which batch would fit */
    kest_config big = c;
    big.B = 64;
    CHECK(kest_plan_make(&big, &p, err, sizeof err) == 0);
    h.mem_gb = kest_memory_at(&big, &p, 16).total / 1e9;
    r = kest_cost(&big, &p, &h, 1, 1e9, 0);
    CHECK(!r.fits && r.max_B == 16);
    h.mem_gb = kest_memory_at(&big, &p, 16).total / 1e9 * 0.999;
    CHECK(kest_cost(&big, &p, &h, 1, 1e9, 0).max_B == 15);
    h.mem_gb = 1e-6;
    r = kest_cost(&big, &p, &h, 1, 1e9, 0);
    CHECK(!r.fits && r.max_B == 0);
}

static void test_formats(void) {
    char b[32];
    kest_fmt_duration(42, b, sizeof b);
    CHECK(!strcmp(b, "42 s"));
    kest_fmt_duration(90, b, sizeof b);
    CHECK(!strcmp(b, "1.5 min"));
    kest_fmt_duration(7.2 * 3600, b, sizeof b);
    CHECK(!strcmp(b, "7.2 h"));
    kest_fmt_duration(3 * 86400 * 365.25, b, sizeof b);
    CHECK(!strcmp(b, "3.0 years"));
    kest_fmt_bytes(1.27e9, b, sizeof b);
    CHECK(!strcmp(b, "1.27 GB"));
    kest_fmt_count(22010, b, sizeof b);
    CHECK(!strcmp(b, "22.0 k"));
    kest_fmt_count(830, b, sizeof b);
    CHECK(!strcmp(b, "830"));
}

static void test_measure(void) {
    kest_config c = tiny();
    kest_plan p;
    kest_measured me;
    char err[512];
    CHECK(kest_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK(kest_measure(&c, &p, 0.05, 50, &me, err, sizeof err) == 0);
    CHECK(me.steps >= 3 && !me.reduced && me.B == 4 && me.T == 32);
    CHECK_NEAR(me.tokens_per_s, 4 * 32 / me.step_s, 1e-9);
    CHECK_NEAR(me.gflops, me.tokens_per_s * p.step_flops / 1e9, 1e-9);
    /* a slow guess shrinks the batch and scales the rate back by FLOPs */
    c.B = 16;
    CHECK(kest_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK(kest_measure(&c, &p, 0.05, 1e-3, &me, err, sizeof err) == 0);
    CHECK(me.reduced && me.B == 1 && me.T == 32 && me.tokens_per_s > 0);
    /* LoRA steps run */
    c.lora = "r=2";
    CHECK(kest_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK(kest_measure(&c, &p, 0.05, 50, &me, err, sizeof err) == 0 && me.steps >= 3);
}

int main(void) {
    kiln_set_prog("test_estimate");
    test_plan_matches_the_model();
    test_plan_finetune();
    test_hardware_rows();
    test_fma_widths();
    test_cost();
    test_formats();
    test_measure();
    return check_report("test_estimate");
}
