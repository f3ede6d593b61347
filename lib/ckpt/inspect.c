/* inspect — a checkpoint as text (lib/ckpt/inspect.h). */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "ckpt/inspect.h"

uint32_t kckpt_crc32(const void *data, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef *p = data;
    for (size_t chunk; n > 0; p += chunk, n -= chunk) { /* zlib takes 32-bit lengths */
        chunk = n > (1u << 30) ? (1u << 30) : n;
        crc = crc32(crc, p, (uInt)chunk);
    }
    return (uint32_t)crc;
}

static void print_tensors(FILE *out, const stfile *f) {
    for (size_t i = 0; i < st_count(f); i++) {
        const ktensor *t = st_tensor(f, i);
        char shape[200] = "[";
        for (int d = 0; d < t->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", d ? ", " : "",
                     (unsigned long long)t->shape[d]);
        strcat(shape, "]");
        fprintf(out, "  %-40s %-4s %-16s crc32 %08x\n", st_name(f, i), kdtype_name(t->dtype), shape,
                kckpt_crc32(t->data, t->nbytes));
    }
}

void kckpt_inspect(FILE *out, const char *path, const kckpt *ck) {
    size_t nbytes;
    const void *data = st_data(ck->file, &nbytes);
    uint64_t params = 0;
    for (size_t i = 0; i < st_count(ck->file); i++) {
        uint64_t k = 0;
        ktensor_numel(st_tensor(ck->file, i), &k);
        params += k;
    }
    fprintf(out, "file       %s\n", path);
    for (size_t i = 0; i < st_meta_count(ck->file); i++)
        fprintf(out, "%-10s %s\n", st_meta_key(ck->file, i), st_meta_value(ck->file, i));
    fprintf(out, "tensors    %zu, %llu parameters, %zu bytes, crc32 %08x\n", st_count(ck->file),
            (unsigned long long)params, nbytes, kckpt_crc32(data, nbytes));
    print_tensors(out, ck->file);
    if (ck->optim) {
        data = st_data(ck->optim, &nbytes);
        fprintf(out, "optimizer  step %llu, lr %g, %zu tensors, %zu bytes, crc32 %08x\n",
                (unsigned long long)ck->optim_step, ck->lr, st_count(ck->optim), nbytes,
                kckpt_crc32(data, nbytes));
        print_tensors(out, ck->optim);
    }
}