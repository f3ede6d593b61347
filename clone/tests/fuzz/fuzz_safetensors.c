/* fuzz_safetensors — libFuzzer target: a checkpoint file's bytes (lib/ckpt/safetensors.h
 * st_parse), every tensor and metadata entry read back (tests/fuzz/run.sh). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ckpt/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    stfile *f;
    char err[512];
    if (st_parse(data, size, "fuzz.safetensors", &f, err, sizeof err) != 0) return 0;
    volatile size_t sum = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const ktensor *t = st_tensor(f, i);
        sum += strlen(st_name(f, i)) + t->nbytes;
        if (t->nbytes) sum += ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    for (size_t i = 0; i < st_meta_count(f); i++)
        sum += strlen(st_meta_key(f, i)) + strlen(st_meta_value(f, i));
    st_close(f);
    return 0;
}
