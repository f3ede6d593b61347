/* labelui — kiln label's terminal (lib/data/labelui.h). */
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "core/util.h"
#include "data/labelui.h"

typedef struct klabel_ui {
    SCREEN *scr;
    FILE *tty;
    bool colour256;
    char note[256]; /* the last thing that happened, shown above the progress line */
    int scroll;     /* wrapped rows of the completions scrolled past */
    bool more;      /* a completion goes on below the screen */
} klabel_ui;

/* ---- drawing ---------------------------------------------------------------------------- */

/* Text as wide characters: invalid UTF-8 as U+FFFD, tabs as a space, other controls '?'. */
static wchar_t *widen(const char *s, size_t n, size_t *out_n) {
    wchar_t *w = xmalloc(xmul(n + 1, sizeof *w));
    mbstate_t st = {0};
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        wchar_t c;
        size_t got = mbrtowc(&c, s + i, n - i, &st);
        if (got == (size_t)-1 || got == (size_t)-2 || got == 0) {
            c = got == 0 ? L'?' : 0xFFFD, got = 1;
            memset(&st, 0, sizeof st);
        }
        if (c == L'\t') c = L' ';
        if (c != L'\n' && (c < 32 || c == 127)) c = L'?';
        w[k++] = c;
        i += got;
    }
    *out_n = k;
    return w;
}

static int cell_width(wchar_t c) {
    int w = wcwidth(c);
    return w < 0 ? 1 : w;
}

/* Draw text wrapped into the box (y, x, h rows, w columns), its first `skip` wrapped rows
 * left out: lines break at newlines and, when too long, after the last space.  A text that
 * goes on below the box ends with "…" and sets *more.  Returns the rows drawn. */
static int draw_text(const char *s, size_t n, int y, int x, int h, int w, int skip, bool *more) {
    size_t len;
    wchar_t *t = widen(s, n, &len);
    size_t i = 0;
    int row = -skip;
    for (; row < h && i < len; row++) {
        size_t end = i, brk = i;
        int cols = 0;
        while (end < len && t[end] != L'\n' && cols + cell_width(t[end]) <= w) {
            cols += cell_width(t[end]);
            if (t[end] == L' ') brk = end;
            end++;
        }
        size_t next = end;
        if (end < len && t[end] == L'\n')
            next = end + 1;
        else if (end < len && brk > i)
            end = brk, next = brk + 1; /* the space at the break is not drawn */
        else if (end == i)
            end = next = i + 1; /* a character wider than the box */
        if (row >= 0) mvaddnwstr(y + row, x, t + i, (int)(end - i));
        if (row == h - 1 && next < len) {
            mvaddwstr(y + row, x + (w > 1 ? w - 1 : 0), L"\u2026");
            *more = true;
        }
        i = next;
    }
    free(t);
    return row > 0 ? row : 0;
}

/* The xterm 256-colour index nearest an RGB colour: the 6x6x6 cube or the gray ramp. */
static int xterm256(int r, int g, int b) {
    static const int level[6] = {0, 95, 135, 175, 215, 255};
    int q[3], v[3] = {r, g, b}, dc = 0;
    for (int i = 0; i < 3; i++) {
        q[i] = v[i] < 48 ? 0 : v[i] < 115 ? 1 : (v[i] - 35) / 40;
        int d = v[i] - level[q[i]];
        dc += d * d;
    }
    int avg = (r + g + b) / 3, gi = avg > 238 ? 23 : avg < 8 ? 0 : (avg - 3) / 10;
    int gl = 8 + 10 * gi, dg = (r - gl) * (r - gl) + (g - gl) * (g - gl) + (b - gl) * (b - gl);
    return dg < dc ? 232 + gi : 16 + 36 * q[0] + 6 * q[1] + q[2];
}

static void pixel(const kimage *im, int y, int x, int rgb[3]) {
    const uint8_t *p = im->data + ((size_t)y * (size_t)im->w + (size_t)x) * (size_t)im->c;
    bool gray = im->c < 3;
    for (int i = 0; i < 3; i++) rgb[i] = p[gray ? 0 : i];
}

/* One cell: the upper pixel as the foreground of an upper half block, the lower as its
 * background; without 256 colours a shade of their mean brightness. */
static void draw_cell(const klabel_ui *U, int y, int x, const int top[3], const int bot[3]) {
    cchar_t cc;
    if (U->colour256) {
        int pairno = alloc_pair(xterm256(top[0], top[1], top[2]), xterm256(bot[0], bot[1], bot[2]));
        if (pairno >= 0) {
            setcchar(&cc, L"\u2580", A_NORMAL, 0, &pairno);
            mvadd_wch(y, x, &cc);
            return;
        }
    }
    static const wchar_t *shades[5] = {L" ", L"\u2591", L"\u2592", L"\u2593", L"\u2588"};
    int lum = (top[0] + top[1] + top[2] + bot[0] + bot[1] + bot[2]) / 6;
    setcchar(&cc, shades[lum * 5 / 256], A_NORMAL, 0, NULL);
    mvadd_wch(y, x, &cc);
}

