/* kiln — the dispatcher: `kiln STAGE ARGS...` runs `kiln-STAGE ARGS...`, git-style.
 *
 * A stage is looked up in $KILN_EXEC_PATH, then $PATH, then the directory of this program,
 * so a user's own kiln-train earlier on PATH (or in KILN_EXEC_PATH) replaces the stage in
 * every pipeline without editing it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "train small generative models with a pipeline of small programs",
    .usage = "kiln STAGE [ARGS...]     run the stage kiln-STAGE\n"
             "       kiln                     list the stages\n"
             "       kiln help STAGE          a stage's help",
    .text = "Stages are found in $KILN_EXEC_PATH, then $PATH, then beside this program: put your "
            "own\n"
            "kiln-STAGE earlier to replace one.\n",
    .notes = "example:\n"
             "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes | kiln show | "
             "head\n",
    .max_args = INT_MAX,
    .stop_at_arg = true, /* the stage's own options follow its name */
};

static char own_dir[PATH_MAX];

/* Directories to search, in order, as one colon-separated list. */
static char *search_path(void) {
    const char *e = getenv("KILN_EXEC_PATH"), *p = getenv("PATH");
    size_t n = (e ? strlen(e) : 0) + (p ? strlen(p) : 0) + strlen(own_dir) + 3;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s%s:%s", e ? e : "", e ? ":" : "", p ? p : "", own_dir);
    return s;
}

static bool find_stage(const char *stage, char *out, size_t outsz) {
    char *path = search_path(), *save = NULL;
    bool found = false;
    for (char *dir = strtok_r(path, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, outsz, "%s/kiln-%s", *dir ? dir : ".", stage);
        found = access(out, X_OK) == 0;
    }
    free(path);
    return found;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first line of `kiln-NAME --help`, the stage's summary (run without a shell, so no
 * directory name on PATH is ever interpreted). */
static void summary(const char *prog, char *out, size_t outsz) {
    out[0] = 0;
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(fds[1], 1);
        if (null >= 0) dup2(null, 0), dup2(null, 2);
        close(fds[0]);
        execl(prog, prog, "--help", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (pid > 0) {
        FILE *f = fdopen(fds[0], "r");
        if (f) {
            if (fgets(out, (int)outsz, f)) out[strcspn(out, "\n")] = 0;
            fclose(f); /* the child may still write: it gets EPIPE, which is fine */
        } else {
            close(fds[0]);
        }
        waitpid(pid, NULL, 0);
    } else {
        close(fds[0]);
    }
    const char *dash = strstr(out, " — ");
    if (dash) memmove(out, dash + 5, strlen(dash + 5) + 1);
}

/* The stages on the search path, sorted, each name once (the first found runs). */
static char **stage_names(size_t *count) {
    char *path = search_path(), *save = NULL, **names = NULL;
    size_t n = 0;
    for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        DIR *d = opendir(*dir ? dir : ".");
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (strncmp(e->d_name, "kiln-", 5) != 0 || !e->d_name[5]) continue;
            bool dup = false;
            for (size_t i = 0; i < n; i++) dup |= strcmp(names[i], e->d_name + 5) == 0;
            char full[PATH_MAX];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            if (dup || access(full, X_OK) != 0) continue;
            names = xrealloc(names, xmul(n + 1, sizeof *names));
            names[n++] = xstrdup(e->d_name + 5);
        }
        closedir(d);
    }
    free(path);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    *count = n;
    return names;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void list_stages(void) {
    kopt rows[] = {KOPT_END()};
    char *help = kopt_help(&HELP, rows);
    fputs(help, stdout);
    free(help);
    size_t n;
    char **names = stage_names(&n);
    printf("\nstages:\n");
    for (size_t i = 0; i < n; i++) {
        char prog[PATH_MAX], line[256];
        find_stage(names[i], prog, sizeof prog);
        summary(prog, line, sizeof line);
        printf("  %-10s %s\n", names[i], line);
    }
    free_names(names, n);
}

/* "'trian' is not a kiln stage (did you mean 'train'?)" */
_Noreturn static void not_a_stage(const char *stage) {
    size_t n;
    char **names = stage_names(&n);
    const char *guess =
        strchr(stage, '/') ? NULL : kiln_closest(stage, (const char *const *)names, n);
    char hint[300] = "";
    if (guess) snprintf(hint, sizeof hint, " (did you mean '%s'?)", guess);
    fprintf(stderr, "%s: '%s' is not a kiln stage%s; 'kiln' lists them\n", kiln_prog(), stage,
            hint);
    free_names(names, n);
    exit(EX_KILN_USAGE);
}

int main(int argc, char **argv) {
    kiln_set_prog("kiln");
    ssize_t len = readlink("/proc/self/exe", own_dir, sizeof own_dir - 1);
    if (len > 0) {
        own_dir[len] = 0;
        char *slash = strrchr(own_dir, '/');
        if (slash) *slash = 0;
    }
    kopt rows[] = {KOPT_END()};
    char err[512];
    int nargs = kopt_try(&HELP, rows, argc, argv, err, sizeof err);
    if (nargs == KOPT_ERROR) kiln_usage_error("%s", err);
    if (nargs == KOPT_VERSION) {
        kiln_print_version();
        return EX_KILN_OK;
    }
    bool help = nargs >= 1 && !strcmp(argv[1], "help");
    if (nargs == KOPT_HELP || nargs == 0 || (help && nargs == 1)) {
        list_stages();
        return EX_KILN_OK;
    }
    const char *stage = help ? argv[2] : argv[1];
    char prog[PATH_MAX];
    if (strchr(stage, '/') || !find_stage(stage, prog, sizeof prog)) not_a_stage(stage);
    if (help) {
        char *args[] = {prog, "--help", NULL};
        execv(prog, args);
    } else {
        argv[1] = prog;
        execv(prog, argv + 1);
    }
    kiln_die(EX_KILN_SOFTWARE, "cannot run %s: %s", prog, strerror(errno));
}
