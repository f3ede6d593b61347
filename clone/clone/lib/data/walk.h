/* walk — the files below a directory, recursively, in one sorted order (bytewise by path),
 * so `kiln load` numbers them the same way on every machine and every run.  Hidden
 * entries (names starting with '.') are skipped. */
#ifndef KILN_WALK_H
#define KILN_WALK_H

#include <stdbool.h>
#include <stddef.h>

/* Paths (root joined with the relative path) of the regular files below root whose names
 * end with suffix (case-insensitive; NULL or "" for all), and of entries with such names that
 * cannot be reached (a dangling symlink: its reader reports it).  A root that is a file
 * gives itself.  false with a reason in err when root cannot be read. */
bool kwalk(const char *root, const char *suffix, char ***paths, size_t *n, char *err,
           size_t errlen);
void kwalk_free(char **paths, size_t n);

#endif
