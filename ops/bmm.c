/* bmm.c — batched matrix product on BLIS, with NumPy broadcasting of the batch axes.
 *
 * Key: a is (..., M, K) and b (..., K, N) as the product sees them ("logical");
 * with transpose_a a is stored (..., K, M), with transpose_b b is stored
 * (..., N, K), and the product reads the stored buffer with its row and column
 * strides swapped (no transposed copy is ever made). The leading "batch" axes of
 * a and b broadcast against each other (aligned from the right; a size-1 or
 * missing axis repeats), giving the output (batch..., M, N); a broadcast
 * operand's matrix block is reused, stride 0 along that axis.
 *
 * Each batch item is one GEMM: BLIS (nb_sgemm) reading the operands through
 * their strides, or, for small items, a plain register-tiled kernel that copies
 * them into small panels on the stack first (see item_gemm). When b has no batch
 * of its own and a is not transposed, the items are rows of one tall product,
 * (items·M, K)·(K, N), done as a single GEMM forward and backward. Otherwise the
 * items are shared over the thread pool, each part a range of items.
 *
 * Backward, per item (C = A·B, dC the output's gradient):
 *   dA (M, K) += dC · Bᵀ,  or stored (K, M) += B · dCᵀ with transpose_a;
 *   dB (K, N) += Aᵀ · dC,  or stored (N, K) += dCᵀ · A with transpose_b.
 * An operand broadcast over some batch axis receives the sum over those items. */
#include <string.h>

#include <nabla/nb_parallel.h>
#include "ops_private.h"

/* ---- the GEMM of one item ----
 * BLIS pays a fixed cost per call (several microseconds here) that dwarfs a
 * 16 x 16 x 16 product, the size of one attention head on a short context. Small
 * items go to a plain kernel instead: each MR x NR tile of C is accumulated in
 * registers over k, MR vector multiply-adds per k, reading B by rows of NR floats
 * (copied first into a zero-padded panel on the stack when they are not
 * contiguous or N is not a multiple of NR) and A by scalars. */
enum { MR = 4, NR = 16, SMALL_PANEL = 4096 }; /* tile rows and columns; floats per panel */

static bool small_fits(int m, int n, int k)
{
    size_t mp = ((size_t)m + MR - 1) / MR * MR, np = ((size_t)n + NR - 1) / NR * NR;
    return mp * (size_t)k <= SMALL_PANEL && np * (size_t)k <= SMALL_PANEL && (size_t)m * n * k <= 64 * 64 * 64;
}

/* Write an accumulated tile row: cr (nr) = acc (or += acc when beta is 1). */
static void store_row(float *restrict cr, const float *restrict acc, int nr, float beta)
{
    if (beta == 0.0f)
        for (int j = 0; j < nr; j++) cr[j] = acc[j];
    else
        for (int j = 0; j < nr; j++) cr[j] += acc[j];
}

/* One MR x NR tile: c (mr, nr) = A (MR rows, K) · bp (K, NR; row stride ldb) + beta * c,
 * A's element (i, k) read at a[i * rsa + k * csa] (all MR rows must exist).
 * With GCC or clang each accumulator row is one NR-float vector (a vector
 * extension the compiler maps to the widest registers it has; contracted to FMA);
 * elsewhere the same loops on arrays. */
#if defined(__GNUC__)
typedef float tile_row __attribute__((vector_size(NR * sizeof(float))));
#if !defined(__clang__)
__attribute__((optimize("fp-contract=fast")))
#endif
static void small_tile(int K, const float *a, int rsa, int csa, const float *bp, int ldb, float beta, float *c,
                       int rsc, int mr, int nr)
{
    tile_row acc[MR];
    for (int i = 0; i < MR; i++) acc[i] = (tile_row){0};
    for (int k = 0; k < K; k++) {
        tile_row bk;
        memcpy(&bk, bp + (size_t)k * ldb, sizeof bk);
        const float *ak = a + (size_t)k * csa;
        for (int i = 0; i < MR; i++) acc[i] += ak[(size_t)i * rsa] * bk;
    }
    for (int i = 0; i < mr; i++) {
        float row[NR];
        memcpy(row, &acc[i], sizeof row);
        store_row(c + (size_t)i * rsc, row, nr, beta);
    }
}
#else
static void small_tile(int K, const float *a, int rsa, int csa, const float *bp, int ldb, float beta, float *c,
                       int rsc, int mr, int nr)
{
    float acc[MR][NR] = {{0}};
    for (int k = 0; k < K; k++) {
        const float *bk = bp + (size_t)k * ldb, *ak = a + (size_t)k * csa;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += ak[(size_t)i * rsa] * bk[j];
    }
    for (int i = 0; i < mr; i++) store_row(c + (size_t)i * rsc, acc[i], nr, beta);
}
#endif

