/* kiln-label — a person's preferences between two completions of a prompt, at a terminal:
 * rollout records in, `pref` records out (docs/stages-rlhf.md, "kiln label").  Every decision
 * is on disk (lib/data/labelfile.h) before the next pair is shown. */
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "core/afile.h"
#include "data/labelfile.h"
#include "data/png.h"
#include "data/rlhf.h"
#include "data/sample.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "label pairs of completions at a terminal: pref records out",
    .usage = "kiln label --labels FILE [--all-pairs] [--shuffle] [--skipped] [--png-dir DIR]\n"
             "                  [--export] [--in URL] [--out URL]",
    .text =
        "Reads rollout records (kiln rollout); consecutive records with the same id are one\n"
        "prompt's completions.  Shows each pair on the terminal (/dev/tty, so the records can\n"
        "come on stdin): the prompt, the two completions side by side (images in colour with\n"
        "half blocks).  Keys: 1, h or left arrow: left is better; 2, l or right arrow: right;\n"
        "t tie; s skip; u undo the last decision; q quit; j/k, space/b scroll.\n"
        "Each decision is appended to the --labels file and fsync'd at once; a restart with the\n"
        "same file shows only the pairs not yet decided.  At the end (q, all decided, or\n"
        "Ctrl-C) a pref record (by \"person\") goes out for every pair of the input decided left\n"
        "or right, in the earlier sessions too; ties and skips stay in the label file only.\n",
    .notes = "exit codes: 2 no terminal to label on (pass --export to write what is labelled);\n"
             "65 no rollout records, or a rollout without id/prompt/completion; 74 the label\n"
             "file cannot be written.\n"
             "example:\n"
             "  kiln rollout ... > roll.rec\n"
             "  kiln label --labels labels.jsonl < roll.rec > prefs.rec\n"
             "  kiln show --trl < prefs.rec > prefs.jsonl    # TRL's prompt/chosen/rejected\n",
};

/* ---- the input: prompts and their completions ------------------------------------------- */

typedef struct completion {
    kstored *rec;
    uint64_t k;
    const char *text; /* the completion text, or NULL for an image rollout */
    size_t len;
    kimage im; /* image rollouts */
} completion;

typedef struct group {
    uint64_t id;
    const char *prompt; /* prompt text, or an image rollout's label */
    size_t plen;
    completion *c;
    int n;
} group;

typedef struct pair {
    int g, a, b; /* group, left and right completion */
    klabel_key key;
    bool now; /* decided in this session (--skipped shows a pair skipped again no more) */
} pair;

typedef struct labeller {
    group *g;
    int ng;
    pair *p;
    size_t np;
    uint64_t lonely, others; /* prompts with one completion; records that are not rollouts */
    klabels *L;
    const char *png_dir;
    bool shuffle; /* --shuffle: which completion goes left is drawn from the pair's texts */
    bool skipped; /* --skipped: pairs skipped in earlier sessions are shown again */
} labeller;

_Noreturn static void bad_rollout(const krec *r, const char *what) {
    kiln_die(EX_KILN_DATA, "record %llu: a rollout without %s", (unsigned long long)r->seq, what);
}

/* A rollout record kept as one completion of its prompt's group. */
static void add_rollout(labeller *S, const krec *in) {
    uint64_t id;
    if (!krec_u64(in, KRL_ID, &id)) bad_rollout(in, "an id (u64)");
    kstored *st = kstored_copy(in);
    const krec *r = &st->rec;
    completion c = {.rec = st};
    bool image = krec_image(r, &c.im); /* an image model's rollout: its image is the completion */
    if (image || !krec_str(r, KRL_COMPLETION, &c.text, &c.len)) c.text = NULL, c.len = 0;
    if (!image && !c.text) bad_rollout(in, "a completion (text) or an image");
    group *last = S->ng ? &S->g[S->ng - 1] : NULL;
    if (!last || last->id != id) {
        S->g = xrealloc(S->g, xmul((size_t)S->ng + 1, sizeof *S->g));
        last = &S->g[S->ng++];
        *last = (group){.id = id};
        if (!(image && krec_str(r, KRL_LABEL, &last->prompt, &last->plen)) &&
            !krec_str(r, KRL_PROMPT, &last->prompt, &last->plen) &&
            !krec_str(r, KRL_LABEL, &last->prompt, &last->plen))
            bad_rollout(in, "a prompt (text) or a label");
    }
    c.k = krec_u64_or(r, KRL_K, (uint64_t)last->n);
    last->c = xrealloc(last->c, xmul((size_t)last->n + 1, sizeof *last->c));
    last->c[last->n++] = c;
}

