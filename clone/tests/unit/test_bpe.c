/* test_bpe — GPT-2's pre-split on known pieces, learning, the files and their errors,
 * decode(encode(x)) = x for any bytes (invalid UTF-8 included), and the BPE tokenizer kind
 * in the hdr. */
#include "check.h"
#include "core/util.h"
#include "data/bpe.h"
#include "data/tokenizer.h"
#include "stream/stream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];

/* The pieces of s joined with '|'. */
static void pieces(const char *s, char *out) {
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < n;) {
        size_t e = kbpe_split_next((const uint8_t *)s, n, i);
        if (i) out[k++] = '|';
        memcpy(out + k, s + i, e - i), k += e - i;
        i = e;
    }
    out[k] = 0;
}

static void split(void) {
    char out[256];
    pieces("Hello world's  3.14 \n\n  x", out);
    CHECK(strcmp(out, "Hello| world|'s| | 3|.|14| \n\n | x") == 0);
    pieces("they'll 'Sup ''re?!  ", out);
    CHECK(strcmp(out, "they|'ll| '|Sup| ''|re|?!|  ") == 0);
    /* letters beyond ASCII (é, Ж), a non-Latin digit (٣), a no-break space (\s) */
    pieces("caf\xc3\xa9 \xd0\x96\xd0\x96 \xd9\xa3\xd9\xa3\xc2\xa0x", out);
    CHECK(strcmp(out, "caf\xc3\xa9| \xd0\x96\xd0\x96| \xd9\xa3\xd9\xa3|\xc2\xa0|x") == 0);
    /* an invalid byte is a character of its own outside the classes: it joins punctuation */
    pieces("ab\xff\xfe!cd", out);
    CHECK(strcmp(out, "ab|\xff\xfe!|cd") == 0);
    /* a truncated sequence at the end, a lone continuation byte */
    pieces("a\xe2\x82", out);
    CHECK(strcmp(out, "a|\xe2\x82") == 0);
}

static const char *corpus =
    "the cat sat on the mat. the cat ate the rat. that is the thing, the thing that the cat "
    "did. 1234 1234 1234 the end\n\nthe end\n";

static kbpe *learned(uint32_t vocab) {
    kbpe_learner *l = kbpe_learner_new();
    for (int i = 0; i < 3; i++) kbpe_learner_add(l, (const uint8_t *)corpus, strlen(corpus));
    const char *sp[] = {"<|pad|>"};
    kbpe *b = kbpe_learn(l, vocab, sp, 1, err, sizeof err);
    kbpe_learner_free(l);
    return b;
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

static void learn_save_load(void) {
    kbpe *b = learned(300);
    CHECK(b != NULL);
    if (!b) return;
    CHECK(kbpe_nspecials(b) == 2 && strcmp(kbpe_special(b, 0), KBPE_EOT) == 0);
    /* every piece is whole after 33 merges: learning stops short of 300 ids */
    CHECK(kbpe_nbase(b) + kbpe_nspecials(b) == 291 && kbpe_nmerges(b) == 33);
    CHECK(kbpe_special_id(b, "<|pad|>") == 290);
    /* the first merge is the most frequent pair: "th" (the, that, thing, with or without
     * the space); then " th" */
    uint32_t len;
    const uint8_t *t = kbpe_token_bytes(b, 256, &len);
    CHECK(len == 2 && memcmp(t, "th", 2) == 0);
    t = kbpe_token_bytes(b, 257, &len);
    CHECK(len == 3 && memcmp(t, " th", 3) == 0);
    int32_t ids[512];
    size_t n = kbpe_encode(b, (const uint8_t *)" the cat", 8, ids);
    CHECK(n == 2); /* " the", " cat": both merged whole */
    /* exactly --vocab ids when merges do not run out, whether or not the caller names
     * <|endoftext|> among the specials */
    kbpe_learner *l = kbpe_learner_new();
    kbpe_learner_add(l, (const uint8_t *)corpus, strlen(corpus));
    kbpe_learner_add(l, (const uint8_t *)corpus, strlen(corpus));
    const char *eot[] = {KBPE_EOT, "<|x|>"};
    kbpe *v1 = kbpe_learn(l, 270, NULL, 0, err, sizeof err),
         *v2 = kbpe_learn(l, 270, eot, 2, err, sizeof err);
    CHECK(v1 && kbpe_nbase(v1) + kbpe_nspecials(v1) == 270 && kbpe_nspecials(v1) == 1);
    CHECK(v2 && kbpe_nbase(v2) + kbpe_nspecials(v2) == 270 && kbpe_nspecials(v2) == 2);
    CHECK(kbpe_learn(l, 257, eot, 2, err, sizeof err) == NULL && strstr(err, "2 special"));
    kbpe_free(v1), kbpe_free(v2);
    kbpe_learner_free(l);
    kbpe *again = learned(300);
    CHECK(again && kbpe_hash(again) == kbpe_hash(b)); /* deterministic */
    kbpe_free(again);

    char dir[] = "/tmp/kiln-bpe-XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    CHECK(kbpe_save(b, dir, err, sizeof err));
    kbpe *c = kbpe_load(dir, err, sizeof err);
    CHECK(c && kbpe_hash(c) == kbpe_hash(b) && kbpe_nmerges(c) == kbpe_nmerges(b));
    kbpe_free(c);

    /* a merge that references a token no earlier line made */
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    write_file(path, "#version: 0.2\nt h\nth e\nq zz\n");
    CHECK(kbpe_load(dir, err, sizeof err) == NULL && strstr(err, "vocab.bpe:4:") &&
          strstr(err, "unknown token 'zz'"));
    write_file(path, "#version: 0.2\nt h e\n");
    CHECK(kbpe_load(dir, err, sizeof err) == NULL && strstr(err, "vocab.bpe:2:"));
    /* encoder.json disagreeing with vocab.bpe's order */
    write_file(path, "#version: 0.2\nt h\n");
    CHECK(kbpe_load(dir, err, sizeof err) == NULL && strstr(err, "encoder.json"));
    /* a missing file */
    unlink(path);
    CHECK(kbpe_load(dir, err, sizeof err) == NULL && strstr(err, "vocab.bpe: cannot open"));
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    unlink(path);
    rmdir(dir);
    kbpe_free(b);
}

static void roundtrip(void) {
    kbpe *b = learned(320);
    CHECK(b != NULL);
    if (!b) return;
    uint8_t s[4096], back[4096 * 64];
    int32_t ids[4096];
    uint64_t x = 88172645463325252ull;
    for (int trial = 0; trial < 50; trial++) {
        size_t n = (size_t)(trial * 80);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* half the trials: mostly corpus-like ASCII; the others: any byte */
            s[i] = trial % 2 ? (uint8_t)x : (uint8_t)corpus[x % strlen(corpus)];
        }
        size_t k = kbpe_encode(b, s, n, ids);
        CHECK(k <= n);
        CHECK(kbpe_decode(b, ids, k, back) == n && memcmp(back, s, n) == 0);
    }
    kbpe_free(b);
}

