/* finetune — what fine-tuning adds to training: which tensors train (--freeze), the list of
 * trainable tensors the optimizer walks (model and LoRA tensors alike; frozen ones hold no
 * moments), and new class tokens (--add-class).  (The weights hash and the vocabulary growth are
 * lib/model/weights.h.)
 *
 * Freeze specs are comma-separated items:
 *   embeddings          transformer.wte.weight and transformer.wpe.weight
 *   wte, wpe, ln_f      those tensors
 *   blocks:A-B, blocks:N  every tensor of transformer.h.A .. h.B
 *   all-but-head        everything except the output head: ln_f, the tied wte (and
 *                       score.weight of a scalar head)
 *   NAME or PREFIX      a tensor, or every tensor under a module ("transformer.h.3.mlp")
 * An item that matches no tensor is an error (a misspelt layer must not silently train).
 */
#ifndef KILN_FINETUNE_H
#define KILN_FINETUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "data/json.h"
#include "model/lora.h"
#include "model/optim.h"
#include "data/tokenizer.h"

/* frozen[i] for each of m's tensors from a spec; false with the reason in err. */
bool ft_freeze_parse(const gpt *m, const char *spec, bool *frozen, char *err, size_t errsz);

/* The trainable tensors: m's tensors with !frozen[i] (frozen NULL: all), then every
 * adapter tensor of a (may be NULL).  Moments are laid out compactly in this order;
 * *total gets their sum.  Returns a malloc'd array of *n entries. */
kparam *ft_params(gpt *m, const bool *frozen, lora *a, int *n, size_t *total);

/* --add-class NAME[=FROM]: split into name and from (NULL when absent). */
typedef struct ft_new_class {
    char name[128], from[128];
    bool has_from;
} ft_new_class;
bool ft_new_class_parse(const char *arg, ft_new_class *c, char *err, size_t errsz);

/* Check that the stream's tokenizer is the checkpoint's (`ck_tok` from its metadata) with
 * the new classes appended: same kind, levels or palette, image shape, classes and vocab.
 * A new class the checkpoint already has, or a FROM it lacks, is an error too.
 * rows[k] gets the embedding row new class k starts from (FROM's token) or -1 for the
 * mean of the rows [mean[0], mean[1]): the base's class rows (all rows when it has none). */
bool ft_check_tokenizer(const jval *ck_tok, const ktokenizer *stream, const ft_new_class *add,
                        int n_add, int *rows, int mean[2], char *err, size_t errsz);

#endif
