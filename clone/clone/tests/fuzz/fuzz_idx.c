/* fuzz_idx — libFuzzer target: an IDX file (MNIST's format, gzipped or not) read by
 * lib/data/idx.h kidx_read from a memory file, bounded to 64 MiB (tests/fuzz/run.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.idx", 0);
        if (fd < 0) return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) return 0;
    kidx x;
    char err[400];
    if (kidx_read(path, 64u << 20, &x, err, sizeof err)) {
        if (x.count && x.item_bytes) {
            volatile uint8_t last = x.data[x.count * x.item_bytes - 1];
            (void)last;
        }
        kidx_free(&x);
    }
    return 0;
}