/* c (M, N) = a (M, K) · b (K, N) + beta * c (beta 0 or 1), small_fits(M, N, K).
 * B is read in place when its rows are contiguous and N is a multiple of NR,
 * else copied into a zero-padded panel; A is read in place by full strips of MR
 * rows, and its last partial strip copied into a zero-padded (K, MR) panel. */
static void small_gemm(int M, int N, int K, const float *a, int rsa, int csa, const float *b, int rsb, int csb,
                       float beta, float *c, int rsc)
{
    float apan[SMALL_PANEL], bpan[SMALL_PANEL];
    const float *bp = b;
    int ldb = rsb;
    if (csb != 1 || N % NR) {
        ldb = (N + NR - 1) / NR * NR;
        for (int k = 0; k < K; k++) {
            float *restrict bk = bpan + (size_t)k * ldb;
            for (int n = 0; n < N; n++) bk[n] = b[(size_t)k * rsb + (size_t)n * csb];
            for (int n = N; n < ldb; n++) bk[n] = 0.0f;
        }
        bp = bpan;
    }
    for (int m0 = 0; m0 < M; m0 += MR) {
        int mr = M - m0 < MR ? M - m0 : MR, ra = rsa, ca = csa;
        const float *as = a + (size_t)m0 * rsa;
        if (mr < MR) { /* the last rows, padded with zeros: (K, MR), element (i, k) at k*MR + i */
            for (int k = 0; k < K; k++)
                for (int i = 0; i < MR; i++) apan[k * MR + i] = i < mr ? as[(size_t)i * rsa + (size_t)k * csa] : 0.0f;
            as = apan, ra = 1, ca = MR;
        }
        for (int n0 = 0; n0 < N; n0 += NR)
            small_tile(K, as, ra, ca, bp + n0, ldb, beta, c + (size_t)m0 * rsc + n0, rsc, mr, N - n0 < NR ? N - n0 : NR);
    }
}

/* c (m, n) = a (m, k) · b (k, n) + beta * c, as nb_sgemm: small products by the
 * plain kernel, the rest by BLIS. */
static void item_gemm(int m, int n, int k, const float *a, int rsa, int csa, const float *b, int rsb, int csb,
                      float beta, float *c, int rsc)
{
    if (small_fits(m, n, k))
        small_gemm(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, rsc);
    else nb_sgemm(m, n, k, a, rsa, csa, b, rsb, csb, beta, c, rsc);
}

typedef struct bmm_attr {
    int transpose_a, transpose_b;
} bmm_attr;

/* Everything one run needs: sizes, operand strides and per-batch-axis block strides. */
typedef struct bmm_plan {
    int M, K, N;
    int rsa, csa, rsb, csb;   /* logical A (M, K) and B (K, N) strides within a block */
    int nb;                   /* batch axes of the output */
    int bshape[NB_MAX_DIMS];  /* (nb) the output's batch shape */
    size_t sa[NB_MAX_DIMS];   /* a's block stride per output batch axis (0: broadcast) */
    size_t sb[NB_MAX_DIMS];
    size_t items;             /* Π bshape */
    size_t a_items, b_items;  /* blocks a and b really have */
    const nb_tensor *t;
} bmm_plan;

/* Per-batch-axis block strides of x (batch axes aligned right with nb output axes). */
static size_t block_strides(const nb_tensor *x, int nb, const int *bshape, size_t *st)
{
    int xb = x->ndim - 2, lead = nb - xb;
    size_t s = (size_t)x->shape[x->ndim - 2] * (size_t)x->shape[x->ndim - 1], blocks = 1;
    for (int d = nb - 1; d >= 0; d--) {
        int dim = d < lead ? 1 : x->shape[d - lead];
        st[d] = dim == 1 && bshape[d] != 1 ? 0 : s;
        s *= (size_t)dim;
        blocks *= (size_t)dim;
    }
    return blocks;
}