/* An image scaled (nearest pixel, at most 4x) to fit h rows of w columns, two pixel rows a
 * cell. */
static void draw_image(const klabel_ui *U, const kimage *im, int y, int x, int h, int w) {
    double s = (double)w / im->w, sy = 2.0 * h / im->h;
    s = sy < s ? sy : s;
    s = s > 4 ? 4 : s;
    int ow = (int)(im->w * s), oh = (int)(im->h * s);
    if (ow < 1 || oh < 1) return;
    for (int cy = 0; 2 * cy < oh; cy++)
        for (int cx = 0; cx < ow; cx++) {
            int top[3], bot[3] = {0, 0, 0};
            int sx = (int)(cx / s);
            pixel(im, (int)(2 * cy / s), sx, top);
            if (2 * cy + 1 < oh) pixel(im, (int)((2 * cy + 1) / s), sx, bot);
            draw_cell(U, y + cy, x + cx, top, bot);
        }
}

static void draw_completion(klabel_ui *U, const klabel_completion *c, int y, int x, int h, int w) {
    if (c->text)
        draw_text(c->text, c->len, y, x, h, w, U->scroll, &U->more);
    else
        draw_image(U, &c->im, y, x, h, w);
}

static void draw_progress(const klabeller *S, const klabel_ui *U) {
    uint64_t n[4];
    size_t done = klabeller_decided(S, n);
    mvprintw(LINES - 2, 0, "%.*s", COLS, U->note);
    static const wchar_t scroll[] = L"\u2193/j \u2191/k space: scroll";
    int sw = (int)wcslen(scroll);
    if ((U->more || U->scroll) && COLS > sw + 40) mvaddwstr(LINES - 2, COLS - sw, scroll);
    attron(A_REVERSE);
    mvhline(LINES - 1, 0, ' ', COLS);
    mvprintw(LINES - 1, 0, " %zu of %zu labelled  (left %llu, right %llu, tie %llu, skip %llu)",
             done, S->np, (unsigned long long)n[0], (unsigned long long)n[1],
             (unsigned long long)n[2], (unsigned long long)n[3]);
    /* The keys at the right end when they fit, else on the top line's right. */
    static const wchar_t keys[] =
        L"1/\u2190/h left  2/\u2192/l right  t tie  s skip  u undo  q quit ";
    int kw = (int)wcslen(keys), y, x;
    getyx(stdscr, y, x);
    if (y == LINES - 1 && x + 2 + kw <= COLS) mvaddwstr(LINES - 1, COLS - kw, keys);
    attroff(A_REVERSE);
    if (y == LINES - 1 && x + 2 + kw > COLS && COLS >= kw + 40) mvaddwstr(0, COLS - kw, keys);
}

static void draw_pair(const klabeller *S, klabel_ui *U, const klabel_pair *p) {
    const klabel_group *G = &S->g[p->g];
    int half = (COLS - 3) / 2, body = LINES - 4;
    attron(A_BOLD);
    mvprintw(0, 0, "prompt %llu, completions %llu and %llu", (unsigned long long)G->id,
             (unsigned long long)p->key.a, (unsigned long long)p->key.b);
    attroff(A_BOLD);
    bool cut; /* a long prompt is cut (…); the completions scroll */
    int ph = draw_text(G->prompt, G->plen, 1, 2, body / 3 > 1 ? body / 3 : 1, COLS - 2, 0, &cut);
    int top = 1 + (ph ? ph : 1);
    mvhline(top, 0, ACS_HLINE, COLS);
    attron(A_BOLD);
    mvprintw(top + 1, 0, "[1] left (k %llu)", (unsigned long long)p->key.a);
    mvprintw(top + 1, half + 3, "[2] right (k %llu)", (unsigned long long)p->key.b);
    attroff(A_BOLD);
    int h = LINES - 2 - (top + 2);
    U->more = false;
    mvvline(top + 1, half + 1, ACS_VLINE, h + 1);
    draw_completion(U, &G->c[p->a], top + 2, 0, h, half);
    draw_completion(U, &G->c[p->b], top + 2, half + 3, h, half);
}

static void draw(const klabeller *S, klabel_ui *U, long cur) {
    erase();
    if (LINES < 8 || COLS < 30)
        mvprintw(0, 0, "terminal too small (%dx%d): 30x8 at least", COLS, LINES);
    else if (cur < 0)
        mvprintw(1, 2, "Every pair is labelled.  q: write the preferences and quit;  u: undo.");
    else
        draw_pair(S, U, &S->p[cur]);
    if (LINES >= 3) draw_progress(S, U);
    refresh();
}

