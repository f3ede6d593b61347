/* fuzz_json — libFuzzer target: one JSON line as kiln load jsonl: and kiln import parse it
 * (lib/data/json.h json_parse), then packed as MessagePack (json_pack) (tests/fuzz/run.sh). */
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "data/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[300];
    jval *v = json_parse((const char *)data, size, 16, err, sizeof err);
    if (!v) return 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    json_pack(&pk, v);
    msgpack_sbuffer_destroy(&sb);
    json_free(v);
    return 0;
}
