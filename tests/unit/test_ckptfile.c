/* Unit tests of lib/ckpt/store: ckpt records written with kwriter become safetensors files
 * (model + optimizer sibling) that kckpt_load reads back exactly; bad records and
 * damaged files are refused with the file named; a trainer's `state` numbers survive exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ckpt/store.h"
#include "core/util.h"

static char dir[64];

static char *in_dir(const char *name) {
    static char p[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static const float wte[6] = {0.5f, -1, 2, 3, 4, 5}, bias[3] = {0.25f, 0, -0.125f};
static const float m_wte[6] = {1, 1, 1, 1, 1, 1}, v_wte[6] = {2, 2, 2, 2, 2, 2};
static const double kl_coef = 0.035921068616908795, tiny = 4.9e-324; /* a trainer's `state` */

static void put_tensor_map(kwriter *w, const char *key, const char *const *names, const ktensor *t,
                           int n) {
    kw_key(w, key);
    msgpack_pack_map(kw_packer(w), (size_t)n);
    for (int i = 0; i < n; i++) {
        msgpack_pack_str(kw_packer(w), strlen(names[i]));
        msgpack_pack_str_body(kw_packer(w), names[i], strlen(names[i]));
        kw_tensor_value(w, &t[i]);
    }
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* Records: a full ckpt (with optim), a minimal one, one whose tensors are not tensors. */
static void write_records(const char *path) {
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "test", 1);
    kwriter_end(w);
    const char *names[2] = {"transformer.wte.weight", "transformer.ln_f.bias"};
    ktensor t[2] = {ktensor_2d(KT_F32, wte, 2, 3), ktensor_1d(KT_F32, bias, 3)};
    ktensor mv[2] = {ktensor_2d(KT_F32, m_wte, 2, 3), ktensor_2d(KT_F32, v_wte, 2, 3)};

    kwriter_begin(w, "ckpt");
    kw_u64(w, "step", 500);
    kw_key(w, "config");
    msgpack_packer *pk = kw_packer(w);
    msgpack_pack_map(pk, 3);
    pack_cstr(pk, "n_layer"), msgpack_pack_uint64(pk, 2);
    pack_cstr(pk, "head"), pack_cstr(pk, "lm");
    pack_cstr(pk, "dropout"), msgpack_pack_double(pk, 0.1);
    kw_key(w, "tokenizer");
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "kind"), pack_cstr(pk, "bytes");
    pack_cstr(pk, "classes"), msgpack_pack_array(pk, 2), pack_cstr(pk, "cat"),
        pack_cstr(pk, "d\"og");
    kw_u64(w, "cursor", 8000);
    kw_u64(w, "seed", 18446744073709551615ull);
    kw_key(w, "state");
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "kl_coef"), msgpack_pack_double(pk, kl_coef);
    pack_cstr(pk, "tiny"), msgpack_pack_double(pk, tiny);
    put_tensor_map(w, "tensors", names, t, 2);
    kw_key(w, "optim");
    msgpack_pack_map(pk, 4);
    pack_cstr(pk, "step"), msgpack_pack_uint64(pk, 500);
    pack_cstr(pk, "lr"), msgpack_pack_double(pk, 3e-4);
    msgpack_pack_str(pk, 1), msgpack_pack_str_body(pk, "m", 1);
    msgpack_pack_map(pk, 1), pack_cstr(pk, names[0]), kw_tensor_value(w, &mv[0]);
    msgpack_pack_str(pk, 1), msgpack_pack_str_body(pk, "v", 1);
    msgpack_pack_map(pk, 1), pack_cstr(pk, names[0]), kw_tensor_value(w, &mv[1]);
    kwriter_end(w);

    kwriter_begin(w, "ckpt");
    kw_u64(w, "step", 7);
    kw_key(w, "config");
    msgpack_pack_map(pk, 0);
    put_tensor_map(w, "tensors", names + 1, t + 1, 1);
    kwriter_end(w);

    kwriter_begin(w, "ckpt");
    kw_u64(w, "step", 8);
    kw_key(w, "config");
    msgpack_pack_map(pk, 0);
    kw_key(w, "tensors");
    msgpack_pack_map(pk, 1), pack_cstr(pk, "x"), msgpack_pack_uint64(pk, 1);
    kwriter_end(w);
    kwriter_close(w, "ok");
}

