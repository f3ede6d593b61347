/* kiln-tokenize — sample records to token sequences: text as bytes, images as pixel levels
 * or palette colours, the label as a class token first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/options.h"
#include "data/sample.h"
#include "data/tokenizer.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "turn samples into token sequences (text bytes, image pixels)",
    .usage = "kiln tokenize (--bytes | --bpe DIR | --levels K | --palette FILE) [--classes FILE] "
             "[--bos]",
    .notes = "Ids: base symbols (256 bytes, K levels or P colours), then BOS, EOS, PAD, then one\n"
             "token per class.  --bpe keeps the vocabulary's ids (GPT-2's: 0..50255, then\n"
             "<|endoftext|> 50256 as BOS, EOS and PAD), classes after its special tokens.  The hdr "
             "carries this as `tokenizer`, so kiln batch, train and detok\n"
             "need no flags.  Images must all have one shape (use kiln load --size).\n"
             "example:\n"
             "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes | kiln show\n"
             "  kiln load idx:IMAGES,LABELS --classes examples/data/fashion-mnist.classes \\\n"
             "    | kiln tokenize --levels 16 | kiln show\n",
};

typedef struct {
    ktokenizer tok;
    const char *classes_from; /* for messages: the classes file, or "the hdr classes" */
    const char *field, *prompt, *fields;
    bool bos, image_kind, keep, no_class; /* no_class: labels stay fields, not tokens */
    int32_t *buf;
    uint8_t *mask;
    size_t cap;
    kimage im;
} tokenize;

static void ensure(tokenize *T, size_t n) {
    if (n <= T->cap) return;
    T->buf = xrealloc(T->buf, xmul(T->cap = n, sizeof(int32_t)));
    T->mask = xrealloc(T->mask, n);
}

/* The class token of the record's label, -1 when there is no label or no classes. */
static int64_t class_token(const tokenize *T, const krec *r) {
    const char *label;
    size_t n;
    if (T->no_class || !T->tok.nclasses || !krec_str(r, "label", &label, &n)) return -1;
    int64_t t = ktok_class_token(&T->tok, label, n);
    if (t < 0)
        kiln_die(EX_KILN_DATA, "record %llu: label '%.*s' is not in %s (id %llu)",
                 (unsigned long long)r->seq, (int)n, label, T->classes_from,
                 (unsigned long long)krec_u64_or(r, "id", 0));
    return t;
}

/* The tokens record: the sample's other fields, tokens, and the loss mask if given. */
static void write_tokens(kwriter *w, const krec *r, const int32_t *tok, const uint8_t *mask,
                         size_t n, const char *field, const char *prompt, bool keep) {
    const char *replaced[] = {"image", "mask", keep ? "tokens" : field, prompt, NULL};
    ktensor t = ktensor_1d(KT_I32, tok, n), m = ktensor_1d(KT_U8, mask, n);
    kwriter_begin(w, "tokens");
    kw_copy_fields(w, r, replaced);
    kw_tensor(w, "tokens", &t);
    if (mask) kw_tensor(w, "mask", &m);
    kwriter_end(w);
}

#define MAX_FIELDS 8

/* --fields A,B,...: each listed text field the sample has becomes an I32 tensor of that name
 * (pairs for contrastive training: anchor, positive, negative).  False when it has none. */
static bool tokenize_fields(tokenize *T, kwriter *w, const krec *r) {
    char names[MAX_FIELDS][64];
    int32_t *tok[MAX_FIELDS];
    size_t len[MAX_FIELDS];
    int n = 0;
    for (const char *p = T->fields; *p && n < MAX_FIELDS; p += *p == ',') {
        size_t k = strcspn(p, ",");
        snprintf(names[n], sizeof names[n], "%.*s", (int)k, p);
        p += k;
        const char *s;
        size_t slen;
        if (!krec_str(r, names[n], &s, &slen)) continue;
        tok[n] = xmalloc(xmul(slen + 3, sizeof(int32_t)));
        len[n] = ktok_encode_text(&T->tok, (const uint8_t *)s, slen, -1, T->bos, tok[n]);
        n++;
    }
    if (n) {
        const char *skip[MAX_FIELDS + 1] = {0};
        for (int i = 0; i < n; i++) skip[i] = names[i];
        kwriter_begin(w, "tokens");
        kw_copy_fields(w, r, skip);
        for (int i = 0; i < n; i++) {
            ktensor t = ktensor_1d(KT_I32, tok[i], len[i]);
            kw_tensor(w, names[i], &t);
        }
        kwriter_end(w);
    }
    for (int i = 0; i < n; i++) free(tok[i]);
    return n > 0;
}

