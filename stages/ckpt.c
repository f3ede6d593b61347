/* kiln-ckpt — save ckpt records as safetensors checkpoints; keep the last K and the best. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/adapter.h"
#include "ckpt/ckptdir.h"
#include "ckpt/hf.h"
#include "ckpt/inspect.h"
#include "ckpt/load.h"
#include "ckpt/store.h"
#include "core/util.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "save checkpoints as safetensors files, keeping the last K and the best",
    .usage = "kiln ckpt --dir DIR [--keep K] [--in URL] [--out URL]\n"
             "       kiln ckpt inspect FILE\n"
             "       kiln ckpt merge BASE ADAPTER -o OUT\n"
             "       kiln ckpt export CKPT --hf DIR",
    .text =
        "Each ckpt record becomes DIR/step-NNNNNN.safetensors (model tensors under Hugging Face\n"
        "GPT-2 names; config, tokenizer, step, cursor, seed in __metadata__), plus\n"
        "DIR/step-NNNNNN.optim.safetensors when it carries optimizer state.  Writes are atomic.\n"
        "The eval loss of step S is the `loss` of the last metrics record of stage \"eval\" for\n"
        "step S seen before the ckpt of step S (kiln eval sends them in that order).\n"
        "DIR/latest.safetensors links to the newest checkpoint, DIR/best.safetensors to the one\n"
        "with the lowest eval loss.  LoRA adapters also get PEFT's DIR/adapter_config.json and\n"
        "DIR/adapter_model.safetensors (a link to the newest), for peft.PeftModel.  ckpt\n"
        "records are consumed; a `saved` record {step, path, eval_loss, best} takes their\n"
        "place; every other record passes through.\n",
    .notes =
        "inspect FILE prints a checkpoint's config, tokenizer, step and tensors (name, dtype,\n"
        "shape, CRC-32 of the data) on stdout.\n"
        "merge BASE ADAPTER -o OUT folds a LoRA adapter checkpoint (kiln train --lora) into\n"
        "the base model it was trained on and writes a standalone model; an adapter whose\n"
        "base hash differs from BASE's is refused (exit 65).\n"
        "export CKPT --hf DIR writes a Hugging Face GPT-2 directory (config.json,\n"
        "model.safetensors, and encoder.json + vocab.bpe for a BPE model) for transformers.\n"
        "Any command taking a checkpoint file also takes such a directory (lib/ckpt/hf.h).\n"
        "example:\n"
        "  kiln train --steps 2000 --every 250 < batches.rec | kiln eval --data val.rec \\\n"
        "    | kiln ckpt --dir runs/moby --keep 2 | kiln show\n"
        "  kiln ckpt inspect runs/moby/latest.safetensors\n"
        "  kiln ckpt merge runs/base/best.safetensors runs/lora/latest.safetensors -o "
        "merged.safetensors\n",
};

static const kopt_info INSPECT_HELP = {
    .command = "inspect",
    .about = "print a checkpoint's config, tokenizer, step and tensors",
    .usage = "kiln ckpt inspect FILE",
    .text = "Each tensor with its name, dtype, shape and the CRC-32 of its data, on stdout.\n",
    .notes = "example:\n"
             "  kiln ckpt inspect runs/moby/latest.safetensors\n",
    .max_args = 2,
};

static const kopt_info MERGE_HELP = {
    .command = "merge",
    .about = "fold a LoRA adapter checkpoint into its base model",
    .usage = "kiln ckpt merge BASE ADAPTER -o OUT",
    .text = "ADAPTER was trained with kiln train --lora on BASE; OUT is a standalone model.  An\n"
            "adapter whose base hash differs from BASE's is refused (exit 65).\n",
    .notes = "example:\n"
             "  kiln ckpt merge runs/base/best.safetensors runs/lora/latest.safetensors -o "
             "merged.safetensors\n",
    .max_args = 3,
};

static const kopt_info EXPORT_HELP = {
    .command = "export",
    .about = "write a checkpoint as a Hugging Face GPT-2 directory",
    .usage = "kiln ckpt export CKPT --hf DIR",
    .text = "DIR/config.json (GPT2LMHeadModel's config), DIR/model.safetensors (transformer.*\n"
            "names, Conv1D layouts, the head tied to wte; kiln's config and tokenizer in\n"
            "__metadata__ too) and, for a BPE model, DIR/encoder.json and DIR/vocab.bpe.\n"
            "transformers loads it with GPT2LMHeadModel.from_pretrained(DIR); kiln reads DIR\n"
            "wherever it reads a checkpoint.  CKPT may be a file or such a directory.\n",
    .notes = "example:\n"
             "  kiln ckpt export runs/moby/best.safetensors --hf runs/moby-hf\n"
             "  kiln sample --ckpt runs/moby-hf --prompt ' The whale'\n",
    .max_args = 2,
};

static int inspect_command(int argc, char **argv) {
    kopt rows[] = {KOPT_END()};
    if (kopt_parse(&INSPECT_HELP, rows, argc, argv) != 2)
        kiln_usage_error("inspect wants one FILE");
    kckpt *ck = kckpt_load(argv[2], true);
    kckpt_inspect(stdout, argv[2], ck);
    kckpt_free(ck);
    if (fflush(stdout) != 0 && errno != EPIPE)
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    return EX_KILN_OK;
}

/* ---- merge ------------------------------------------------------------------------------ */

