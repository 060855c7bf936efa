/* tmpdir.c — a scratch folder for test suites that write files. */
#define _GNU_SOURCE /* nftw's FTW_DEPTH / FTW_PHYS */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tmpdir.h"

char dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int tmpdir_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nabla_test_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

int tmpdir_teardown(void **state)
{
    (void)state;
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *at(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}