static void bmm_make_plan(const nb_tensor *t, bmm_plan *p)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    const bmm_attr *at = NB_ATTR(t, bmm_attr);
    int ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    p->t = t;
    p->M = at->transpose_a ? ac : ar;
    p->K = at->transpose_a ? ar : ac;
    p->N = at->transpose_b ? br : bc;
    p->rsa = at->transpose_a ? 1 : ac;
    p->csa = at->transpose_a ? ac : 1;
    p->rsb = at->transpose_b ? 1 : bc;
    p->csb = at->transpose_b ? bc : 1;
    p->nb = t->ndim - 2;
    p->items = 1;
    for (int d = 0; d < p->nb; d++) p->items *= (size_t)(p->bshape[d] = t->shape[d]);
    p->a_items = block_strides(a, p->nb, p->bshape, p->sa);
    p->b_items = block_strides(b, p->nb, p->bshape, p->sb);
}

/* Block offsets (in floats) of a and b for batch item i. */
static void item_offsets(const bmm_plan *p, size_t i, size_t *oa, size_t *ob)
{
    *oa = *ob = 0;
    for (int d = p->nb - 1; d >= 0; d--) {
        size_t k = i % (size_t)p->bshape[d];
        i /= (size_t)p->bshape[d];
        *oa += k * p->sa[d];
        *ob += k * p->sb[d];
    }
}

static nb_status bmm_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    const bmm_attr *at = NB_ATTR(t, bmm_attr);
    char sa[64], sb[64];
    if (a->dtype != NB_F32 || b->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "batch_matmul: inputs must be float tensors");
    int ok = a->ndim >= 2 && b->ndim >= 2;
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    if (ok) {
        int ka = a->shape[a->ndim - (at->transpose_a ? 2 : 1)], kb = b->shape[b->ndim - (at->transpose_b ? 1 : 2)];
        ok = ka == kb;
        for (int d = 0; ok && d < nd - 2; d++) { /* batch axes, aligned right */
            int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
            int x = da < 0 ? 1 : a->shape[da], y = db < 0 ? 1 : b->shape[db];
            ok = x == y || x == 1 || y == 1;
            t->shape[d] = x > y ? x : y;
        }
    }
    if (!ok)
        return nb_node_fail(t, NB_ERR_SHAPE, "batch_matmul: cannot multiply %s%s by %s%s (need (..., M, K) and "
                            "(..., K, N) with broadcastable batch axes)", nb_shape_str(a, sa, sizeof sa),
                            at->transpose_a ? " transposed" : "", nb_shape_str(b, sb, sizeof sb),
                            at->transpose_b ? " transposed" : "");
    t->ndim = nd;
    t->shape[nd - 2] = a->shape[a->ndim - (at->transpose_a ? 1 : 2)];
    t->shape[nd - 1] = b->shape[b->ndim - (at->transpose_b ? 2 : 1)];
    return NB_OK;
}

/* The tall-product case: b one block, a not transposed and not broadcast. */
static bool bmm_foldable(const bmm_plan *p)
{
    return p->b_items == 1 && p->csa == 1 && p->a_items == p->items;
}


/* Items [lo, hi) of the forward. */
static void forward_items(const bmm_plan *p, size_t lo, size_t hi)
{
    const float *A = p->t->src[0]->data, *B = p->t->src[1]->data;
    size_t mn = (size_t)p->M * (size_t)p->N;
    for (size_t i = lo; i < hi; i++) {
        size_t oa, ob;
        item_offsets(p, i, &oa, &ob);
        item_gemm(p->M, p->N, p->K, A + oa, p->rsa, p->csa, B + ob, p->rsb, p->csb, 0.0f, p->t->data + i * mn, p->N);
    }
}

/* Which pass a part of the thread pool runs. */
enum { PASS_FORWARD, PASS_DA, PASS_DB };
typedef struct bmm_job {
    const bmm_plan *p;
    int pass;
} bmm_job;

static void da_items(const bmm_plan *p, size_t lo, size_t hi);
static void db_items(const bmm_plan *p, size_t lo, size_t hi);

static void bmm_part(void *ctx, int part, int parts)
{
    const bmm_job *j = ctx;
    size_t lo, hi;
    nb_split_range(j->p->items, part, parts, 1, &lo, &hi);
    if (j->pass == PASS_FORWARD) forward_items(j->p, lo, hi);
    else if (j->pass == PASS_DA) da_items(j->p, lo, hi);
    else db_items(j->p, lo, hi);
}

/* Run a pass over all items: shared over the threads when there are several
 * items worth it and every item writes its own block. */
static void run_items(const bmm_plan *p, int pass, bool own_blocks)
{
    int threads = nb_get_num_threads();
    double flops = 2.0 * p->M * p->N * p->K * (double)p->items;
    int parts = (size_t)threads < p->items ? threads : (int)p->items;
    if (own_blocks && parts > 1 && flops >= 2.0e5) {
        bmm_job j = {p, pass};
        nb_parallel_for(parts, bmm_part, &j);
    } else if (pass == PASS_FORWARD) forward_items(p, 0, p->items);
    else if (pass == PASS_DA) da_items(p, 0, p->items);
    else db_items(p, 0, p->items);
}

