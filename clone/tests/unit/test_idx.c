/* test_idx — plain and gzipped IDX files read back; wrong magic, unsupported type, short
 * header, short data, bytes after the data, a size of 0 and oversized declarations fail
 * with a clear reason. */
#include "check.h"
#include "data/idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char path[] = "/tmp/kiln-test-idx-XXXXXX";
static char err[256];

static void write_plain(const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void write_gz(const uint8_t *b, size_t n) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
}

int main(void) {
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    /* 3 images of 2x2. */
    uint8_t file[4 + 12 + 12] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    for (int i = 0; i < 12; i++) file[16 + i] = (uint8_t)(i * 20);
    kidx x;
    for (int gz = 0; gz < 2; gz++) {
        (gz ? write_gz : write_plain)(file, sizeof file);
        CHECK(kidx_read(path, 1 << 20, &x, err, sizeof err));
        CHECK(x.ndim == 3 && x.count == 3 && x.item_bytes == 4 && x.dims[1] == 2);
        CHECK(x.data && memcmp(x.data, file + 16, 12) == 0);
        kidx_free(&x);
        /* Short data. */
        (gz ? write_gz : write_plain)(file, sizeof file - 1);
        CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err));
        CHECK(strstr(err, "short data") && strstr(err, "12 bytes") && strstr(err, "has 11"));
    }
    /* Bytes after the data the header promises, and a size of 0: refused (issue 15). */
    uint8_t longer[sizeof file + 3];
    memcpy(longer, file, sizeof file);
    memset(longer + sizeof file, 7, 3);
    for (int gz = 0; gz < 2; gz++) {
        (gz ? write_gz : write_plain)(longer, sizeof longer);
        CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err) && strstr(err, "bytes after the 12"));
    }
    uint8_t zero[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2};
    write_plain(zero, sizeof zero);
    CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err) && strstr(err, "size 2 of 3 is 0"));
    /* Labels: 1 dimension. */
    uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 7, 9};
    write_gz(labels, sizeof labels);
    CHECK(kidx_read(path, 1 << 20, &x, err, sizeof err));
    CHECK(x.ndim == 1 && x.count == 2 && x.item_bytes == 1 && x.data[1] == 9);
    kidx_free(&x);
    /* Wrong magic (a PNG signature), unsupported type, short header, too large. */
    uint8_t png[] = {0x89, 'P', 'N', 'G', 0, 0, 0, 0};
    write_plain(png, sizeof png);
    CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err) && strstr(err, "wrong magic"));
    uint8_t floats[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    write_plain(floats, sizeof floats);
    CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err) && strstr(err, "0x0d not supported"));
    write_plain(file, 9);
    CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err) && strstr(err, "short header"));
    write_plain(file, 2);
    CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err) && strstr(err, "short header"));
    uint8_t huge[] = {0,    0,    8,    3,    0xff, 0xff, 0xff, 0xff,
                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_plain(huge, sizeof huge);
    CHECK(!kidx_read(path, 1ull << 40, &x, err, sizeof err) && strstr(err, "over the limit"));
    /* Corrupt gzip: a valid gzip header followed by garbage. */
    uint8_t badgz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_plain(badgz, sizeof badgz);
    CHECK(!kidx_read(path, 1 << 20, &x, err, sizeof err));
    CHECK(!kidx_read("/nonexistent/idx", 1 << 20, &x, err, sizeof err) &&
          strstr(err, "cannot open"));
    unlink(path);
    return check_report("idx");
}
