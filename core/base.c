/* base.c — errors, the allocator hook, thread settings. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include <nabla/nb_base.h>
#include "nb_blis.h"

static _Thread_local char last_error[512];
static _Thread_local nb_status last_status;

const char *nb_last_error(void) { return last_error; }
nb_status nb_last_status(void) { return last_status; }

void nb_clear_error(void)
{
    last_error[0] = '\0';
    last_status = NB_OK;
}

const char *nb_status_name(nb_status s)
{
    static const char *const names[] = {
        "NB_OK",        "NB_ERR_ARG", "NB_ERR_SHAPE",  "NB_ERR_LABEL",  "NB_ERR_NOMEM",
        "NB_ERR_IO",    "NB_ERR_FORMAT", "NB_ERR_NUMERIC", "NB_ERR_STATE",
    };
    if ((unsigned)s < sizeof names / sizeof names[0]) return names[s];
    return "NB_ERR_UNKNOWN";
}

nb_status nb_fail(nb_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_status = s;
    return s;
}

/* ---- allocator ---- */

static void *std_alloc(void *ctx, size_t n) { (void)ctx; return malloc(n); }
static void *std_realloc(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n); }
static void std_free(void *ctx, void *p) { (void)ctx; free(p); }

static nb_allocator allocator = {std_alloc, std_realloc, std_free, NULL};
static unsigned long alloc_count;

void nb_set_allocator(const nb_allocator *a)
{
    if (a && a->alloc && a->realloc && a->free) allocator = *a;
    else allocator = (nb_allocator){std_alloc, std_realloc, std_free, NULL};
}

unsigned long nb_alloc_count(void) { return alloc_count; }

void *nb_malloc(size_t size)
{
    if (size == 0) return NULL;
    void *p = allocator.alloc(allocator.ctx, size);
    if (p) alloc_count++;
    return p;
}

void *nb_calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > (size_t)-1 / size) return NULL;
    void *p = nb_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void *nb_realloc(void *ptr, size_t size)
{
    if (size == 0) return NULL;
    void *p = allocator.realloc(allocator.ctx, ptr, size);
    if (p) alloc_count++;
    return p;
}

void nb_free(void *ptr)
{
    if (ptr) allocator.free(allocator.ctx, ptr);
}

/* ---- BLIS kernels ----
 * Debian's BLIS 0.9 picks its kernels from the CPU model and does not know recent
 * AVX-512 parts (AMD Zen 4, some virtual CPUs report only "AMD EPYC"): it then
 * falls back to the portable "generic" kernels, about 5x slower. Before BLIS
 * initialises (this constructor runs when the library is loaded), choose the
 * Skylake-X kernels when the CPU has the AVX-512 subsets they use. A
 * BLIS_ARCH_TYPE already set by the user always wins (the check below, and
 * setenv's overwrite flag 0); NB_BLIS_AUTO_ARCH=0 turns this off. Documented in
 * nb_base.h ("BLIS kernels"); nb_blis_kernels() names the set in use. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((constructor)) static void choose_blis_kernels(void)
{
    const char *off = getenv("NB_BLIS_AUTO_ARCH");
    if ((off && strcmp(off, "0") == 0) || getenv("BLIS_ARCH_TYPE")) return;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        char id[16];
        snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
        setenv("BLIS_ARCH_TYPE", id, 0);
    }
}
#endif

const char *nb_blis_kernels(void)
{
    /* BLIS 0.9 checks a requested kernel set against its registry, which only
     * exists once BLIS is initialised: querying earlier aborts the process */
    bli_init();
    const char *name = bli_arch_string(bli_arch_query_id());
    return name ? name : "unknown";
}

/* ---- threads ---- */

static int num_threads; /* 0: not decided yet */

int nb_get_num_threads(void)
{
    if (num_threads == 0) {
        const char *env = getenv("NB_NUM_THREADS");
        nb_set_num_threads(env ? atoi(env) : 1);
    }
    return num_threads;
}

void nb_set_num_threads(int n)
{
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    if (n == num_threads) return;
    nb__pool_resize();
    num_threads = n;
    /* nabla splits GEMMs itself (nb_sgemm); BLIS runs single-threaded in each part */
    bli_thread_set_num_threads(1);
}

int nb_index_of_max(const float *v, int n)
{
    int best = 0;
    for (int j = 1; v && j < n; j++)
        if (v[j] > v[best] || (v[best] != v[best] && v[j] == v[j])) best = j;
    return best;
}