static nb_status bmm_forward(nb_tensor *t)
{
    bmm_plan p;
    bmm_make_plan(t, &p);
    const float *A = t->src[0]->data, *B = t->src[1]->data;
    if (bmm_foldable(&p)) /* (items·M, K) · (K, N) */
        item_gemm((int)p.items * p.M, p.N, p.K, A, p.rsa, 1, B, p.rsb, p.csb, 0.0f, t->data, p.N);
    else run_items(&p, PASS_FORWARD, true);
    return NB_OK;
}

/* dA for items [lo, hi), accumulated (beta 1). */
static void da_items(const bmm_plan *p, size_t lo, size_t hi)
{
    const nb_tensor *t = p->t;
    const float *B = t->src[1]->data;
    float *dA = t->src[0]->grad;
    int M = p->M, N = p->N, K = p->K;
    size_t mn = (size_t)M * (size_t)N;
    for (size_t i = lo; i < hi; i++) {
        size_t oa, ob;
        item_offsets(p, i, &oa, &ob);
        const float *dC = t->grad + i * mn;
        if (p->csa == 1) /* dA (M, K) += dC (M, N) · Bᵀ (N, K) */
            item_gemm(M, K, N, dC, N, 1, B + ob, p->csb, p->rsb, 1.0f, dA + oa, K);
        else /* stored (K, M) += B (K, N) · dCᵀ (N, M) */
            item_gemm(K, M, N, B + ob, p->rsb, p->csb, dC, 1, N, 1.0f, dA + oa, M);
    }
}

/* dB for items [lo, hi), accumulated (beta 1). */
static void db_items(const bmm_plan *p, size_t lo, size_t hi)
{
    const nb_tensor *t = p->t;
    const float *A = t->src[0]->data;
    float *dB = t->src[1]->grad;
    int M = p->M, N = p->N, K = p->K;
    size_t mn = (size_t)M * (size_t)N;
    for (size_t i = lo; i < hi; i++) {
        size_t oa, ob;
        item_offsets(p, i, &oa, &ob);
        const float *dC = t->grad + i * mn;
        if (p->csb == 1) /* dB (K, N) += Aᵀ (K, M) · dC (M, N) */
            item_gemm(K, N, M, A + oa, p->csa, p->rsa, dC, N, 1, 1.0f, dB + ob, N);
        else /* stored (N, K) += dCᵀ (N, M) · A (M, K) */
            item_gemm(N, K, M, dC, 1, N, A + oa, p->rsa, p->csa, 1.0f, dB + ob, K);
    }
}

static void bmm_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    bmm_plan p;
    bmm_make_plan(t, &p);
    if (bmm_foldable(&p)) {
        int MM = (int)p.items * p.M, N = p.N, K = p.K;
        if (a->grad) item_gemm(MM, K, N, t->grad, N, 1, b->data, p.csb, p.rsb, 1.0f, a->grad, K);
        if (b->grad && p.csb == 1) item_gemm(K, N, MM, a->data, 1, K, t->grad, N, 1, 1.0f, b->grad, N);
        else if (b->grad) item_gemm(N, K, MM, t->grad, 1, N, a->data, K, 1, 1.0f, b->grad, K);
        return;
    }
    if (a->grad) run_items(&p, PASS_DA, p.a_items == p.items);
    if (b->grad) run_items(&p, PASS_DB, p.b_items == p.items);
}

static void bmm_describe(const nb_tensor *t, char *buf, size_t len)
{
    const bmm_attr *at = NB_ATTR(t, bmm_attr);
    snprintf(buf, len, "%s%s%s", at->transpose_a ? "transpose_a" : "",
             at->transpose_a && at->transpose_b ? " " : "", at->transpose_b ? "transpose_b" : "");
}

const nb_op nb_op_batch_matmul = {.name = "batch_matmul", .n_src = 2, .shape = bmm_shape, .forward = bmm_forward,
                                  .backward = bmm_backward, .describe = bmm_describe};

nb_tensor *nb_batch_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b, bool transpose_a, bool transpose_b)
{
    bmm_attr attr = {.transpose_a = transpose_a, .transpose_b = transpose_b};
    return nb_node(g, &nb_op_batch_matmul, (nb_tensor *[]){a, b}, 2, &attr, sizeof attr);
}
