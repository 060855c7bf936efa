/* nb_base.h — status codes, error messages and the allocator hook.
 *
 * Two error paths (also in the README, "The API by module"):
 *   - graph building: an op returns NULL and records a message on its graph
 *     (nb_graph_error); NULL sources propagate and the first message is kept;
 *   - everything else that can fail returns an nb_status (NB_OK is 0) and leaves
 *     a readable message in nb_last_error().
 * assert() guards the library's own invariants only, never user input. */
#ifndef NB_BASE_H
#define NB_BASE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result of every fallible function that does not return a pointer. */
typedef enum nb_status {
    NB_OK = 0,
    NB_ERR_ARG,     /* a NULL pointer, a negative or zero size, a bad option */
    NB_ERR_SHAPE,   /* shapes that do not fit together */
    NB_ERR_LABEL,   /* a class label outside [0, classes) */
    NB_ERR_NOMEM,   /* an allocation failed */
    NB_ERR_IO,      /* a file could not be opened, read or written */
    NB_ERR_FORMAT,  /* a file's contents are malformed */
    NB_ERR_NUMERIC, /* NaN or Inf where a finite value was required */
    NB_ERR_STATE    /* the call does not fit the object's state (e.g. fit before compile) */
} nb_status;

/* The message of the last failure in this thread ("" when none). The string is
 * owned by the library and stays valid until the next failing call in the thread. */
const char *nb_last_error(void);

/* The status that came with that message (NB_OK when none), so a caller that
 * got NULL from a constructor can still tell NB_ERR_NOMEM from NB_ERR_ARG. */
nb_status nb_last_status(void);

/* A fixed name for a status code, e.g. "NB_ERR_SHAPE". Never NULL. */
const char *nb_status_name(nb_status s);

/* Record a failure: formats the message into nb_last_error() and returns `s`,
 * so a function can end with `return nb_fail(NB_ERR_IO, "...", ...)`. */
nb_status nb_fail(nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Forget the last failure (nb_last_error() returns "" and nb_last_status NB_OK afterwards). */
void nb_clear_error(void);

/* ---- Allocator hook -------------------------------------------------------
 * Every heap allocation the library makes goes through these three functions.
 * The default calls malloc/realloc/free. Tests install a counting or failing
 * allocator to prove that training steps allocate nothing and that every failed
 * allocation is reported and cleaned up. `ctx` is passed back untouched. */
typedef struct nb_allocator {
    void *(*alloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} nb_allocator;

/* Install `a` (copied) as the allocator; NULL restores malloc/realloc/free.
 * Only change it while no graph or model made with the previous one is alive. */
void nb_set_allocator(const nb_allocator *a);

/* The number of successful allocations (alloc + realloc calls that returned
 * memory) the library has made since the program started. Diff two readings to
 * count the allocations of a code section. */
unsigned long nb_alloc_count(void);

/* The library's own allocation entry points (through the hook). nb_malloc and
 * nb_calloc return NULL on failure or when size is 0; nb_free(NULL) is a no-op. */
void *nb_malloc(size_t size);
void *nb_calloc(size_t count, size_t size);
void *nb_realloc(void *ptr, size_t size);
void nb_free(void *ptr);

/* Threads used by GEMMs and the optimizer update (1..64; values below 1 mean 1).
 * The default is 1, or NB_NUM_THREADS from the environment when set. Change it
 * only while no other thread is running nabla code. Work is split by output
 * rows/columns, never inside a sum, yet BLIS may choose a kernel with another
 * summation order for a smaller piece of a product: results can differ in the
 * last bits between thread counts (the same count always gives the same bits). */
void nb_set_num_threads(int n);
int nb_get_num_threads(void);

/* Seconds on the monotonic clock (for timing; the origin is arbitrary). The one
 * clock the library and its examples use. */
double nb_now(void);

/* Index of the largest of v[0..n-1], the first on ties (NaN never wins);
 * 0 for n < 1 or a NULL v. The one argmax used for accuracy and predictions. */
int nb_index_of_max(const float *v, int n);

/* ---- BLIS kernels ----------------------------------------------------------
 * nabla's matrix products run on BLIS. Debian's BLIS 0.9 chooses its kernels from
 * the CPU model and does not recognise recent AVX-512 CPUs (AMD Zen 4 and 5,
 * virtual CPUs named only "AMD EPYC"): it then falls back to its portable
 * "generic" kernels, several times slower. So when the library is loaded (a
 * constructor, before BLIS starts), nabla sets the environment variable
 * BLIS_ARCH_TYPE of the process to BLIS's Skylake-X kernels ("skx") if the CPU
 * has the AVX-512 subsets they use (F, DQ, BW, VL). It never overrides a
 * BLIS_ARCH_TYPE already set (yours always wins: BLIS_ARCH_TYPE=<BLIS's number
 * of the kernel set>), and NB_BLIS_AUTO_ARCH=0 turns the choice off (BLIS then
 * picks as usual). Other BLIS users in the process (numpy, a BLAS) see the same
 * variable if they start BLIS after nabla is loaded. */

/* The name of the kernel set BLIS uses in this process, as BLIS spells it: "skx",
 * "haswell", "zen3", "generic", ... — the one nabla chose, the one your
 * BLIS_ARCH_TYPE asked for, or BLIS's own pick. Starts BLIS's kernel selection if
 * it has not run yet. The string is static; never NULL. */
const char *nb_blis_kernels(void);

#ifdef __cplusplus
}
#endif
#endif