static bool tokenize_record(tokenize *T, kwriter *w, const krec *r) {
    if (!krec_is(r, "sample")) return false;
    if (T->fields) return tokenize_fields(T, w, r);
    if (T->image_kind) {
        if (!krec_image(r, &T->im)) return false;
        if ((uint32_t)T->im.h != T->tok.height || (uint32_t)T->im.w != T->tok.width ||
            (uint32_t)T->im.c != T->tok.channels)
            kiln_die(EX_KILN_DATA,
                     "record %llu: image is %dx%dx%d but the stream's first was %ux%ux%u "
                     "(make them one with kiln load --size HxW --channels C)",
                     (unsigned long long)r->seq, T->im.h, T->im.w, T->im.c, T->tok.height,
                     T->tok.width, T->tok.channels);
        const char *label;
        size_t len;
        /* A labelled image without classes would lose its class without a word (a hdr
         * dropped on the way, e.g. kiln show without --all). */
        if (!T->tok.nclasses && !T->no_class && krec_str(r, "label", &label, &len))
            kiln_die(EX_KILN_DATA,
                     "record %llu: image labelled '%.*s' but no classes are known: the "
                     "upstream hdr has none (was it dropped? `kiln show --all` keeps it) and "
                     "no --classes FILE was given",
                     (unsigned long long)r->seq, (int)len, label);
        ensure(T, kimage_bytes(&T->im) + 1);
        size_t n = ktok_encode_image(&T->tok, &T->im, class_token(T, r), T->buf);
        write_tokens(w, r, T->buf, NULL, n, T->field, NULL, T->keep);
        return true;
    }
    const char *s, *p = NULL;
    size_t len, plen = 0;
    if (!krec_str(r, T->field, &s, &len)) {
        const msgpack_object *f = krec_get(r, T->field);
        if (f) /* a stage in another language may have packed bytes (docs/writing-a-stage.md) */
            kiln_die(EX_KILN_DATA,
                     "record %llu: `%s` must be a MessagePack str (UTF-8 text), not %s",
                     (unsigned long long)r->seq, T->field,
                     f->type == MSGPACK_OBJECT_BIN ? "a bin" : "another type");
        return false;
    }
    if (T->prompt && !krec_str(r, T->prompt, &p, &plen)) p = NULL, plen = 0;
    ensure(T, plen + len + 3);
    /* [BOS] [class] prompt text EOS: the front (prompt, its EOS dropped), then the text, so
     * the mask is exact for BPE too (a piece never spans the prompt and the text). */
    size_t front =
        ktok_encode_text(&T->tok, (const uint8_t *)p, plen, class_token(T, r), T->bos, T->buf) - 1;
    size_t n =
        front + ktok_encode_text(&T->tok, (const uint8_t *)s, len, -1, false, T->buf + front);
    memset(T->mask, 0, front);
    memset(T->mask + front, 1, n - front);
    write_tokens(w, r, T->buf, T->prompt ? T->mask : NULL, n, T->field, T->prompt, T->keep);
    return true;
}

/* Classes from --classes, else from the upstream hdr. */
static void setup_classes(tokenize *T, const char *path, const krec *hdr) {
    char err[512];
    char **names = NULL;
    uint32_t n = 0;
    if (path) {
        if (!kclasses_load(path, &names, &n, err, sizeof err)) kiln_die(EX_KILN_DATA, "%s", err);
        T->classes_from = path;
    } else {
        const msgpack_object *c = krec_get(hdr, "classes");
        if (!c || c->type != MSGPACK_OBJECT_ARRAY || c->via.array.size == 0) return;
        n = c->via.array.size;
        names = xcalloc(n, sizeof *names);
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *o = &c->via.array.ptr[i];
            if (o->type != MSGPACK_OBJECT_STR)
                kiln_die(EX_KILN_DATA, "hdr: classes must be strings");
            names[i] = xmalloc(o->via.str.size + 1);
            memcpy(names[i], o->via.str.ptr, o->via.str.size);
            names[i][o->via.str.size] = 0;
        }
        T->classes_from = "the classes of the upstream hdr";
    }
    ktok_set_classes(&T->tok, names, n);
}

typedef struct options {
    const char *classes, *palette, *bpe;
    bool bytes;
    uint64_t levels;
} options;

