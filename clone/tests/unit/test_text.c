/* test_text — UTF-8 checking and repair, every --split mode (chunks never cut a
 * character), and the sorted recursive file walk. */
#include "check.h"
#include "data/text.h"
#include "core/util.h"
#include "data/walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[256];

static void utf8(void) {
    const uint8_t ok[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\xb3z"; /* a é € 🐳 z */
    CHECK(ktext_utf8_check(ok, sizeof ok - 1) == sizeof ok - 1);
    const uint8_t overlong[] = "ab\xc0\xaf";
    CHECK(ktext_utf8_check(overlong, 4) == 2);
    const uint8_t surrogate[] = "\xed\xa0\x80";
    CHECK(ktext_utf8_check(surrogate, 3) == 0);
    const uint8_t cut[] = "x\xe2\x82";
    CHECK(ktext_utf8_check(cut, 3) == 1);
    CHECK(ktext_utf8_check((const uint8_t *)"\xf4\x90\x80\x80", 4) == 0); /* > U+10FFFF */
    size_t n;
    /* E2 82 41: the maximal subpart E2 82 becomes one U+FFFD, then 'A'. */
    uint8_t *r = ktext_utf8_repair((const uint8_t *)"\xe2\x82"
                                                    "A\xff",
                                   4, &n);
    CHECK(n == 7 && memcmp(r,
                           "\xef\xbf\xbd"
                           "A\xef\xbf\xbd",
                           7) == 0);
    CHECK(ktext_utf8_check(r, n) == n);
    free(r);
    r = ktext_utf8_repair(ok, sizeof ok - 1, &n);
    CHECK(n == sizeof ok - 1 && memcmp(r, ok, n) == 0);
    free(r);
}

/* Split s with spec and join the pieces with '|'. */
static const char *split(const char *spec, const char *s) {
    static char out[1024];
    ksplit sp;
    CHECK(ksplit_parse(spec, &sp, err, sizeof err));
    size_t pos = 0, a, len, k = 0;
    out[0] = 0;
    while (ksplit_next(&sp, (const uint8_t *)s, strlen(s), &pos, &a, &len)) {
        if (k) out[k++] = '|';
        memcpy(out + k, s + a, len);
        k += len;
        out[k] = 0;
    }
    return out;
}

static void splits(void) {
    const char *s = "one\r\ntwo\n\n\nthree\nfour\n";
    CHECK(strcmp(split("docs", s), s) == 0);
    CHECK(strcmp(split("lines", s), "one|two|three|four") == 0);
    CHECK(strcmp(split("paragraphs", s), "one\r\ntwo|three\nfour") == 0);
    CHECK(strcmp(split("paragraphs", "\n  \nA\n \t\nB"), "A|B") == 0);
    CHECK(strcmp(split("sep:%", "Q1\nA1\n%\nQ2\n\n%\n%\nQ3"), "Q1\nA1|Q2|Q3") == 0);
    CHECK(strcmp(split("chunk:4", "abcdefghij"), "abcd|efgh|ij") == 0);
    /* "é" is 2 bytes, "€" 3: chunks of 4 end on character boundaries. */
    CHECK(strcmp(split("chunk:4", "a\xc3\xa9\xe2\x82\xac"
                                  "b"),
                 "a\xc3\xa9|\xe2\x82\xac"
                 "b") == 0);
    /* A chunk smaller than a character takes the whole character. */
    CHECK(strcmp(split("chunk:1", "\xe2\x82\xac"
                                  "x"),
                 "\xe2\x82\xac|x") == 0);
    CHECK(strcmp(split("docs", ""), "") == 0);
    ksplit sp;
    CHECK(!ksplit_parse("chunk:0", &sp, err, sizeof err) && strstr(err, "--split"));
    CHECK(!ksplit_parse("words", &sp, err, sizeof err));
    CHECK(!ksplit_parse("sep:", &sp, err, sizeof err));
}

static void walk(void) {
    char root[] = "/tmp/kiln-test-walk-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    const char *files[] = {"b/2.png", "a/1.PNG",       "a/sub/0.png",
                           "a-z.png", "a/.hidden.png", "a/notes.txt"};
    char path[512];
    snprintf(path, sizeof path, "%s/a", root), mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/a/sub", root), mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/b", root), mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/empty", root), mkdir(path, 0755);
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        FILE *f = fopen(path, "w");
        fclose(f);
    }
    char **p;
    size_t n;
    CHECK(kwalk(root, ".png", &p, &n, err, sizeof err) && n == 4);
    size_t rl = strlen(root) + 1;
    CHECK(n == 4 && strcmp(p[0] + rl, "a-z.png") == 0 && strcmp(p[1] + rl, "a/1.PNG") == 0 &&
          strcmp(p[2] + rl, "a/sub/0.png") == 0 && strcmp(p[3] + rl, "b/2.png") == 0);
    kwalk_free(p, n);
    CHECK(kwalk(root, NULL, &p, &n, err, sizeof err) && n == 5);
    kwalk_free(p, n);
    snprintf(path, sizeof path, "%s/empty", root);
    CHECK(kwalk(path, NULL, &p, &n, err, sizeof err) && n == 0);
    kwalk_free(p, n);
    CHECK(!kwalk("/nonexistent/dir", NULL, &p, &n, err, sizeof err) && strstr(err, "cannot open"));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

int main(void) {
    utf8();
    splits();
    walk();
    return check_report("text");
}
