/* kiln-train — batches in, a trained model out: metrics and ckpt records. */
#include "run/engine.h"
#include "run/lm.h"
#include "stream/cli.h"

static const char HELP[] =
    "kiln-train — train a GPT on batch records; write metrics and ckpt records\n"
    "usage: kiln train [--model PRESET | --layers N --dim N --heads N --ctx N] [--steps N]\n"
    "                  [--lr X] [--warmup N] [--accum N] [--every N] [--init FILE] ...\n"
    "  --model PRESET    tiny (2 layers, 64 wide, 4 heads), small (4, 256, 4),\n"
    "                    char (6, 384, 6); context 256 (default small)\n"
    "  --layers N, --dim N, --heads N, --ctx N   set or override the shape\n"
    "  --steps N         stop after optimizer step N (default: when the input ends);\n"
    "                    the cosine schedule decays to lr/10 at step N\n"
    "  --lr X            peak learning rate (default 1e-3)\n"
    "  --warmup N        linear warm-up steps (default min(100, steps/10))\n"
    "  --accum N         batches per optimizer step: gradient accumulation (default 1)\n"
    "  --seed N          initialisation seed (default: the hdr's seed)\n"
    "  --log-every N     a metrics record every N steps (default 10)\n"
    "  --every N         a ckpt record every N steps (default 0: only at the end)\n"
    "  --init FILE       start from a safetensors checkpoint (kiln ckpt writes them): its\n"
    "                    weights, optimizer state and step; its shape unless given\n"
    "  --threads N       threads (default $KILN_THREADS or all CPUs)\n"
    "fine-tuning (--init is then a pretrained base: its weights only, step 0, fresh AdamW,\n"
    "default lr 3e-4 (LoRA 1e-3) and warm-up steps/20; docs/stages-finetune.md):\n"
    "  --finetune        full fine-tuning of every tensor\n"
    "  --freeze SPEC     freeze tensors: embeddings, wte, wpe, ln_f, blocks:A-B,\n"
    "                    all-but-head, or tensor names / module prefixes, comma-separated;\n"
    "                    frozen tensors cost no weight-gradient work and hold no AdamW state\n"
    "  --lora SPEC       train only low-rank adapters: r=8,alpha=16,targets=qkv,proj,fc,\n"
    "                    fcproj[,dropout=0.05]; ckpt records then carry just the adapters\n"
    "                    and the base's hash (kiln ckpt merge folds them in)\n"
    "  --train SPEC      with --lora: these tensors train too (--freeze's syntax, e.g.\n"
    "                    ln_f,blocks:5) and travel in the adapter checkpoint\n"
    "  --add-class NAME[=FROM]  a new class token, its embedding row copied from class\n"
    "                    FROM (default: the mean of the class rows); repeatable; the\n"
    "                    stream must be tokenized with the base's classes plus NAME\n"
    "  --save-start      a ckpt record of the model as it starts (step 0, after\n"
    "                    --add-class), so kiln eval measures it before fine-tuning\n"
    "AdamW (betas 0.9, 0.95, eps 1e-8, weight decay 0.1 on matrices), gradients clipped to\n"
    "global norm 1.  The vocabulary comes from the hdr's tokenizer.  metrics: step, loss\n"
    "(mean over the steps since the last record), lr, grad_norm, tokens_per_s, elapsed_s,\n"
    "optim_bytes (the AdamW moments held).\n"
    "ckpt: config, tokenizer, step, cursor (resume data with kiln load --skip CURSOR),\n"
    "seed, tensors (Hugging Face GPT-2 names), optim.  SIGINT/SIGTERM: the step finishes,\n"
    "a final ckpt goes out, then eos interrupted.  A NaN/Inf loss or gradient stops the run\n"
    "(exit 65) after the last good ckpt, naming the step and the tensor.\n"
    "Records other than batch pass through.\n" KILN_CLI_HELP "example:\n"
    "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes \\\n"
    "    | kiln batch -B 8 -T 256 --pack | kiln train --model small --steps 50 | kiln show\n";