static void check_full(const kckpt *ck) {
    uint64_t u = 0;
    CHECK(ck->has_step && ck->step == 500);
    CHECK(ck->has_cursor && ck->cursor == 8000);
    CHECK(ck->has_seed && ck->seed == 18446744073709551615ull);
    CHECK(kckpt_config_u64(ck, "n_layer", &u) && u == 2);
    CHECK(!kckpt_config_u64(ck, "head", &u));
    const jval *head = json_get(ck->config, "head");
    CHECK(head && head->type == JSON_STR && strcmp(head->s, "lm") == 0);
    CHECK(json_num(json_get(ck->config, "dropout")) == 0.1);
    const jval *classes = json_get(ck->tokenizer, "classes");
    CHECK(classes && classes->n == 2 && strcmp(classes->items[1].s, "d\"og") == 0);
    const ktensor *t = kckpt_tensor(ck, "transformer.wte.weight");
    float back[6] = {0};
    CHECK(t && t->dtype == KT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    if (t) ktensor_copy(t, back);
    CHECK(memcmp(back, wte, sizeof wte) == 0);
    CHECK(kckpt_tensor(ck, "transformer.ln_f.bias") != NULL);
    CHECK(st_meta(ck->file, "eval_loss") && strcmp(st_meta(ck->file, "eval_loss"), "2.5") == 0);
    CHECK(strcmp(st_meta(ck->file, "format"), "pt") == 0);
    double d = 0; /* the state's numbers come back to the bit (an exact resume needs them) */
    CHECK(kckpt_state_f64(ck, "kl_coef", &d) && d == kl_coef);
    CHECK(kckpt_state_f64(ck, "tiny", &d) && d == tiny);
    CHECK(!kckpt_state_f64(ck, "absent", &d));
}

static void test_round_trip(void) {
    write_records(in_dir("in.rec"));
    kreader *r = kreader_open(in_dir("in.rec"), 1);
    krec rec;
    char err[600] = "";
    CHECK(kreader_next(r, &rec));
    char *path = ckpt_file_name(dir, 500);
    CHECK(strcmp(path, in_dir("step-000500.safetensors")) == 0);
    CHECK(ckpt_write_record(&rec, path, 2.5, err, sizeof err) == 0);
    CHECK(access(in_dir("step-000500.optim.safetensors"), F_OK) == 0);

    kckpt *ck = NULL;
    CHECK(kckpt_open(path, true, &ck, err, sizeof err) == 0);
    if (ck) {
        check_full(ck);
        CHECK(ck->optim && ck->optim_step == 500 && ck->lr == 3e-4);
        const ktensor *m = kckpt_m(ck, "transformer.wte.weight");
        const ktensor *v = kckpt_v(ck, "transformer.wte.weight");
        CHECK(m && v && ktensor_get(m, 5) == 1 && ktensor_get(v, 0) == 2);
        CHECK(kckpt_m(ck, "transformer.ln_f.bias") == NULL);
        /* The model file holds only the model: no m./v. names. */
        CHECK(st_count(ck->file) == 2);
    }
    kckpt_free(ck);
    ck = kckpt_load(path, false);
    CHECK(ck->optim == NULL && kckpt_m(ck, "transformer.wte.weight") == NULL);
    kckpt_free(ck);

    /* Loading through a symlink finds the optimizer file next to the target. */
    CHECK(symlink("step-000500.safetensors", in_dir("latest.safetensors")) == 0);
    ck = kckpt_load(in_dir("latest.safetensors"), true);
    CHECK(ck->optim != NULL);
    kckpt_free(ck);

    /* Minimal record: no tokenizer, cursor, seed, optim. */
    CHECK(kreader_next(r, &rec));
    free(path);
    path = ckpt_file_name(dir, 7);
    CHECK(ckpt_write_record(&rec, path, NAN, err, sizeof err) == 0);
    ck = kckpt_load(path, true);
    CHECK(ck->step == 7 && !ck->has_cursor && !ck->has_seed && !ck->tokenizer && !ck->optim);
    double d;
    CHECK(!ck->state && !kckpt_state_f64(ck, "kl_coef", &d));
    CHECK(ck->config && ck->config->n == 0 && st_meta(ck->file, "eval_loss") == NULL);
    kckpt_free(ck);

    /* Tensors that are not tensors: refused, nothing written. */
    CHECK(kreader_next(r, &rec));
    free(path);
    path = ckpt_file_name(dir, 8);
    CHECK(ckpt_write_record(&rec, path, NAN, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, path) == err && strstr(err, "non-tensor"));
    CHECK(access(path, F_OK) != 0);
    CHECK(!kreader_next(r, &rec));
    kreader_close(r);
    free(path);
}

static void test_damaged(void) {
    char err[600] = "";
    kckpt *ck = NULL;
    /* Optimizer file gone: the model file promised one. */
    CHECK(rename(in_dir("step-000500.optim.safetensors"), in_dir("moved")) == 0);
    CHECK(kckpt_open(in_dir("step-000500.safetensors"), true, &ck, err, sizeof err) ==
          EX_KILN_DATA);
    CHECK(strstr(err, "optimizer state") != NULL);
    CHECK(kckpt_open(in_dir("step-000500.safetensors"), false, &ck, err, sizeof err) == 0);
    kckpt_free(ck);
    /* Truncated model file. */
    CHECK(truncate(in_dir("step-000500.safetensors"), 100) == 0);
    CHECK(kckpt_open(in_dir("step-000500.safetensors"), false, &ck, err, sizeof err) ==
          EX_KILN_DATA);
    CHECK(strstr(err, in_dir("step-000500.safetensors")) == err);
    CHECK(ck == NULL);
    /* config metadata that is not JSON. */
    float x = 1;
    st_entry t = {"a", ktensor_1d(KT_F32, &x, 1)};
    st_meta_entry m = {"config", "{n_layer: 2}"};
    CHECK(st_write(in_dir("badmeta.safetensors"), &t, 1, &m, 1, err, sizeof err) == 0);
    CHECK(kckpt_open(in_dir("badmeta.safetensors"), false, &ck, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, "config is not a JSON object") != NULL);
    /* A plain HF file (no metadata) loads, everything optional absent. */
    CHECK(st_write(in_dir("hf.safetensors"), &t, 1, NULL, 0, err, sizeof err) == 0);
    CHECK(kckpt_open(in_dir("hf.safetensors"), true, &ck, err, sizeof err) == 0);
    CHECK(ck && !ck->config && !ck->has_step && kckpt_tensor(ck, "a"));
    kckpt_free(ck);
}

static void test_names(void) {
    char *p = ckpt_optim_name("d/step-000500.safetensors");
    CHECK(strcmp(p, "d/step-000500.optim.safetensors") == 0);
    free(p);
    p = ckpt_file_name("d", 12345678);
    CHECK(strcmp(p, "d/step-12345678.safetensors") == 0);
    free(p);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/kiln-ck-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_names();
    test_round_trip();
    test_damaged();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return check_report("ckptfile");
}