static int merge(int argc, char **argv) {
    const char *out = NULL;
    kopt rows[] = {
        KOPT_STRING('o', "out", &out, "OUT", "the merged model's file", .flags = KOPT_REQUIRED),
        KOPT_END(),
    };
    if (kopt_parse(&MERGE_HELP, rows, argc, argv) != 3)
        kiln_usage_error("merge wants BASE ADAPTER -o OUT");
    const char *base = argv[2], *adapter = argv[3];
    kpool *pool = kpool_create(0);
    kmodel km;
    kmodel_from_file(&km, base, pool);
    kadapter ad;
    kadapter_open(&ad, adapter);
    gpt *m = kadapter_apply(&ad, km.m);
    km.m = NULL;
    const char *tok = st_meta(ad.ck->file, "tokenizer");
    kadapter_write_model(m, tok, ad.step, out);
    if (ad.rows)
        fprintf(stderr, "%s: %s + %s (new rows from token %d) -> %s\n", kiln_prog(), base, adapter,
                ad.first_row, out);
    else
        fprintf(stderr, "%s: %s + %s (r %d, alpha %g) -> %s\n", kiln_prog(), base, adapter,
                ad.cfg.r, (double)ad.cfg.alpha, out);
    gpt_free(m);
    kadapter_free(&ad);
    kmodel_free(&km);
    kpool_free(pool);
    return EX_KILN_OK;
}

/* ---- export ------------------------------------------------------------------------------ */

static int export_hf(int argc, char **argv) {
    const char *dir = NULL;
    kopt rows[] = {
        KOPT_STRING(0, "hf", &dir, "DIR", "the Hugging Face directory (created if missing)",
                    .flags = KOPT_REQUIRED),
        KOPT_END(),
    };
    if (kopt_parse(&EXPORT_HELP, rows, argc, argv) != 2)
        kiln_usage_error("export wants CKPT --hf DIR");
    kpool *pool = kpool_create(1);
    kmodel km;
    kmodel_from_file(&km, argv[2], pool);
    char err[600];
    int rc = khf_export(km.m, km.has_tok ? &km.tok : NULL, dir, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    fprintf(stderr, "%s: %s -> %s (config.json, model.safetensors%s)\n", kiln_prog(), argv[2], dir,
            km.has_tok && km.tok.kind == KTOK_BPE ? ", encoder.json, vocab.bpe" : "");
    kmodel_free(&km);
    kpool_free(pool);
    return EX_KILN_OK;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    kiln_cli cli;
    const char *dir = NULL;
    uint64_t keep = 3;
    kiln_cli_init(&cli, argc, argv, HELP);
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0) return inspect_command(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "merge") == 0) return merge(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "export") == 0) return export_hf(argc, argv);
    kopt rows[] = {
        KOPT_STRING('d', "dir", &dir, "DIR", "where checkpoints go (created if missing)",
                    .flags = KOPT_REQUIRED),
        KOPT_U64('k', "keep", &keep, "K", 0, UINT64_MAX,
                 "keep the K newest checkpoints, plus the best (default 3; 0 keeps all)"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    if (!*dir) kiln_usage_error("--dir wants a directory, not ''");
    kckptdir s;
    kckptdir_open(&s, dir, keep);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    char schema[64] = "";
    uint64_t seed = 0;
    kobj_cstr(krec_get(hdr, "schema"), schema, sizeof schema);
    krec_u64(hdr, "seed", &seed);
    kwriter_hdr_begin(w, hdr, schema, seed);
    kwriter_end(w);
    krec rec;
    while (kreader_next(r, &rec)) {
        if (krec_is(&rec, "ckpt"))
            kckptdir_save(&s, &rec, kreader_name(r), w);
        else {
            if (krec_is(&rec, "metrics")) kckptdir_metrics(&s, &rec);
            kwriter_pass(w, &rec);
        }
        if (kiln_stop_now() || kwriter_gone(w)) break;
    }
    kckptdir_close(&s);
    kiln_finish(r, w);
}