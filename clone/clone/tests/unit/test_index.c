/* test_index — an embedding index written and read back (lib/ckpt/index.h), every row,
 * text and label intact; files that are not an index are refused with 65. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ckpt/index.h"
#include "ckpt/safetensors.h"
#include "core/util.h"

int main(void) {
    char path[] = "/tmp/kiln-test-index-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    kindex *ix = kindex_new(3);
    for (int i = 0; i < 600; i++) { /* past the first growth */
        float v[3] = {(float)i, -1.0f * i, 0.5f};
        char text[32];
        int n = snprintf(text, sizeof text, "row \"%d\"\n", i);
        kindex_add(ix, 1000 + i, v, i % 7 ? text : NULL, (size_t)n, "cat", i % 2 ? 3 : 0);
    }
    snprintf(ix->model, sizeof ix->model, "fnv1a64:0123456789abcdef");
    char err[256];
    CHECK(kindex_write(ix, path, err, sizeof err) == 0);
    kindex *back = NULL;
    CHECK(kindex_read(path, &back, err, sizeof err) == 0);
    CHECK(back && back->n == 600 && back->dim == 3);
    CHECK(back && !strcmp(back->model, ix->model) && !strcmp(back->pool, "mean"));
    for (int i = 0; back && i < 600; i++) {
        CHECK(back->ids[i] == 1000 + i);
        CHECK(back->vectors[i * 3 + 1] == -1.0f * i);
        CHECK(!strcmp(back->texts[i], ix->texts[i]));
        CHECK(!strcmp(back->labels[i], i % 2 ? "cat" : ""));
    }
    kindex_free(back);
    kindex_free(ix);

    /* a safetensors file that is not an index */
    float x[2] = {1, 2};
    st_entry t = {"vectors", ktensor_make(KT_F32, x, 1, (uint64_t[]){2})};
    CHECK(st_write(path, &t, 1, NULL, 0, err, sizeof err) == 0);
    CHECK(kindex_read(path, &back, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, "not a kiln index") != NULL);
    unlink(path);
    CHECK(kindex_read(path, &back, err, sizeof err) == EX_KILN_IO);
    return check_report("test_index");
}
