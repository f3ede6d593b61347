/* judge: AFINN-style valence (mean per word and sum, phrases before words, hyphenated entries,
 * case), the share of known words, repetition, length, brightness, and malformed lexicons
 * refused naming file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "data/judge.h"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

static void valence(void) {
    const char *path = "/tmp/kiln_test_judge_lex.txt";
    write_file(path,
               "# a comment\nlove\t3\ngood\t3\nnot good\t-2\ncover-up\t-3\ncan't stand\t-3\n");
    int code;
    char err[256];
    kjudge_lexicon *x = kjudge_lexicon_load(path, true, &code, err, sizeof err);
    CHECK(x && code == 0 && kjudge_lexicon_size(x) == 5);
    const char *t = "I LOVE it. Not good!"; /* 5 words: 3 + -2 */
    CHECK_NEAR(kjudge_valence(x, t, strlen(t), false), 1.0, 1e-12);
    CHECK_NEAR(kjudge_valence(x, t, strlen(t), true), 0.2, 1e-12);
    const char *u = "a cover-up; I can't stand it, good"; /* cover up, can't stand: -6 + 3 */
    CHECK_NEAR(kjudge_valence(x, u, strlen(u), false), -3.0, 1e-12);
    CHECK(kjudge_word_count(u, strlen(u)) == 8);
    CHECK(kjudge_valence(x, "", 0, true) == 0.0);
    CHECK(kjudge_valence(x, "... !!", 6, true) == 0.0);
    kjudge_lexicon_free(x);
    unlink(path);
}

static void known_words(void) {
    const char *path = "/tmp/kiln_test_judge_words.txt";
    write_file(path, "the\nWhale\nsea\nwhale's\n");
    int code;
    char err[256];
    kjudge_lexicon *x = kjudge_lexicon_load(path, false, &code, err, sizeof err);
    CHECK(x && kjudge_lexicon_size(x) == 4);
    const char *t = "The whale's sea, xqzt whale"; /* 4 of 5 */
    CHECK_NEAR(kjudge_known_share(x, t, strlen(t)), 0.8, 1e-12);
    CHECK(kjudge_known_share(x, "", 0) == 0.0);
    kjudge_lexicon_free(x);
    unlink(path);
}

static void refused(void) {
    const char *path = "/tmp/kiln_test_judge_bad.txt";
    int code;
    char err[256];
    write_file(path, "love\t3\nhate -3\n");
    CHECK(!kjudge_lexicon_load(path, true, &code, err, sizeof err));
    CHECK(code == EX_KILN_DATA && strstr(err, "kiln_test_judge_bad.txt:2"));
    write_file(path, "love\tlots\n");
    CHECK(!kjudge_lexicon_load(path, true, &code, err, sizeof err) && code == EX_KILN_DATA);
    write_file(path, "# nothing\n\n");
    CHECK(!kjudge_lexicon_load(path, false, &code, err, sizeof err) && code == EX_KILN_DATA);
    unlink(path);
    CHECK(!kjudge_lexicon_load(path, false, &code, err, sizeof err) && code == EX_KILN_IO);
}

static void penalties(void) {
    int32_t rep[] = {1, 2, 3, 1, 2, 3}; /* trigrams 123 231 312 123: one repeat of 4 */
    CHECK_NEAR(kjudge_repetition(rep, 6, 3), -0.25, 1e-12);
    int32_t same[] = {7, 7, 7, 7, 7};
    CHECK_NEAR(kjudge_repetition(same, 5, 1), -0.8, 1e-12);
    CHECK(kjudge_repetition(rep, 2, 3) == 0.0);
    CHECK_NEAR(kjudge_length(40, 32), -0.25, 1e-12);
    CHECK_NEAR(kjudge_length(32, 32), 0.0, 1e-12);
    uint8_t px[4] = {0, 255, 255, 0};
    ktensor im = ktensor_make(KT_U8, px, 3, (uint64_t[]){2, 2, 1});
    CHECK_NEAR(kjudge_brightness(&im), 0.5, 1e-12);
    ktensor f = ktensor_1d(KT_F32, px, 1);
    CHECK(kjudge_brightness(&f) < 0);
}

int main(void) {
    valence();
    known_words();
    refused();
    penalties();
    return check_report("test_judge");
}