/* ---- the terminal ----------------------------------------------------------------------- */

/* Curses on /dev/tty: the records keep stdin and stdout.  Exits 2 without a terminal. */
static bool ui_open(klabel_ui *U, char *err, size_t errsz) {
    setlocale(LC_ALL, "");
    if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8"); /* kiln's texts are UTF-8 whatever the locale says */
    U->tty = fopen("/dev/tty", "r+");
    if (!U->tty) {
        snprintf(err, errsz,
                 "no terminal (/dev/tty: %s): kiln label needs a person at a terminal "
                 "(--export writes the labels already given without one)",
                 strerror(errno));
        return false;
    }
    U->scr = newterm(NULL, U->tty, U->tty);
    if (!U->scr) {
        const char *t = getenv("TERM");
        snprintf(err, errsz, "TERM=%s: a terminal type terminfo does not know", t ? t : "");
        fclose(U->tty);
        return false;
    }
    cbreak(); /* keys at once; Ctrl-C still a signal, which ends the session cleanly */
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(50);
    timeout(200); /* wake up to notice a stop signal */
    U->colour256 = has_colors() && start_color() == OK && COLORS >= 256;
    if (U->colour256) use_default_colors();
    return true;
}

static void ui_close(klabel_ui *U) {
    if (!U->scr) return;
    endwin();
    delscreen(U->scr);
    fclose(U->tty);
    U->scr = NULL;
}

static klabel_choice key_choice(int ch) {
    switch (ch) {
    case '1':
    case 'h':
    case KEY_LEFT:
        return KLABEL_LEFT;
    case '2':
    case 'l':
    case KEY_RIGHT:
        return KLABEL_RIGHT;
    case 't':
        return KLABEL_TIE;
    case 's':
        return KLABEL_SKIP;
    default:
        return KLABEL_NONE;
    }
}

/* Undo the last decision and go back to its pair. */
static long undo(klabeller *S, klabel_ui *U, long cur, char *err, size_t errsz, int *rc) {
    klabel_key k;
    *rc = klabels_undo(S->L, &k, err, errsz);
    if (*rc == 1) {
        *rc = 0;
        snprintf(U->note, sizeof U->note, "nothing to undo");
        return cur;
    }
    long back = klabeller_find(S, &k);
    snprintf(U->note, sizeof U->note, "undid prompt %llu (%llu vs %llu)%s",
             (unsigned long long)k.id, (unsigned long long)k.a, (unsigned long long)k.b,
             back < 0 ? ", a pair of another input" : "");
    return back < 0 ? cur : back;
}

/* Show pairs and record keys until q, a stop signal or an error (returns 74 and err). */
static int session(klabeller *S, klabel_ui *U, char *err, size_t errsz) {
    long cur = klabeller_next(S, 0), shown = -2;
    int rc = 0;
    while (!rc && !kiln_stop_signal()) {
        if (cur != shown && cur >= 0 && S->png_dir &&
            (rc = klabeller_write_pngs(S, &S->p[cur], err, errsz)))
            break;
        if (cur != shown) U->scroll = 0, draw(S, U, cur), shown = cur;
        int ch = getch();
        klabel_choice c = key_choice(ch);
        if (ch == 'q') break;
        int page = LINES > 12 ? LINES - 12 : 1, by = 0;
        if (ch == KEY_DOWN || ch == 'j') by = 1;
        if (ch == KEY_UP || ch == 'k') by = -1;
        if (ch == ' ' || ch == KEY_NPAGE) by = page;
        if (ch == 'b' || ch == KEY_PPAGE) by = -page;
        if (ch == KEY_RESIZE) {
            draw(S, U, cur);
        } else if (by) {
            if (by < 0 || U->more) U->scroll = U->scroll + by > 0 ? U->scroll + by : 0;
            draw(S, U, cur);
        } else if (ch == 'u') {
            cur = undo(S, U, cur, err, errsz, &rc), shown = -2;
        } else if (c != KLABEL_NONE && cur >= 0) {
            const klabel_key *k = &S->p[cur].key;
            rc = klabels_add(S->L, k, c, err, errsz);
            S->p[cur].now = true;
            snprintf(U->note, sizeof U->note, "prompt %llu (%llu vs %llu): %s",
                     (unsigned long long)k->id, (unsigned long long)k->a, (unsigned long long)k->b,
                     klabel_name(c));
            cur = klabeller_next(S, (size_t)cur + 1), shown = -2;
        }
    }
    return rc;
}
int klabel_ui_run(klabeller *S, char *err, size_t errsz) {
    klabel_ui U = {0};
    if (!ui_open(&U, err, errsz)) return EX_KILN_USAGE;
    int rc = session(S, &U, err, errsz);
    ui_close(&U);
    return rc;
}