static void parse_options(int argc, char **argv, kiln_cli *cli, tokenize *T, options *o) {
    *o = (options){0};
    kopt rows[] = {
        KOPT_GROUP("the tokenizer, one of"),
        KOPT_BOOL(0, "bytes", &o->bytes,
                  "text as UTF-8 bytes 0..255, then EOS (BOS first with --bos)"),
        KOPT_STRING(0, "bpe", &o->bpe, "DIR",
                    "text as byte-level BPE tokens of DIR/encoder.json and DIR/vocab.bpe "
                    "(GPT-2's files, or what kiln bpe writes), then <|endoftext|>"),
        KOPT_U64(
            0, "levels", &o->levels, "K", 2, 256,
            "images: each channel value v becomes floor(v*K/256), K in 2..256 (--levels 256 is "
            "lossless)"),
        KOPT_STRING(0, "palette", &o->palette, "FILE",
                    "images: each pixel becomes its nearest colour in FILE ('R G B' a line, as "
                    "`kiln palette` writes)"),
        KOPT_GROUP("sequences"),
        KOPT_STRING(0, "classes", &o->classes, "FILE",
                    "class names, one a line; default: the hdr's `classes` (kiln load writes "
                    "them).  A sample's label becomes the class token, first in the sequence; a "
                    "label missing from the classes is an error (65)"),
        KOPT_BOOL(0, "no-class-token", &T->no_class,
                  "images: no class token, BOS first; the label stays on the record for kiln "
                  "pairs --by-label and kiln search --relevant label, so it cannot leak into "
                  "an embedding.  The tokenizer keeps classes only from --classes FILE (to "
                  "match a class-conditional model's), not from the hdr"),
        KOPT_STRING(0, "field", &T->field, "NAME", "the text field to tokenize (default text)"),
        KOPT_STRING(0, "prompt", &T->prompt, "NAME",
                    "a field tokenized in front of the text and masked out of the loss (mask 0), "
                    "e.g. --prompt prompt for instruction data from jsonl"),
        KOPT_STRING(0, "fields", &T->fields, "A,B,...",
                    "text: each of these fields becomes a token tensor of its own name (no "
                    "class token), e.g. anchor,positive,negative for kiln pairs"),
        KOPT_BOOL(0, "keep", &T->keep,
                  "keep the text field: the tokens go beside it, for stages that show it (kiln "
                  "embed, kiln index)"),
        KOPT_BOOL(0, "bos", &T->bos,
                  "begin text with BOS (images always start with BOS or a class)"),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    if (o->bytes + !!o->levels + !!o->palette + !!o->bpe != 1)
        kiln_usage_error("choose one of --bytes, --bpe DIR, --levels K, --palette FILE");
    if (T->fields && (!(o->bytes || o->bpe) || T->prompt))
        kiln_usage_error("--fields goes with --bytes or --bpe, without --prompt");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    tokenize T = {.field = "text"};
    options o;
    parse_options(argc, argv, &cli, &T, &o);
    char err[512];
    if (o.levels) {
        ktok_init_levels(&T.tok, (uint32_t)o.levels);
    } else if (o.palette) {
        uint8_t(*pal)[3];
        uint32_t n;
        if (!kpalette_load(o.palette, &pal, &n, err, sizeof err)) kiln_die(EX_KILN_DATA, "%s", err);
        ktok_init_palette(&T.tok, (const uint8_t(*)[3])pal, n);
        free(pal);
    } else if (o.bpe) {
        kbpe *b = kbpe_load(o.bpe, err, sizeof err);
        if (!b) kiln_die(EX_KILN_DATA, "%s", err);
        ktok_init_bpe(&T.tok, b);
    } else {
        ktok_init_bytes(&T.tok);
    }
    T.image_kind = !ktok_is_text(&T.tok);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    if (!T.no_class || o.classes) setup_classes(&T, o.classes, hdr);

    /* An image tokenizer records the image shape, known from the first image: read ahead
     * one record before writing the hdr. */
    krec rec;
    bool have = kreader_next(r, &rec);
    if (have && T.image_kind && krec_is(&rec, "sample") && krec_image(&rec, &T.im))
        T.tok.height = (uint32_t)T.im.h, T.tok.width = (uint32_t)T.im.w,
        T.tok.channels = (uint32_t)T.im.c;
    kwriter_hdr_begin(w, hdr, "tokens", krec_u64_or(hdr, "seed", 0));
    kw_key(w, "tokenizer");
    ktok_pack(&T.tok, kw_packer(w));
    kwriter_end(w);

    for (; have && !kwriter_gone(w); have = kreader_next(r, &rec)) {
        if (!tokenize_record(&T, w, &rec)) kwriter_pass(w, &rec);
        if (kiln_stop_now()) break;
    }
    free(T.buf), free(T.mask);
    kimage_free(&T.im);
    ktok_free(&T.tok);
    kiln_finish(r, w);
}
