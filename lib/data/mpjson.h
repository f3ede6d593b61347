/* mpjson — MessagePack values and records as JSON text (kiln show): numbers in their shortest
 * round-trip form, tensors as {dtype, shape, min, max, mean} or in full as {dtype, shape,
 * data} with nested arrays, binaries that are not tensors as {"$bin": BASE64} (kiln import
 * reads all of it back), and preference pairs as TRL's dataset lines. */
#ifndef KILN_MPJSON_H
#define KILN_MPJSON_H

#include <stdbool.h>
#include <stdio.h>

#include "stream/stream.h"

/* o as JSON on f; full: tensors with their data, else summarised.  Map keys that are not
 * strings are written as their JSON text, quoted.  Write errors are left in ferror(f). */
void mpjson_put(FILE *f, const msgpack_object *o, bool full);

/* {"prompt":...,"chosen":...,"rejected":...} and a newline when r has the three as text
 * fields; false, writing nothing, otherwise. */
bool mpjson_put_trl(FILE *f, const krec *r);

#endif