static void tokenizer_kind(void) {
    ktokenizer t;
    ktok_init_bpe(&t, learned(300));
    CHECK(t.kind == KTOK_BPE && t.bos == 289 && t.eos == 289 && t.pad == 289);
    CHECK(t.class_base == 291 && t.vocab == 291 && ktok_is_text(&t));
    char **cls = xmalloc(2 * sizeof *cls);
    cls[0] = xstrdup("a"), cls[1] = xstrdup("b");
    ktok_set_classes(&t, cls, 2);
    CHECK(t.vocab == 293 && ktok_class_token(&t, "b", 1) == 292);
    int32_t tok[64];
    size_t n = ktok_encode_text(&t, (const uint8_t *)" the cat", 8, 292, true, tok);
    CHECK(n == 5 && tok[0] == 289 && tok[1] == 292 && tok[4] == 289);
    CHECK(ktok_symbol_bytes(&t, tok[2]) == 4 && ktok_symbol_bytes(&t, 289) == 0);
    uint8_t back[64 * 8];
    CHECK(ktok_max_bytes(&t) >= 4 && ktok_decode_text(&t, tok, n, back) == 8 &&
          memcmp(back, " the cat", 8) == 0);

    /* through the hdr and back */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ktok_pack(&t, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    ktokenizer back_t;
    CHECK(ktok_from_obj(&u.data, &back_t, err, sizeof err));
    CHECK(ktok_same(&t, &back_t) && back_t.kind == KTOK_BPE && back_t.vocab == 293);
    ktok_free(&back_t);
    ktokenizer bytes;
    ktok_init_bytes(&bytes);
    CHECK(!ktok_same(&t, &bytes));
    ktok_free(&bytes);
    /* a tampered hash is refused */
    const msgpack_object *h = kobj_get(&u.data, "hash");
    CHECK(h && h->type == MSGPACK_OBJECT_STR);
    if (h) ((char *)h->via.str.ptr)[0] ^= 1;
    CHECK(!ktok_from_obj(&u.data, &back_t, err, sizeof err) && strstr(err, "hash"));
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    ktok_free(&t);
}

int main(void) {
    split();
    learn_save_load();
    roundtrip();
    tokenizer_kind();
    return check_report("bpe");
}
