/* failalloc.c — an allocator for failure injection (see failalloc.h). */
#include <stdlib.h>

#include "failalloc.h"

static long countdown = -1; /* -1: never fail */
static long live;
static int failed;

static int refuse(void)
{
    if (countdown == 0) {
        failed = 1;
        return 1;
    }
    if (countdown > 0) countdown--;
    return 0;
}

static void *fa_alloc(void *ctx, size_t n)
{
    (void)ctx;
    if (refuse()) return NULL;
    void *p = malloc(n);
    if (p) live++;
    return p;
}

static void *fa_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (refuse()) return NULL;
    void *q = realloc(p, n);
    if (q && !p) live++;
    return q;
}

static void fa_free(void *ctx, void *p)
{
    (void)ctx;
    if (p) live--;
    free(p);
}

const nb_allocator failalloc = {fa_alloc, fa_realloc, fa_free, NULL};

void failalloc_arm(long k)
{
    countdown = k < 0 ? -1 : k;
    live = 0;
    failed = 0;
}

long failalloc_live(void) { return live; }

int failalloc_failed(void) { return failed; }
