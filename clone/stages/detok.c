/* kiln-detok — token sequences back into text or PNG files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stream/options.h"
#include "data/png.h"
#include "data/sample.h"
#include "data/tokenizer.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "turn tokens records back into text or PNG files",
    .usage = "kiln detok [--dir DIR] [--in URL]",
    .text =
        "Decodes with the tokenizer described in the hdr (no flags needed).\n"
        "  text (bytes):  each record's text to stdout, one record a line (specials dropped);\n"
        "                 with --dir, one file DIR/ID.txt per record\n"
        "  images:        PNG files under DIR (required): DIR/CLASS/NAME.png when the sequence\n"
        "                 starts with a class token, else DIR/NAME.png; NAME is the record's src\n"
        "                 file name when it is a PNG (so load -> tokenize -> detok rebuilds the\n"
        "                 tree), else the id (epoch > 0 adds -eEPOCH)\n",
    .notes = "example:\n"
             "  kiln load png:shirts | kiln tokenize --levels 256 | kiln detok --dir "
             "shirts-again\n",
};

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        kiln_die(EX_KILN_IO, "%s: cannot create directory (%s)", path, strerror(errno));
}

/* NAME as the help says: the src file name for PNG sources, else the id. */
static void file_name(const krec *r, const char *ext, char *buf, size_t size) {
    const char *src;
    size_t n;
    if (krec_str(r, "src", &src, &n) && n > 4 && n < 1024 && strncmp(src + n - 4, ".png", 4) == 0 &&
        strcmp(ext, ".png") == 0) {
        const char *base = src + n;
        while (base > src && base[-1] != '/') base--;
        snprintf(buf, size, "%.*s", (int)(src + n - base), base);
        return;
    }
    uint64_t id = krec_u64_or(r, "id", r->seq), epoch = krec_u64_or(r, "epoch", 0);
    if (epoch)
        snprintf(buf, size, "%06llu-e%llu%s", (unsigned long long)id, (unsigned long long)epoch,
                 ext);
    else
        snprintf(buf, size, "%06llu%s", (unsigned long long)id, ext);
}

/* Class names become directory names: no '/' and no leading '.'. */
static void safe_component(const char *s, char *out, size_t size) {
    size_t k = 0;
    for (; *s && k + 1 < size; s++, k++) out[k] = (*s == '/' || (k == 0 && *s == '.')) ? '_' : *s;
    out[k] = 0;
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    const char *dir = NULL;
    kopt rows[] = {
        KOPT_STRING(0, "dir", &dir, "DIR", "where files go (created if missing)"),
        KOPT_GROUP("record streams"),
        KOPT_STREAM_IN(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);

    kreader *r = kiln_cli_reader(&cli);
    const krec *hdr = kreader_hdr(r);
    ktokenizer tok;
    char err[512];
    const msgpack_object *desc = krec_get(hdr, "tokenizer");
    if (!desc)
        kiln_die(EX_KILN_DATA, "%s: hdr has no tokenizer (is this a tokens stream?)",
                 kreader_name(r));
    if (!ktok_from_obj(desc, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
    bool image = !ktok_is_text(&tok);
    if (image && !dir) kiln_usage_error("images need --dir DIR for the PNG files");
    if (dir) make_dir(dir);

    krec rec;
    kimage im = {0};
    int32_t *ids = NULL;
    uint8_t *text = NULL;
    size_t cap = 0;
    uint64_t files = 0;
    while (kreader_next(r, &rec)) {
        ktensor t;
        if (!krec_is(&rec, "tokens")) continue;
        if (!krec_tensor(&rec, "tokens", &t) || t.dtype != KT_I32 || t.ndim != 1)
            kiln_die(EX_KILN_DATA, "record %llu: tokens is not an I32 [n] tensor",
                     (unsigned long long)rec.seq);
        size_t n = (size_t)t.shape[0];
        if (n + 1 > cap) {
            cap = n + 1;
            ids = xrealloc(ids, xmul(cap, sizeof *ids));
            text = xrealloc(text, xmul(cap, ktok_max_bytes(&tok)));
        }
        ktensor_copy(&t, ids);
        char name[1100], path[4200], cls[256];
        if (!image) {
            size_t len = ktok_decode_text(&tok, ids, n, text);
            if (!dir) {
                text[len] = '\n';
                if (fwrite(text, 1, len + 1, stdout) != len + 1) kiln_stdout_failed();
                continue;
            }
            file_name(&rec, ".txt", name, sizeof name);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
                kiln_die(EX_KILN_IO, "%s: cannot write (%s)", path, strerror(errno));
            files++;
        } else {
            int64_t class_token;
            if (!ktok_decode_image(&tok, ids, n, &im, &class_token))
                kiln_die(EX_KILN_DATA, "hdr: the tokenizer does not give the image shape");
            file_name(&rec, ".png", name, sizeof name);
            const char *cname =
                class_token >= 0 ? ktok_class_name(&tok, (uint32_t)class_token) : NULL;
            if (cname) {
                safe_component(cname, cls, sizeof cls);
                snprintf(path, sizeof path, "%s/%s", dir, cls);
                make_dir(path);
                snprintf(path, sizeof path, "%s/%s/%s", dir, cls, name);
            } else {
                snprintf(path, sizeof path, "%s/%s", dir, name);
            }
            if (!kpng_write_file(path, &im, err, sizeof err))
                kiln_die(EX_KILN_IO, "%s: %s", path, err);
            files++;
        }
        if (kiln_stop_now()) break;
    }
    if (fflush(stdout) != 0) kiln_stdout_failed();
    if (dir) kiln_warn("%llu files written to %s", (unsigned long long)files, dir);
    const char *status = kreader_status(r);
    /* before r, which owns it, goes; an interrupted upstream is not an error of ours */
    bool upstream_ok = status && strcmp(status, "error") != 0;
    int sig = kiln_stop_signal();
    free(ids), free(text);
    kimage_free(&im);
    ktok_free(&tok);
    kreader_close(r);
    if (sig) return kiln_stop_status(sig);
    return upstream_ok ? EX_KILN_OK : EX_KILN_DATA;
}
