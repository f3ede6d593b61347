/* labelui — kiln label's terminal: curses on /dev/tty (the records keep stdin and stdout),
 * the prompt above two completions side by side (text wrapped and scrolled, images in
 * colour as half blocks: xterm's 256 colours, else shades), a progress line, and the keys:
 * 1/h/left, 2/l/right, t tie, s skip, u undo, q quit, j/k and space/b to scroll.  Each
 * decision goes to the label file (lib/data/labelfile.h: fsync'd) before the next pair is
 * shown.  The only module that includes curses.h; kiln-label alone links ncurses. */
#ifndef KILN_LABELUI_H
#define KILN_LABELUI_H

#include <stddef.h>

#include "data/labeller.h"

/* Show S's open pairs (klabeller_next) and record decisions until q, every pair decided
 * and q, or a stop signal.  0; 2 when there is no terminal (or TERM is unknown); 74 when
 * the label file or --png-dir cannot be written; the message in err.  The terminal is
 * restored before it returns. */
int klabel_ui_run(klabeller *S, char *err, size_t errsz);

#endif
