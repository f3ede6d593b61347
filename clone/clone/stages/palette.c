/* kiln-palette — learn an RGB palette from a sample stream with k-means. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/options.h"
#include "core/rng.h"
#include "data/sample.h"
#include "data/tokenizer.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "learn a K-colour palette from images with k-means",
    .usage = "kiln palette -k K [-o FILE] [--pixels N] [--iters N] [--seed S]",
    .text = "Reads sample records (text and other records are ignored), keeps a uniform random\n"
            "sample of at most N pixels (reservoir sampling), runs k-means (k-means++ start) and\n"
            "writes the palette for `kiln tokenize --palette FILE`: one 'R G B' line per colour,\n"
            "dark to light.  The same input and seed give the same palette.\n",
    .notes =
        "example:\n"
        "  kiln load png:photos --channels 3 --limit 2000 | kiln palette -k 16 -o photos.pal\n"
        "  kiln load png:photos --channels 3 | kiln tokenize --palette photos.pal | kiln show\n",
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    uint64_t k = 0, max_pixels = 200000, iters = 20, seed = 0;
    const char *output = "-";
    kopt rows[] = {
        KOPT_U64('k', "colours", &k, "K", 2, 4096, "palette size, 2..4096 (e.g. 16)",
                 .alias = "colors", .flags = KOPT_REQUIRED),
        KOPT_STRING('o', "output", &output, "FILE",
                    "where the palette goes (default: stdout, as text)"),
        KOPT_U64(0, "pixels", &max_pixels, "N", 2, 1u << 28,
                 "pixels sampled, at least K (default 200000)"),
        KOPT_U64(0, "iters", &iters, "N", 0, 1000, "k-means rounds (default 20)"),
        KOPT_U64(0, "seed", &seed, "S", 0, UINT64_MAX, "the seed (default 0)"),
        KOPT_GROUP("record streams"),
        KOPT_STREAM_IN(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    if (max_pixels < k) /* the range the row could not know */
        kiln_usage_error("--pixels must be %llu..%u (got %llu)", (unsigned long long)k, 1u << 28,
                         (unsigned long long)max_pixels);

    kreader *r = kiln_cli_reader(&cli);
    uint8_t *pix = xmalloc(xmul(max_pixels, 3));
    uint64_t seen = 0, kept = 0;
    krng rng;
    krng_init(&rng, seed, 1, 0, KRNG_PALETTE);
    kimage im = {0};
    krec rec;
    while (kreader_next(r, &rec)) {
        if (!krec_is(&rec, "sample") || !krec_image(&rec, &im)) continue;
        size_t n = (size_t)im.h * im.w;
        for (size_t i = 0; i < n; i++, seen++) {
            const uint8_t *p = im.data + i * im.c;
            uint8_t rgb[3] = {p[0], im.c >= 3 ? p[1] : p[0], im.c >= 3 ? p[2] : p[0]};
            /* Reservoir sampling: pixel number `seen` replaces a kept one with chance
             * kept/seen, so every pixel is equally likely to be in the sample. */
            uint64_t slot = kept < max_pixels ? kept++ : krng_below(&rng, seen + 1);
            if (slot < max_pixels) memcpy(pix + slot * 3, rgb, 3);
        }
        if (kiln_stop_now()) break;
    }
    int stop = kreader_finish_for_file(r, "palette");
    if (stop) return stop;
    if (kept < k)
        kiln_die(EX_KILN_DATA, "only %llu pixels in the stream: fewer than %llu colours",
                 (unsigned long long)kept, (unsigned long long)k);
    uint8_t(*palette)[3] = xmalloc(xmul(k, 3));
    kpalette_kmeans(pix, kept, (uint32_t)k, (int)iters, seed, palette);
    char err[512];
    if (!kpalette_save(output, (const uint8_t(*)[3])palette, (uint32_t)k, err, sizeof err))
        kiln_die(EX_KILN_IO, "%s", err);
    free(palette), free(pix);
    kimage_free(&im);
    return EX_KILN_OK;
}
