/* judge — the built-in judges of kiln judge: scores of a completion from its text, tokens or
 * image, without a model (docs/stages-rlhf.md):
 *   afinn       the valence of its words from a lexicon (AFINN-165: "phrase<TAB>score"
 *               lines), the mean per word (every word counts, 0 for most) or the sum;
 *   words       the share of its words found in a word list (one word a line:
 *               /usr/share/dict/words);
 *   repetition  minus the share of its token n-grams that already appeared in it;
 *   length      minus its distance from a target length, relative to the target;
 *   brightness  an image's mean pixel value over 255, in [0, 1];
 *   a program   any command's number for the text (kjudge_cmd: kiln judge --cmd).
 * Words are runs of letters, digits, bytes >= 0x80 (UTF-8) and inner apostrophes, ASCII
 * lower-cased; a hyphen separates words, so the lexicon's "cover-up" is the phrase "cover
 * up".  A lexicon phrase of several words matches the longest run of words first. */
#ifndef KILN_JUDGE_H
#define KILN_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct kjudge_lexicon kjudge_lexicon;

/* Load a lexicon: `scored` lines "phrase<TAB>number" (AFINN), else one word a line; blank
 * lines and lines starting with '#' skipped.  NULL with a message in err (naming path:line)
 * for an unreadable file (*code 74) or a malformed line or an empty list (*code 65). */
kjudge_lexicon *kjudge_lexicon_load(const char *path, bool scored, int *code, char *err,
                                    size_t errsz);
void kjudge_lexicon_free(kjudge_lexicon *x);
size_t kjudge_lexicon_size(const kjudge_lexicon *x);

/* The valence of text: the sum of its phrases' scores, or that sum over its word count
 * (mean; 0 for text without words). */
double kjudge_valence(const kjudge_lexicon *x, const char *text, size_t n, bool mean);
/* The share of text's words that are in the list (0 for text without words). */
double kjudge_known_share(const kjudge_lexicon *x, const char *text, size_t n);
/* Words in text. */
size_t kjudge_word_count(const char *text, size_t n);

/* -(n-grams of `ngram` tokens seen earlier in tok) / (n-grams in tok): 0 for no repeat, near
 * -1 for one token over and over; 0 when tok is shorter than ngram. */
double kjudge_repetition(const int32_t *tok, int n, int ngram);
/* -|n - target| / target. */
double kjudge_length(int n, int target);
/* Mean of a U8 image's values / 255; -1 when it is not a U8 tensor. */
double kjudge_brightness(const ktensor *image);

/* The number a program gives a completion: `sh -c cmd` with text on its stdin and
 * KILN_PROMPT (when prompt is not NULL), KILN_ID and KILN_K in its environment, SIGPIPE at
 * its default; the text is written while its output is read (poll), so a program may answer
 * as it reads.  The score is its output's last line (what it printed before is ignored).
 * 0 with *score; 74 when it cannot be run, exits non-zero or is killed, 65 when its last
 * line is no finite number (the message in err names the command). */
int kjudge_cmd(const char *cmd, const char *prompt, size_t prompt_n, uint64_t id, uint64_t k,
               const char *text, size_t n, double *score, char *err, size_t errsz);

#endif
