/* parallel.c — a tiny persistent thread pool and the GEMM that shares it.
 *
 * A job is (fn, ctx, parts). The caller publishes it by bumping `generation`;
 * workers spin on that counter for a short while after each job (a training step
 * issues several small jobs back to back, and waking a sleeping thread costs more
 * than the job), then sleep on a condition variable. The caller runs its own
 * share and spins until `pending` reaches zero. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core_internal.h"
#include <nabla/nb_base.h>
#include "nb_blis.h"
#include <nabla/nb_parallel.h>

/* Waiting: SPINS_BEFORE_YIELD pause instructions, then sched_yield() (so a busy
 * or oversubscribed machine lets the thread we wait for run), and a worker goes
 * to sleep after SPINS_BEFORE_SLEEP rounds in all. */
enum { MAX_WORKERS = 63, SPINS_BEFORE_YIELD = 1 << 17, SPINS_BEFORE_SLEEP = (1 << 17) + 4096 };

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_t thread[MAX_WORKERS];
    int workers;                /* running worker threads */
    atomic_ulong generation;    /* bumped once per job */
    atomic_int pending;         /* workers still busy with the current job */
    atomic_int sleepers;        /* workers waiting on `wake` */
    atomic_bool stop;
    unsigned long start_generation; /* the generation new workers start from */
    void (*fn)(void *, int, int);
    void *ctx;
    int parts;
} pool = {.mutex = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static _Thread_local bool inside_part; /* nested calls run serially */
static bool exit_hook;

/* One round of waiting: a pause early on, a yield of the CPU later. */
static inline void relax(int round)
{
    if (round >= SPINS_BEFORE_YIELD) {
        sched_yield();
        return;
    }
    /* a plain re-read, not the x86 PAUSE hint: under a hypervisor a loop of
     * PAUSEs makes the virtual CPU give up its time slice (pause-loop exiting),
     * which turned a 0.2 us hand-over into 10 us */
    __asm__ __volatile__("" ::: "memory");
}

/* Run the parts of the current job that belong to thread `id` of `threads`. */
static void run_share(int id, int threads)
{
    inside_part = true;
    for (int p = id; p < pool.parts; p += threads) pool.fn(pool.ctx, p, pool.parts);
    inside_part = false;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    unsigned long seen = pool.start_generation; /* earlier jobs are not ours */
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load(&pool.generation)) == seen && !atomic_load(&pool.stop)) {
            if (++spins < SPINS_BEFORE_SLEEP) {
                relax(spins);
                continue;
            }
            pthread_mutex_lock(&pool.mutex);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.stop))
                pthread_cond_wait(&pool.wake, &pool.mutex);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mutex);
            spins = 0;
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = g;
        run_share(id, pool.workers + 1);
        atomic_fetch_sub(&pool.pending, 1);
    }
}

static void stop_workers(void)
{
    if (pool.workers == 0) return;
    pthread_mutex_lock(&pool.mutex);
    atomic_store(&pool.stop, true);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);
    for (int i = 0; i < pool.workers; i++) pthread_join(pool.thread[i], NULL);
    pool.workers = 0;
    atomic_store(&pool.stop, false);
}

/* Called by nb_set_num_threads: workers restart lazily with the new count. */
void nb__pool_resize(void) { stop_workers(); }

/* Start threads-1 workers; on failure run with as many as started. */
static void start_workers(int threads)
{
    if (!exit_hook) {
        atexit(stop_workers);
        exit_hook = true;
    }
    int want = threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS;
    pool.start_generation = atomic_load(&pool.generation);
    while (pool.workers < want) {
        if (pthread_create(&pool.thread[pool.workers], NULL, worker, (void *)(intptr_t)(pool.workers + 1)) != 0) break;
        pool.workers++;
    }
}

void nb_parallel_for(int parts, void (*fn)(void *ctx, int part, int parts), void *ctx)
{
    int threads = nb_get_num_threads();
    if (parts <= 1 || threads <= 1 || inside_part) {
        for (int p = 0; p < parts; p++) fn(ctx, p, parts);
        return;
    }
    if (pool.workers == 0) start_workers(threads);
    if (pool.workers == 0) { /* no thread could be started */
        for (int p = 0; p < parts; p++) fn(ctx, p, parts);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.parts = parts;
    atomic_store(&pool.pending, pool.workers);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }
    run_share(0, pool.workers + 1);
    for (int round = 0; atomic_load(&pool.pending) > 0; round++) relax(round);
}

void nb_split_range(size_t n, int part, int parts, size_t align, size_t *begin, size_t *end)
{
    if (align < 1) align = 1;
    size_t blocks = (n + align - 1) / align;
    size_t b0 = blocks * (size_t)part / (size_t)parts, b1 = blocks * (size_t)(part + 1) / (size_t)parts;
    *begin = b0 * align < n ? b0 * align : n;
    *end = b1 * align < n ? b1 * align : n;
}

/* ---- GEMM ---- */

/* Products below this many flops run on one thread: sharing costs more. */
#define GEMM_SHARE_FLOPS 1.0e6
#define GEMM_ALIGN 16

typedef struct {
    int m, n, k;
    const float *a, *b;
    int rsa, csa, rsb, csb, rsc;
    float beta;
    float *c;
    bool by_rows;
} gemm_job;

static void blis_gemm(int m, int n, int k, const float *a, int rsa, int csa, const float *b, int rsb, int csb,
                      float beta, float *c, int rsc)
{
    float alpha = 1.0f;
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (float *)a, rsa, csa, (float *)b, rsb, csb, &beta,
              c, rsc, 1);
}

static void gemm_part(void *ctx, int part, int parts)
{
    const gemm_job *j = ctx;
    size_t lo, hi;
    if (j->by_rows) {
        nb_split_range((size_t)j->m, part, parts, GEMM_ALIGN, &lo, &hi);
        if (hi > lo)
            blis_gemm((int)(hi - lo), j->n, j->k, j->a + lo * (size_t)j->rsa, j->rsa, j->csa, j->b, j->rsb, j->csb,
                      j->beta, j->c + lo * (size_t)j->rsc, j->rsc);
    } else {
        nb_split_range((size_t)j->n, part, parts, GEMM_ALIGN, &lo, &hi);
        if (hi > lo)
            blis_gemm(j->m, (int)(hi - lo), j->k, j->a, j->rsa, j->csa, j->b + lo * (size_t)j->csb, j->rsb, j->csb,
                      j->beta, j->c + lo, j->rsc);
    }
}

void nb_sgemm(int m, int n, int k, const float *a, int rsa, int csa, const float *b, int rsb, int csb, float beta,
              float *c, int rsc)
{
    int threads = nb_get_num_threads();
    double flops = 2.0 * m * n * k;
    gemm_job j = {m, n, k, a, b, rsa, csa, rsb, csb, rsc, beta, c, m > n};
    int span = j.by_rows ? m : n, parts = threads;
    if (parts > span / GEMM_ALIGN) parts = span / GEMM_ALIGN;
    if (threads <= 1 || inside_part || flops < GEMM_SHARE_FLOPS || parts <= 1) {
        blis_gemm(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, rsc);
        return;
    }
    nb_parallel_for(parts, gemm_part, &j);
}