static void parse_options(int argc, char **argv, kiln_cli *cli, kengine_opts *o) {
    enum {
        O_MODEL = 1,
        O_LAYERS,
        O_DIM,
        O_HEADS,
        O_CTX,
        O_STEPS,
        O_LR,
        O_WARMUP,
        O_ACCUM,
        O_SEED,
        O_LOG,
        O_EVERY,
        O_INIT,
        O_THREADS,
        O_FINETUNE,
        O_FREEZE,
        O_LORA,
        O_ADD_CLASS,
        O_SAVE_START,
        O_TRAIN
    };
    static const struct option opts[] = {{"model", 1, 0, O_MODEL},
                                         {"layers", 1, 0, O_LAYERS},
                                         {"dim", 1, 0, O_DIM},
                                         {"heads", 1, 0, O_HEADS},
                                         {"ctx", 1, 0, O_CTX},
                                         {"steps", 1, 0, O_STEPS},
                                         {"lr", 1, 0, O_LR},
                                         {"warmup", 1, 0, O_WARMUP},
                                         {"accum", 1, 0, O_ACCUM},
                                         {"seed", 1, 0, O_SEED},
                                         {"log-every", 1, 0, O_LOG},
                                         {"every", 1, 0, O_EVERY},
                                         {"init", 1, 0, O_INIT},
                                         {"threads", 1, 0, O_THREADS},
                                         {"finetune", 0, 0, O_FINETUNE},
                                         {"freeze", 1, 0, O_FREEZE},
                                         {"lora", 1, 0, O_LORA},
                                         {"add-class", 1, 0, O_ADD_CLASS},
                                         {"save-start", 0, 0, O_SAVE_START},
                                         {"train", 1, 0, O_TRAIN},
                                         KILN_CLI_LONGOPTS,
                                         {0, 0, 0, 0}};
    kengine_opts_init(o);
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (opt) {
        case O_MODEL:
            o->preset = optarg;
            break;
        case O_LAYERS:
            o->layers = (int)opt_u64(name, optarg);
            break;
        case O_DIM:
            o->dim = (int)opt_u64(name, optarg);
            break;
        case O_HEADS:
            o->heads = (int)opt_u64(name, optarg);
            break;
        case O_CTX:
            o->ctx = (int)opt_u64(name, optarg);
            break;
        case O_STEPS:
            o->steps = opt_u64(name, optarg);
            break;
        case O_LR:
            o->lr = opt_f64(name, optarg), o->have_lr = true;
            break;
        case O_WARMUP:
            o->warmup = opt_u64(name, optarg), o->have_warmup = true;
            break;
        case O_ACCUM:
            o->accum = opt_u64(name, optarg);
            break;
        case O_SEED:
            o->seed = opt_u64(name, optarg), o->have_seed = true;
            break;
        case O_LOG:
            o->log_every = opt_u64(name, optarg);
            break;
        case O_EVERY:
            o->every = opt_u64(name, optarg);
            break;
        case O_INIT:
            o->init = optarg;
            break;
        case O_THREADS:
            o->threads = (int)opt_u64(name, optarg);
            break;
        case O_FINETUNE:
            o->finetune = true;
            break;
        case O_SAVE_START:
            o->save_start = true;
            break;
        case O_TRAIN:
            o->train = optarg;
            break;
        case O_FREEZE:
            o->freeze = optarg, o->finetune = true;
            break;
        case O_LORA:
            o->lora = optarg, o->finetune = true;
            break;
        case O_ADD_CLASS: {
            char err[256];
            if (o->n_add == KENGINE_MAX_NEW_CLASSES)
                kiln_usage_error("at most %d --add-class", KENGINE_MAX_NEW_CLASSES);
            if (!ft_new_class_parse(optarg, &o->add[o->n_add++], err, sizeof err))
                kiln_usage_error("%s", err);
            o->finetune = true;
            break;
        }
        default:
            if (!kiln_cli_option(cli, opt, optarg)) kiln_usage_error("unknown option");
        }
    }
    if (optind < argc) kiln_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->accum < 1 || o->accum > 65536) kiln_usage_error("--accum must be 1..65536");
    if (o->log_every < 1) kiln_usage_error("--log-every must be at least 1");
    if (!(o->lr > 0 && o->lr < 10)) kiln_usage_error("--lr must be in (0, 10)");
    if (o->threads < 0 || o->threads > 1024) kiln_usage_error("--threads must be 0..1024");
    char err[256];
    if (kengine_opts_resolve(o, err, sizeof err)) kiln_usage_error("%s", err);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kengine_opts o;
    parse_options(argc, argv, &cli, &o);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kobjective lm = klm_objective();
    kengine *e = kengine_open(&o, &lm, kreader_hdr(r), w);
    char err[512];
    int rc = kengine_run(e, r, err, sizeof err);
    kengine_free(e);
    if (rc) kiln_fail(r, w, rc, err);
    kiln_finish(r, w);
}
