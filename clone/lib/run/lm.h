/* lm — the language-model objective: next-token cross-entropy on `batch` records
 * {x, y: I32 [B, T], mask: U8 [B, T] (optional, 1 = the target counts)}, the mean over
 * the counted positions.  What `kiln train` optimises (pretraining and fine-tuning). */
#ifndef KILN_LM_H
#define KILN_LM_H

#include "run/objective.h"

/* The objective; its state (batch buffers) is freed by obj->free. */
kobjective klm_objective(void);

#endif
