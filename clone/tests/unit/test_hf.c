/* test_hf — Hugging Face GPT-2 in and out without PyTorch: config.json through
 * kcfg_from_hf (and its refusals), a model and BPE tokenizer exported with khf_export and
 * opened back as a checkpoint directory (same config, tensors, tokenizer), PEFT's
 * adapter_config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ckpt/config.h"
#include "ckpt/hf.h"
#include "ckpt/load.h"
#include "ckpt/store.h"
#include "core/util.h"

static char err[600];

static int from(const char *json, gpt_config *c) {
    jval *j = json_parse(json, strlen(json), 8, NULL, 0);
    int rc = kcfg_from_hf(j, c, "config.json", err, sizeof err);
    json_free(j);
    return rc;
}

static void config(void) {
    gpt_config c;
    CHECK(from("{\"n_layer\":12,\"n_embd\":768,\"n_head\":12,\"n_positions\":1024,"
               "\"vocab_size\":50257,\"layer_norm_epsilon\":1e-05,\"activation_function\":"
               "\"gelu_new\",\"n_inner\":null,\"model_type\":\"gpt2\"}",
               &c) == 0);
    CHECK(c.n_layer == 12 && c.n_embd == 768 && c.n_head == 12 && c.n_ctx == 1024 &&
          c.vocab == 50257 && c.head == GPT_HEAD_LM);
    CHECK(from("{\"n_layer\":2,\"n_embd\":8,\"n_head\":2,\"n_positions\":16}", &c) == 65 &&
          strstr(err, "config.json: vocab_size is missing"));
    CHECK(from("{\"n_layer\":2,\"n_embd\":8,\"n_head\":2,\"n_positions\":16,\"vocab_size\":9,"
               "\"layer_norm_epsilon\":1e-6}",
               &c) == 65 &&
          strstr(err, "layer_norm_epsilon 1e-06"));
    CHECK(from("{\"n_layer\":2,\"n_embd\":8,\"n_head\":2,\"n_positions\":16,\"vocab_size\":9,"
               "\"activation_function\":\"relu\"}",
               &c) == 65 &&
          strstr(err, "activation_function relu"));
    CHECK(from("{\"n_layer\":2,\"n_embd\":8,\"n_head\":3,\"n_positions\":16,\"vocab_size\":9}",
               &c) == 65 &&
          strstr(err, "multiple of heads"));
    CHECK(from("{\"n_layer\":0,\"n_embd\":8,\"n_head\":2,\"n_positions\":16,\"vocab_size\":9}",
               &c) == 65 &&
          strstr(err, "layers must be 1..80 (n_layer 0"));
    /* what kcfg_hf_json writes reads back */
    gpt_config w = {3, 16, 4, 32, 300, GPT_HEAD_LM};
    char buf[1024];
    kcfg_hf_json(&w, 299, buf, sizeof buf);
    CHECK(from(buf, &c) == 0 && c.n_layer == 3 && c.n_embd == 16 && c.n_head == 4 &&
          c.n_ctx == 32 && c.vocab == 300);
}

static void export_and_back(void) {
    kbpe_learner *l = kbpe_learner_new();
    const char *text = "the cat sat on the mat and the cat ate the rat, the end. the end.";
    for (int i = 0; i < 4; i++) kbpe_learner_add(l, (const uint8_t *)text, strlen(text));
    kbpe *b = kbpe_learn(l, 280, NULL, 0, err, sizeof err);
    kbpe_learner_free(l);
    CHECK(b != NULL);
    if (!b) return;
    ktokenizer tok;
    ktok_init_bpe(&tok, b);
    gpt_config c = {2, 16, 2, 8, (int)tok.vocab, GPT_HEAD_LM};
    kpool *pool = kpool_create(1);
    gpt *m = gpt_create(&c, pool, 3);
    char dir[] = "/tmp/kiln-hf-XXXXXX", sub[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sub, sizeof sub, "%s/hf", dir);
    CHECK(khf_export(m, &tok, sub, err, sizeof err) == 0);
    kmodel km;
    kmodel_from_file(&km, sub, pool);
    CHECK(km.has_tok && ktok_same(&km.tok, &tok));
    CHECK(km.m->cfg.n_layer == 2 && km.m->cfg.n_embd == 16 && km.m->cfg.vocab == (int)tok.vocab);
    CHECK(km.m->n_params == m->n_params &&
          memcmp(km.m->params, m->params, m->n_params * sizeof(float)) == 0);
    kmodel_free(&km);
    /* the tokenizer files alone (no kiln metadata needed): kbpe_load reads them */
    kbpe *again = kbpe_load(sub, err, sizeof err);
    CHECK(again && kbpe_hash(again) == kbpe_hash(tok.bpe));
    kbpe_free(again);
    lora_config lc = {
        .r = 4, .alpha = 8, .dropout = 0.5f, .targets = 1u << LORA_QKV | 1u << LORA_FC};
    CHECK(khf_peft_config(sub, &lc, err, sizeof err) == 0);
    char path[128], body[1024] = "";
    snprintf(path, sizeof path, "%s/adapter_config.json", sub);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        size_t n = fread(body, 1, sizeof body - 1, f);
        body[n] = 0;
        fclose(f);
    }
    CHECK(strstr(body, "\"r\": 4,") && strstr(body, "\"lora_alpha\": 8,") &&
          strstr(body, "\"target_modules\": [\"attn.c_attn\", \"mlp.c_fc\"]") &&
          strstr(body, "\"fan_in_fan_out\": true"));
    const char *names[] = {"adapter_config.json", "config.json", "model.safetensors",
                           "encoder.json", "vocab.bpe"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", sub, names[i]);
        CHECK(unlink(path) == 0);
    }
    rmdir(sub), rmdir(dir);
    gpt_free(m);
    kpool_free(pool);
    ktok_free(&tok);
}

int main(void) {
    config();
    export_and_back();
    return check_report("hf");
}
