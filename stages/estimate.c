/* kiln-estimate — how long a training run takes, on what hardware, for how much. */
#include "run/estreport.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "estimate a training run's memory, time and cost on this machine and others",
    .usage = "kiln estimate [--model PRESET | --layers N --dim N --heads N --ctx N] [-B N] [-T N]\n"
             "                     (--tokens X | --steps N) [--lora SPEC | --freeze SPEC]\n"
             "                     [--hw name=...,tflops=...,eff=...,mem=...,price=...] ...",
    .notes =
        "Prints parameters, the memory kiln train holds (weights, gradients, AdamW moments,\n"
        "activations at -B x -T), FLOPs per token (6N + 12LTC, as kiln train counts them), then\n"
        "a table: this machine, measured by a few real training steps of the same configuration\n"
        "(tokens/s and the share of its FP32 FMA peak), and the rows of the hardware table\n"
        "(share/kiln/hardware.txt: peak, efficiency, memory, price per hour; each row's source\n"
        "is in the file).  A row that cannot hold the run says what would fit.\n"
        "Exit codes: 2 for bad options (unknown hardware, a nonsense number, a run that fits on\n"
        "none of the --on hardware), 65 for a bad hardware file row, 74 for an unreadable file.\n"
        "examples:\n"
        "  kiln estimate --model small --tokens 2e8\n"
        "  kiln estimate --layers 12 --dim 768 --heads 12 --ctx 1024 --vocab 50257 -B 8 \\\n"
        "    --tokens 1e10 --on h100,a100 --machines 8\n",
};

static bool hw_option(void *dest, const char *arg, char *err, size_t errsz) {
    kest_opts *o = dest;
    if (o->n_hw == (int)(sizeof o->hw / sizeof o->hw[0]))
        return kiln_errf(err, errsz, 0, "at most %zu rows", sizeof o->hw / sizeof o->hw[0]);
    o->hw[o->n_hw++] = arg;
    return true;
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kest_opts o = {.B = 8, .vocab = 259, .machines = 1, .measure = 3, .net = 10};
    kengine_opts_init(&o.e);
    kopt rows[] = {
        KENGINE_OPTIONS(&o.e),
        KOPT_GROUP("the run"),
        KOPT_INT('B', "batch", &o.B, "N", 1, 1 << 20, "rows per micro-batch (default 8)"),
        KOPT_INT('T', "seq", &o.T, "N", 1, 65536, "tokens per row (default: the context)"),
        KOPT_DOUBLE(0, "tokens", &o.tokens, "X", 0, 1e18,
                    "tokens to train on, e.g. 2e8 (else --steps x --accum x B x T)",
                    .flags = KOPT_OPEN_MIN, .given = &o.have_tokens, .conflicts = "steps"),
        KOPT_INT(0, "vocab", &o.vocab, "N", 1, 1 << 24,
                 "vocabulary (default 259: kiln tokenize --bytes; GPT-2's BPE: 50257)"),
        KOPT_GROUP("hardware"),
        KOPT_CALL(0, "hw", &o, hw_option, "SPEC",
                  "add a row or override fields of one: name=NAME,tflops=PEAK,eff=SHARE,"
                  "mem=GB,price=USD_PER_HOUR; name=this sets this machine's price and memory; "
                  "repeatable"),
        KOPT_STRING(0, "hw-file", &o.hw_file, "FILE",
                    "the hardware table (default $KILN_HARDWARE, else share/kiln/hardware.txt "
                    "beside bin/)"),
        KOPT_STRING(0, "on", &o.on, "NAMES",
                    "only these rows (comma-separated); a run that fits none of them exits 2"),
        KOPT_INT(0, "machines", &o.machines, "N", 1, 1 << 20,
                 "N machines of each kind (data parallel, mpirun: README)"),
        KOPT_DOUBLE(0, "net", &o.net, "GBIT", 0, 1e6,
                    "with --machines: the link between them, Gbit/s (default 10); each "
                    "optimizer step adds a ring all-reduce of the trained gradients, not "
                    "overlapped (0: compute only)"),
        KOPT_DOUBLE(0, "measure", &o.measure, "S", 0, 600,
                    "seconds of real training steps on this machine (default 3; 0: none, the "
                    "FMA peak at 50%)"),
        KOPT_BOOL(0, "json", &o.json, "one JSON object instead of the table"),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kest_report r;
    kest_report_open(&o, &r);
    bool fits = kest_report_print(&o, &r); /* on one of the --on rows */
    kest_report_close(&o, &r, fits);
    return 0;
}