static void completion_bytes(const completion *c, const void **p, size_t *n) {
    *p = c->text ? (const void *)c->text : c->im.data;
    *n = c->text ? c->len : kimage_bytes(&c->im);
}

static klabel_key pair_key(const group *G, int a, int b) {
    const void *pieces[3] = {G->prompt};
    size_t lens[3] = {G->plen};
    completion_bytes(&G->c[a], &pieces[1], &lens[1]);
    completion_bytes(&G->c[b], &pieces[2], &lens[2]);
    return (klabel_key){G->id, G->c[a].k, G->c[b].k, klabel_hash(pieces, lens, 3)};
}

/* With --shuffle the hash of the pair's texts says which goes left: the same in every
 * session, and half of the first completions on the right. */
static void add_pair(labeller *S, int g, int a, int b) {
    klabel_key key = pair_key(&S->g[g], a, b);
    if (S->shuffle && key.hash >> 63) {
        int t = a;
        a = b, b = t;
        key = pair_key(&S->g[g], a, b);
    }
    S->p = xrealloc(S->p, xmul(S->np + 1, sizeof *S->p));
    S->p[S->np++] = (pair){g, a, b, key, false};
}

/* Pairs (0,1) of each prompt, or every pair with all_pairs. */
static void make_pairs(labeller *S, bool all_pairs) {
    for (int g = 0; g < S->ng; g++) {
        int n = S->g[g].n;
        if (n < 2) S->lonely++;
        for (int a = 0; a + 1 < n && (all_pairs || a == 0); a++)
            for (int b = a + 1; b < n && (all_pairs || b == 1); b++) add_pair(S, g, a, b);
    }
}

/* ---- the output ------------------------------------------------------------------------- */

static void put_tokens(kwriter *w, const krec *r, const char *from, const char *to) {
    ktensor t;
    if (krec_tensor(r, from, &t)) kw_tensor(w, to, &t);
}

static void put_side(kwriter *w, const completion *c, const char *name) {
    char key[32];
    kw_strn(w, name, c->text ? c->text : "", c->len); /* images: empty, as kiln judge writes */
    if (!c->text) {
        ktensor t;
        krec_tensor(&c->rec->rec, KRL_IMAGE, &t);
        snprintf(key, sizeof key, "%s_image", name);
        kw_tensor(w, key, &t);
    }
    snprintf(key, sizeof key, "%s_k", name);
    kw_u64(w, key, c->k);
    snprintf(key, sizeof key, "%s_tokens", name);
    put_tokens(w, &c->rec->rec, KRL_COMPLETION_TOKENS, key);
}

static void write_pref(kwriter *w, const group *G, const completion *won, const completion *lost) {
    const krec *r = &won->rec->rec;
    kwriter_begin(w, KPREF);
    kw_u64(w, KRL_ID, G->id);
    const msgpack_object *o;
    if ((o = krec_get(r, KRL_EPOCH))) kw_obj(w, KRL_EPOCH, o);
    if ((o = krec_get(r, KRL_SRC))) kw_obj(w, KRL_SRC, o);
    kw_strn(w, KRL_PROMPT, G->prompt, G->plen);
    put_side(w, won, KPREF_CHOSEN);
    put_side(w, lost, KPREF_REJECTED);
    kw_str(w, KPREF_BY, "person");
    put_tokens(w, r, KRL_PROMPT_TOKENS, KRL_PROMPT_TOKENS);
    kwriter_end(w);
}

/* A pref record for every pair of the input decided left or right. */
static uint64_t write_prefs(const labeller *S, kwriter *w) {
    uint64_t n = 0;
    for (size_t i = 0; i < S->np; i++) {
        const pair *p = &S->p[i];
        klabel_choice c = klabels_find(S->L, &p->key);
        if (c != KLABEL_LEFT && c != KLABEL_RIGHT) continue;
        const group *G = &S->g[p->g];
        const completion *l = &G->c[p->a], *r = &G->c[p->b];
        write_pref(w, G, c == KLABEL_LEFT ? l : r, c == KLABEL_LEFT ? r : l);
        n++;
    }
    return n;
}

