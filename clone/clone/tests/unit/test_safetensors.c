/* Unit tests of lib/ckpt/safetensors and lib/core/afile: round trip, header validation (truncated
 * file, corrupted header, offsets outside the file, overlaps, gaps), a write that fails
 * half-way (file size limit standing in for a full disk) leaving the old file intact. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/afile.h"
#include "check.h"
#include "core/rng.h"
#include "ckpt/safetensors.h"
#include "core/util.h"

static char dir[64];
static volatile uint8_t sink;

static char *path_in_dir(const char *name) {
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static size_t files_in_dir(void) {
    size_t n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return n;
}

static const float w[6] = {1, -2, 3.5f, 4, 5, 6.25f};
static const int32_t ids[4] = {7, 8, 9, -10};

static int write_sample(const char *path, size_t extra_zeros) {
    static float zeros[1 << 16];
    uint64_t s23[2] = {2, 3}, big[1] = {extra_zeros};
    st_entry t[4] = {
        {"transformer.wte.weight", ktensor_make(KT_F32, w, 2, s23)},
        {"ids", ktensor_1d(KT_I32, ids, 4)},
        {"empty", ktensor_1d(KT_U8, NULL, 0)},
        {"zeros", ktensor_make(KT_F32, zeros, 1, big)},
    };
    st_meta_entry m[2] = {{"format", "pt"}, {"config", "{\"n_layer\":2}"}};
    char err[256] = "";
    int rc = st_write(path, t, 4, m, 2, err, sizeof err);
    if (rc) fprintf(stderr, "  st_write: %s\n", err);
    return rc;
}

static void test_round_trip(void) {
    const char *p = path_in_dir("a.safetensors");
    CHECK(write_sample(p, 3) == 0);
    stfile *f = NULL;
    char err[256];
    CHECK(st_open(p, &f, err, sizeof err) == 0);
    if (!f) return;
    CHECK(st_count(f) == 4);
    CHECK(strcmp(st_name(f, 0), "transformer.wte.weight") == 0);
    const ktensor *t = st_find(f, "transformer.wte.weight");
    CHECK(t && t->dtype == KT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    float back[6];
    if (t) ktensor_copy(t, back);
    CHECK(t && memcmp(back, w, sizeof w) == 0);
    t = st_find(f, "ids");
    CHECK(t && t->dtype == KT_I32 && ktensor_get(t, 3) == -10);
    t = st_find(f, "empty");
    CHECK(t && t->nbytes == 0 && t->shape[0] == 0);
    CHECK(st_find(f, "nope") == NULL);
    CHECK(st_meta_count(f) == 2 && strcmp(st_meta(f, "format"), "pt") == 0);
    CHECK(strcmp(st_meta(f, "config"), "{\"n_layer\":2}") == 0);
    CHECK(st_meta(f, "step") == NULL);
    size_t dn;
    st_data(f, &dn);
    CHECK(dn == sizeof w + sizeof ids + 3 * 4);
    st_close(f);

    /* Data starts 8-byte aligned. */
    FILE *fp = fopen(p, "rb");
    uint8_t len8[8] = {0};
    CHECK(fp && fread(len8, 1, 8, fp) == 8);
    if (fp) fclose(fp);
    CHECK((len8[0] + 8) % 8 == 0);
}

/* A file made of a literal header and `data` zero bytes. */
static int parse_raw(const char *header, size_t data, char *err, size_t errsz) {
    size_t hn = strlen(header), n = 8 + hn + data;
    uint8_t *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, header, hn);
    stfile *f = NULL;
    int rc = st_parse(b, n, "raw", &f, err, errsz);
    st_close(f);
    free(b);
    return rc;
}

static void check_bad(const char *header, size_t data, const char *want) {
    char err[512] = "";
    int rc = parse_raw(header, data, err, sizeof err);
    CHECK(rc == EX_KILN_DATA);
    if (!strstr(err, want)) fprintf(stderr, "  header %s: '%s' lacks '%s'\n", header, err, want);
    CHECK(strstr(err, want) != NULL);
    CHECK(strncmp(err, "raw: ", 5) == 0);
}

static void test_bad_headers(void) {
    char err[512];
    CHECK(parse_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, err,
                    sizeof err) == 0);
    CHECK(parse_raw("{}", 0, err, sizeof err) == 0);
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "bad JSON");
    check_bad("[]", 0, "does not start with '{'");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,100]}}", 8,
              "outside the data");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
              24, "overlaps");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
              20, "gap");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
              "4 bytes after the last tensor");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
              "need 12 bytes");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
              "\"data_offsets\":[0,8]}}",
              8, "overflows");
    check_bad("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8,
              "unsupported dtype");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside");
    check_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "exactly dtype");
    check_bad("{\"__metadata__\":{\"step\":5}}", 0, "__metadata__ \"step\"");
    check_bad("{\"a\":[1]}", 0, "not an object");

    uint8_t huge[16];
    memset(huge, 0xff, sizeof huge);
    stfile *f = NULL;
    CHECK(st_parse(huge, sizeof huge, "raw", &f, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, "over the") != NULL);
    CHECK(st_parse(huge, 5, "raw", &f, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, "truncated") != NULL);
    CHECK(f == NULL);
}

