/* kiln-keygen — a CURVE key pair for records over tcp between hosts (lib/stream/znet.h). */
#include "stream/options.h"
#include "stream/znet.h"

static const kopt_info HELP = {
    .about = "make a CURVE key pair for records over tcp between hosts",
    .usage = "kiln keygen NAME",
    .text = "Writes NAME.key (the secret key, mode 0600) and NAME.pub (the public key), each one\n"
            "line of ZeroMQ's Z85 text.  Never overwrites a key.  A bound end takes its NAME.key\n"
            "with --curve-key and the public keys it admits with --curve-clients (a file of\n"
            ".pub lines or a directory of .pub files); a connecting end takes its own NAME.key\n"
            "and the bound end's NAME.pub with --curve-server.\n",
    .notes = "example (README.md, \"Stages on other hosts\"):\n"
             "  kiln keygen loader; kiln keygen trainer\n"
             "  kiln train --in @tcp://*:5555 --curve-key trainer.key --curve-clients loader.pub\n"
             "  ... | kiln batch --out '>tcp://HOST:5555' --curve-key loader.key \\\n"
             "        --curve-server trainer.pub\n",
    .max_args = 1,
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kopt rows[] = {KOPT_END()};
    kiln_cli_parse(&cli, rows, argc, argv);
    if (cli.nargs != 1) kiln_usage_error("give the NAME of the key pair");
    char err[512];
    int rc = znet_write_keypair(cli.args[0], err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    return EX_KILN_OK;
}