/* Decided pairs of this input, by kind (KLABEL_LEFT..KLABEL_SKIP); returns their sum. */
static size_t decided(const labeller *S, uint64_t counts[4]) {
    memset(counts, 0, 4 * sizeof *counts);
    size_t n = 0;
    for (size_t i = 0; i < S->np; i++) {
        klabel_choice c = klabels_find(S->L, &S->p[i].key);
        if (c != KLABEL_NONE) counts[c]++, n++;
    }
    return n;
}

/* ---- drawing ---------------------------------------------------------------------------- */

typedef struct ui {
    SCREEN *scr;
    FILE *tty;
    bool colour256;
    char note[256]; /* the last thing that happened, shown above the progress line */
    int scroll;     /* wrapped rows of the completions scrolled past */
    bool more;      /* a completion goes on below the screen */
} ui;

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
static void draw_cell(const ui *U, int y, int x, const int top[3], const int bot[3]) {
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
static void draw_image(const ui *U, const kimage *im, int y, int x, int h, int w) {
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

static void draw_completion(ui *U, const completion *c, int y, int x, int h, int w) {
    if (c->text)
        draw_text(c->text, c->len, y, x, h, w, U->scroll, &U->more);
    else
        draw_image(U, &c->im, y, x, h, w);
}

static void draw_progress(const labeller *S, const ui *U) {
    uint64_t n[4];
    size_t done = decided(S, n);
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

static void draw_pair(const labeller *S, ui *U, const pair *p) {
    const group *G = &S->g[p->g];
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

static void draw(const labeller *S, ui *U, long cur) {
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
static bool ui_open(ui *U, char *err, size_t errsz) {
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

static void ui_close(ui *U) {
    if (!U->scr) return;
    endwin();
    delscreen(U->scr);
    fclose(U->tty);
    U->scr = NULL;
}

/* ---- the session ------------------------------------------------------------------------ */

/* The first pair to show from `from` on, wrapping: undecided, or with --skipped skipped
 * before this session; -1 when there is none. */
static long next_open(const labeller *S, size_t from) {
    for (size_t i = 0; i < S->np; i++) {
        size_t j = (from + i) % S->np;
        klabel_choice c = klabels_find(S->L, &S->p[j].key);
        if (c == KLABEL_NONE || (S->skipped && c == KLABEL_SKIP && !S->p[j].now)) return (long)j;
    }
    return -1;
}

static long pair_index(const labeller *S, const klabel_key *key) {
    for (size_t i = 0; i < S->np; i++)
        if (!memcmp(&S->p[i].key, key, sizeof *key)) return (long)i;
    return -1;
}

/* The pair's images as DIR/left.png and DIR/right.png, replaced atomically, for a viewer.
 * 0, or 74 with the message in err (the session ends and the terminal is restored). */
static int write_pngs(const labeller *S, const pair *p, char *err, size_t errsz) {
    const group *G = &S->g[p->g];
    const completion *side[2] = {&G->c[p->a], &G->c[p->b]};
    static const char *const names[2] = {"left.png", "right.png"};
    for (int i = 0; i < 2; i++) {
        if (side[i]->text) continue;
        char path[4096], why[512];
        snprintf(path, sizeof path, "%s/%s", S->png_dir, names[i]);
        afile *a = afile_open(path, why, sizeof why);
        if (a && !kpng_write_file(afile_temp_path(a), &side[i]->im, why, sizeof why)) {
            afile_abort(a);
            a = NULL;
        }
        if (!a || afile_commit(a, why, sizeof why))
            return kiln_errf(err, errsz, EX_KILN_IO, "--png-dir: %s", why);
    }
    return 0;
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
static long undo(labeller *S, ui *U, long cur, char *err, size_t errsz, int *rc) {
    klabel_key k;
    *rc = klabels_undo(S->L, &k, err, errsz);
    if (*rc == 1) {
        *rc = 0;
        snprintf(U->note, sizeof U->note, "nothing to undo");
        return cur;
    }
    long back = pair_index(S, &k);
    snprintf(U->note, sizeof U->note, "undid prompt %llu (%llu vs %llu)%s",
             (unsigned long long)k.id, (unsigned long long)k.a, (unsigned long long)k.b,
             back < 0 ? ", a pair of another input" : "");
    return back < 0 ? cur : back;
}

/* Show pairs and record keys until q, a stop signal or an error (returns 74 and err). */
static int session(labeller *S, ui *U, char *err, size_t errsz) {
    long cur = next_open(S, 0), shown = -2;
    int rc = 0;
    while (!rc && !kiln_stop_signal()) {
        if (cur != shown && cur >= 0 && S->png_dir && (rc = write_pngs(S, &S->p[cur], err, errsz)))
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
            cur = next_open(S, (size_t)cur + 1), shown = -2;
        }
    }
    return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

static void read_input(labeller *S, kreader *r, kwriter *w) {
    krec rec;
    while (kreader_next(r, &rec)) {
        if (krec_is(&rec, KROLLOUT)) {
            add_rollout(S, &rec);
        } else {
            S->others++;
            kwriter_pass(w, &rec);
        }
    }
}

static void summary(const labeller *S, uint64_t prefs) {
    uint64_t n[4];
    size_t done = decided(S, n);
    kiln_warn("%zu of %zu pairs labelled (left %llu, right %llu, tie %llu, skip %llu): %llu pref "
              "records",
              done, S->np, (unsigned long long)n[0], (unsigned long long)n[1],
              (unsigned long long)n[2], (unsigned long long)n[3], (unsigned long long)prefs);
    if (S->lonely)
        kiln_warn("%llu prompts with a single completion skipped (no pair to show)",
                  (unsigned long long)S->lonely);
}

static void free_labeller(labeller *S) {
    for (int g = 0; g < S->ng; g++) {
        for (int i = 0; i < S->g[g].n; i++) {
            kimage_free(&S->g[g].c[i].im);
            kstored_free(S->g[g].c[i].rec);
        }
        free(S->g[g].c);
    }
    free(S->g), free(S->p);
    klabels_close(S->L);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    labeller S = {0};
    const char *labels = NULL;
    bool all_pairs = false, export_only = false;
    kopt rows[] = {
        KOPT_STRING(0, "labels", &labels, "FILE",
                    "the label file: every decision appended as a JSON line and fsync'd at once; "
                    "pairs already decided in it are not shown again",
                    .flags = KOPT_REQUIRED),
        KOPT_BOOL(0, "all-pairs", &all_pairs,
                  "every pair of a prompt's K completions (K(K-1)/2), not just the first two"),
        KOPT_BOOL(0, "shuffle", &S.shuffle,
                  "put the first completion of a pair on the right half of the time (chosen "
                  "by a hash of the pair's texts: the same in every session), so a habit of "
                  "picking one side favours no completion"),
        KOPT_BOOL(0, "skipped", &S.skipped,
                  "show the pairs skipped in earlier sessions again (a new decision replaces "
                  "the skip)"),
        KOPT_STRING(0, "png-dir", &S.png_dir, "DIR",
                    "image rollouts: also write the pair shown as DIR/left.png and "
                    "DIR/right.png, for an image viewer"),
        KOPT_BOOL(0, "export", &export_only,
                  "label nothing: write the pref records of the decisions in the label file"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    if ((!cli.in || !strcmp(cli.in, "-")) && isatty(0))
        kiln_usage_error("reads rollout records on stdin or --in, and stdin is a terminal");
    if (S.png_dir && mkdir(S.png_dir, 0777) != 0 && errno != EEXIST)
        kiln_die(EX_KILN_IO, "--png-dir %s: %s", S.png_dir, strerror(errno));
    char err[1024];
    int rc = klabels_open(labels, &S.L, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(w, kreader_hdr(r), KPREF, krec_u64_or(kreader_hdr(r), "seed", 0));
    kwriter_end(w);
    read_input(&S, r, w);
    if (!S.ng && !kiln_stop_signal()) {
        snprintf(err, sizeof err,
                 "%s: no rollout records (%llu records of other types): kiln label reads kiln "
                 "rollout's output",
                 kreader_name(r), (unsigned long long)S.others);
        kiln_fail(r, w, EX_KILN_DATA, err);
    }
    make_pairs(&S, all_pairs);
    ui U = {0};
    if (!export_only && !kiln_stop_signal() && next_open(&S, 0) >= 0) {
        if (!ui_open(&U, err, sizeof err)) kiln_fail(r, w, EX_KILN_USAGE, err);
        rc = session(&S, &U, err, sizeof err);
        ui_close(&U);
        if (rc) kiln_fail(r, w, rc, err);
    }
    summary(&S, write_prefs(&S, w));
    free_labeller(&S);
    kiln_finish(r, w);
}