/* Every strict prefix of a valid file is rejected, never read past. */
static void test_truncated(void) {
    const char *p = path_in_dir("t.safetensors");
    CHECK(write_sample(p, 2) == 0);
    FILE *fp = fopen(p, "rb");
    uint8_t b[4096];
    size_t n = fp ? fread(b, 1, sizeof b, fp) : 0;
    if (fp) fclose(fp);
    CHECK(n > 100);
    size_t rejected = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k + 1); /* exactly k bytes readable for ASan */
        memcpy(copy, b, k);
        stfile *f = NULL;
        char err[256];
        rejected += st_parse(copy, k, "cut", &f, err, sizeof err) == EX_KILN_DATA;
        st_close(f);
        free(copy);
    }
    CHECK(rejected == n);

    /* The same through a real file, with the message naming it. */
    CHECK(truncate(p, (off_t)n - 3) == 0);
    stfile *f = NULL;
    char err[256] = "";
    CHECK(st_open(p, &f, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, p) == err && strstr(err, "outside the data") != NULL);
    CHECK(st_open(path_in_dir("missing"), &f, err, sizeof err) == EX_KILN_IO);
}

/* A write that fails half-way leaves the earlier file as it was and no temp file. */
static void test_failed_write(void) {
    const char *p = path_in_dir("full.safetensors");
    CHECK(write_sample(p, 3) == 0);
    size_t before = files_in_dir();
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096; /* the new file needs 256 KB */
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    char err[256] = "";
    int rc = write_sample(p, 1 << 16);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc == EX_KILN_IO);
    CHECK(files_in_dir() == before);
    stfile *f = NULL;
    CHECK(st_open(p, &f, err, sizeof err) == 0);
    CHECK(f && st_find(f, "zeros") && st_find(f, "zeros")->shape[0] == 3);
    st_close(f);

    /* The message says what happened and names the target. */
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    afile *a = afile_open(p, err, sizeof err);
    static char big[8192];
    CHECK(a && !afile_write(a, big, sizeof big));
    rc = a ? afile_commit(a, err, sizeof err) : -1;
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc == EX_KILN_IO);
    CHECK(strstr(err, p) == err && strstr(err, "file too large") && strstr(err, "intact"));
    CHECK(files_in_dir() == before);

    /* A directory that does not exist. */
    CHECK(afile_write_all(path_in_dir("no/such/dir"), "x", 1, err, sizeof err) == EX_KILN_IO);
    CHECK(strstr(err, "cannot create temp file") != NULL);
    CHECK(afile_write_all(path_in_dir("latest"), "x\n", 2, err, sizeof err) == 0);
}

static void test_bad_entries(void) {
    char err[256];
    float x[2] = {0, 0};
    st_entry t[2] = {{"a", ktensor_1d(KT_F32, x, 2)}, {"a", ktensor_1d(KT_F32, x, 2)}};
    CHECK(st_write(path_in_dir("dup"), t, 2, NULL, 0, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, "twice") != NULL);
    t[1].name = "__metadata__";
    CHECK(st_write(path_in_dir("dup"), t, 2, NULL, 0, err, sizeof err) == EX_KILN_DATA);
    t[1].name = "b";
    t[1].t.nbytes = 4;
    CHECK(st_write(path_in_dir("dup"), t, 2, NULL, 0, err, sizeof err) == EX_KILN_DATA);
    CHECK(access(path_in_dir("dup"), F_OK) != 0);
}

/* Random damage to a valid file: every mutant is accepted or refused with 65, and an
 * accepted one only ever points inside its buffer (ASan watches the reads). */
static void test_mutations(void) {
    const char *p = path_in_dir("m.safetensors");
    CHECK(write_sample(p, 2) == 0);
    FILE *fp = fopen(p, "rb");
    uint8_t good[4096];
    size_t n = fp ? fread(good, 1, sizeof good, fp) : 0;
    if (fp) fclose(fp);
    krng r;
    krng_init(&r, 7, 0, 0, 0);
    size_t accepted = 0, bad_code = 0, escaped = 0;
    for (int trial = 0; trial < 3000; trial++) {
        uint8_t *b = malloc(n);
        memcpy(b, good, n);
        int flips = 1 + (int)krng_below(&r, 4);
        for (int k = 0; k < flips; k++) {
            size_t at = krng_below(&r, n > 200 ? 200 : n); /* mostly the header */
            b[at] = krng_below(&r, 2) ? (uint8_t)krng_u32(&r)
                                      : (uint8_t)(b[at] ^ (1u << krng_below(&r, 8)));
        }
        size_t len = krng_below(&r, 8) ? n : krng_below(&r, n + 1);
        stfile *f = NULL;
        char err[256];
        int rc = st_parse(b, len, "mutant", &f, err, sizeof err);
        if (rc == 0) {
            accepted++;
            for (size_t i = 0; i < st_count(f); i++) {
                const ktensor *t = st_tensor(f, i);
                const uint8_t *d = t->data;
                escaped += t->nbytes && (d < b || d + t->nbytes > b + len);
                for (size_t k = 0; k < t->nbytes; k++) sink ^= d[k]; /* touch every byte */
            }
        } else
            bad_code += rc != EX_KILN_DATA;
        st_close(f);
        free(b);
    }
    CHECK(bad_code == 0);
    CHECK(escaped == 0);
    CHECK(accepted < 3000); /* the damage is noticed, mostly */
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/kiln-st-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_round_trip();
    test_bad_headers();
    test_truncated();
    test_failed_write();
    test_bad_entries();
    test_mutations();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return check_report("safetensors");
}
