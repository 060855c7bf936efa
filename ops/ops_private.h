/* ops_private.h — the op definitions, private to the library (not installed).
 *
 * Each ops/ file defines its nb_op structs; table.c gathers them into
 * nb_op_table, indexed by nb_op_kind. Some kinds have a second definition that
 * differs only in its number of inputs (dense without a bias). */
#ifndef NB_OP_DEFS_H
#define NB_OP_DEFS_H

#include <math.h>
#include <stdint.h>

#include <nabla/nb_ops.h>

/* NB_HOT_LOOP (set by meson.build for portable builds) compiles a hot loop for
 * AVX-512, AVX2 + FMA and the baseline; the loader picks the CPU's (target_clones). */
#ifndef NB_HOT_LOOP
#define NB_HOT_LOOP
#endif

/* ops/pool.c: max pooling of `images` NHWC images x (images, H, W, C) into out
 * (images, OH, OW, C) with windows ph x pw moved by sh, sw from (-pt, -pl);
 * arg gets each maximum's flat index into x plus `base` (first maximum on ties). */
typedef struct nb__pool_geom {
    int H, W, C, OH, OW, ph, pw, sh, sw, pt, pl;
} nb__pool_geom;
void nb__max_pool_images(const nb__pool_geom *p, const float *x, int images, float *out, int32_t *arg, size_t base);
/* For windows that do not overlap (strides >= pool size), with arg from
 * nb__max_pool_images at base 0: writes every element of x's gradient dx that
 * a window covers, dout where it is the window's maximum and the output is
 * positive (a relu before the pooling), else 0; elements outside every window
 * are left alone. */
void nb__max_pool_window_grads(const nb__pool_geom *p, int images, const float *out, const float *dout,
                               const int32_t *at, float *dx);

/* ops/matmul.c */
/* Row kernels shared by dense and conv2d (compiled as hot loops):
 * y (rows, out) = act(y + bias) in one pass over y (bias may be NULL); */
void nb__bias_act_rows(float *y, const float *bias, int rows, int out, nb_activation act);
/* s (n) = dy ⊙ act'(z), the derivative written in terms of y = act(z) (not linear); */
void nb__act_grad(float *s, const float *y, const float *dy, size_t n, nb_activation act);
/* db (out) += the column sums of dz (B, out). */
void nb__column_sums(float *db, const float *dz, int B, int out);
extern const nb_op nb_op_matmul;
extern const nb_op nb_op_dense;        /* x, w, b */
extern const nb_op nb_op_dense_nobias; /* x, w */
/* ops/elementwise.c */
extern const nb_op nb_op_add;
extern const nb_op nb_op_sub;
extern const nb_op nb_op_mul;
extern const nb_op nb_op_scale;
/* ops/activation.c */
extern const nb_op nb_op_relu;
extern const nb_op nb_op_sigmoid;
extern const nb_op nb_op_tanh;
/* ops/softmax.c */
extern const nb_op nb_op_softmax;
extern const nb_op nb_op_log_softmax;
/* ops/loss.c */
extern const nb_op nb_op_sparse_softmax_xent;
extern const nb_op nb_op_softmax_xent;
extern const nb_op nb_op_sparse_categorical_xent_probs;
extern const nb_op nb_op_categorical_xent_probs;
extern const nb_op nb_op_mse;
/* ops/reduce.c */
extern const nb_op nb_op_sum;
extern const nb_op nb_op_mean;
extern const nb_op nb_op_reshape;

/* -- math: elementwise.c, unary.c, reduce.c -- */
/* elementwise.c */
extern const nb_op nb_op_div;
extern const nb_op nb_op_maximum;
extern const nb_op nb_op_minimum;
/* unary.c */
extern const nb_op nb_op_neg;
extern const nb_op nb_op_exp;
extern const nb_op nb_op_log;
extern const nb_op nb_op_sqrt;
extern const nb_op nb_op_square;
extern const nb_op nb_op_abs;
extern const nb_op nb_op_clip;
extern const nb_op nb_op_pow;
/* activation.c */
extern const nb_op nb_op_leaky_relu;
extern const nb_op nb_op_elu;
extern const nb_op nb_op_gelu;
extern const nb_op nb_op_silu;
extern const nb_op nb_op_softplus;
/* reduce_axes.c */
extern const nb_op nb_op_reduce_sum;
extern const nb_op nb_op_reduce_mean;
extern const nb_op nb_op_reduce_max;
extern const nb_op nb_op_logsumexp;
extern const nb_op nb_op_argmax;

/* A broadcast walk: two operands a and b laid over a full shape (NumPy rules),
 * with size-1 dimensions dropped and neighbouring dimensions merged where both
 * operands allow it, so (B, K) + (K) becomes 2 dims and same shapes become 1.
 * st[0] / st[1] are a's / b's element strides per merged dimension (0 where that
 * operand is broadcast); the innermost stride of each is 0 or 1. */
typedef struct nb_bcast {
    int nd;                     /* merged dimensions, 1..NB_MAX_DIMS */
    size_t shape[NB_MAX_DIMS];  /* sizes of the merged dimensions */
    size_t st[2][NB_MAX_DIMS];  /* element strides of a (st[0]) and b (st[1]) */
} nb_bcast;

/* Plan a walk over the full shape (ndim, full) for operands of shapes a and b,
 * right-aligned against it as NumPy does (missing leading dims count as 1; each
 * operand dim equals the full one or is 1). Allocation-free. */
void nb_bcast_plan(nb_bcast *p, int ndim, const int *full, int a_ndim, const int *a, int b_ndim, const int *b);

/* One contiguous run of the walk: n elements starting at full offset `o`, a at
 * offset `ao` moving by `ia` (0 or 1) per element, b at `bo` moving by `ib`. */
typedef void (*nb_bcast_fn)(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n);

/* Call fn for every run covering full offsets [begin, end), in row-major order. */
void nb_bcast_walk(const nb_bcast *p, size_t begin, size_t end, nb_bcast_fn fn, void *ctx);

/* Elementwise work above this many elements is split over the thread pool. */
#define NB_PARALLEL_MIN 65536

/* Run fn(ctx, begin, end) over [0, n): in one call for small n or one thread,
 * else split over nb_get_num_threads() parts (boundaries multiples of 16). */
void nb_parallel_range(size_t n, void (*fn)(void *ctx, size_t begin, size_t end), void *ctx);

/* e^x in float, written so that loops over it vectorise (no libm call): Cody-Waite
 * reduction x = n ln2 + r, |r| <= ln2 / 2, and the degree-6 polynomial of Cephes'
 * expf for e^r (relative error about 1e-7), scaled by 2^n through the exponent
 * bits (as two halves, so 2^n may reach 2^128 before the product). 0 below
 * -87.33654 (where e^x leaves the normal floats), +Inf above 88.72283, NaN for NaN. */
/* a * b + c, fused where the target has FMA (one rounding), else two operations. */
#ifdef __FMA__
#define NB_FMA(a, b, c) __builtin_fmaf(a, b, c)
#else
#define NB_FMA(a, b, c) ((a) * (b) + (c))
#endif

static inline float nb_expf(float x)
{
    float xc = x < -87.33654f ? -87.33654f : x; /* NaN passes through */
    xc = xc > 88.72283f ? 88.72283f : xc;
    union { float f; uint32_t u; } k = {.f = NB_FMA(xc, 1.44269504088896341f, 12582912.0f)}, s1, s2;
    float fn = k.f - 12582912.0f; /* round(x / ln 2); its value sits in k's low mantissa bits */
    float r = NB_FMA(fn, -0.693359375f, xc);
    r = NB_FMA(fn, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = NB_FMA(p, r, 1.3981999507e-3f);
    p = NB_FMA(p, r, 8.3334519073e-3f);
    p = NB_FMA(p, r, 4.1665795894e-2f);
    p = NB_FMA(p, r, 1.6666665459e-1f);
    p = NB_FMA(p, r, 5.0000001201e-1f);
    p = NB_FMA(p * r, r, r) + 1.0f;
    int32_t n = (int32_t)(k.u - 0x4B400000u), h = n / 2;
    s1.u = (uint32_t)(h + 127) << 23;     /* 2^h */
    s2.u = (uint32_t)(n - h + 127) << 23; /* 2^(n-h) */
    float y = p * s1.f * s2.f;
    y = x > 88.72283f ? INFINITY : y;
    return x < -87.33654f ? 0.0f : y;
}

/* Elementwise ops from a value and a derivative (unary.c, activation.c).
 * f(x, p, q) is the value, d(x, y, p, q) the derivative dy/dx given x and y;
 * p and q are the op's constants (from its attribute struct). */
typedef float (*nb_map_fn)(float x, float p, float q);
typedef float (*nb_dmap_fn)(float x, float y, float p, float q);
typedef struct nb_map_job {
    nb_tensor *t;
    float p, q;
} nb_map_job;

/* y[i] = f(x[i]) over [b, e); always_inline so f is inlined and the loop vectorises. */
static inline __attribute__((always_inline)) void nb_map_run(nb_map_fn f, const nb_map_job *j, size_t b, size_t e)
{
    float *restrict y = j->t->data;
    const float *restrict x = j->t->src[0]->data;
    const float p = j->p, q = j->q;
    for (size_t i = b; i < e; i++) y[i] = f(x[i], p, q);
}
/* dx[i] += g[i] d(x[i], y[i]) over [b, e). */
static inline __attribute__((always_inline)) void nb_dmap_run(nb_dmap_fn d, const nb_map_job *j, size_t b, size_t e)
{
    float *restrict dx = j->t->src[0]->grad;
    const float *restrict x = j->t->src[0]->data, *restrict y = j->t->data, *restrict g = j->t->grad;
    const float p = j->p, q = j->q;
    for (size_t i = b; i < e; i++) dx[i] += g[i] * d(x[i], y[i], p, q);
}

/* Define name##_forward and name##_backward (split over the threads when large)
 * of an elementwise op from f, d and params(t, &p, &q), which reads its constants. */
#define NB_UNARY_KERNELS(name, f, d, params)                                                                   \
    static void name##_fwd_part(void *ctx, size_t b, size_t e) { nb_map_run(f, ctx, b, e); }                 \
    static void name##_bwd_part(void *ctx, size_t b, size_t e) { nb_dmap_run(d, ctx, b, e); }                \
    static nb_status name##_forward(nb_tensor *t)                                                              \
    {                                                                                                          \
        nb_map_job j = {.t = t};                                                                               \
        params(t, &j.p, &j.q);                                                                                 \
        nb_parallel_range(t->size, name##_fwd_part, &j);                                                       \
        return NB_OK;                                                                                          \
    }                                                                                                          \
    static void name##_backward(nb_tensor *t)                                                                  \
    {                                                                                                          \
        if (!t->src[0]->grad) return;                                                                          \
        nb_map_job j = {.t = t};                                                                               \
        params(t, &j.p, &j.q);                                                                                 \
        nb_parallel_range(t->size, name##_bwd_part, &j);                                                       \
    }

/* params for ops without constants. */
static inline void nb_no_params(const nb_tensor *t, float *p, float *q)
{
    (void)t;
    *p = *q = 0.0f;
}

/* Row softmax, the one kernel behind nb_softmax, nb_log_softmax, nb_causal_softmax,
 * nb_softmax_rows and the fused cross-entropies: p (k) = exp(z - max) / Σ exp(z - max) (p may
 * alias z). Returns log Σ exp(z - max), the sum taken by nb_sum_f and its log
 * in double, and writes max(z) to *mx, so lse(z) = *mx + return. */
float nb_softmax_row(float *p, const float *z, int k, float *mx);
/* Its gradient for one row: dz (k) += y ⊙ (dy - Σ dy ⊙ y), y the row's softmax
 * (nb_softmax and the causal softmax's visible columns). */
void nb_softmax_row_grad(float *dz, const float *y, const float *dy, int k);

/* Sum of n floats: 32 float lanes within blocks of 1024, the blocks added in
 * double (vectorises; the order is fixed, so results do not depend on threads). */
double nb_sum_f(const float *x, size_t n);


/* -- structure: layout.c, index.c, bmm.c, norm.c, dropout.c -- */
/* (and mask.c: the causal softmax) */
extern const nb_op nb_op_transpose;
extern const nb_op nb_op_slice;
extern const nb_op nb_op_concat;
extern const nb_op nb_op_split;
extern const nb_op nb_op_broadcast_to;
extern const nb_op nb_op_gather;
extern const nb_op nb_op_one_hot;
extern const nb_op nb_op_batch_matmul;
extern const nb_op nb_op_layer_norm;
extern const nb_op nb_op_dropout;
extern const nb_op nb_op_causal_softmax;
/* Append " key=[1,2,end]" (no leading space when buf is empty) to the
 * NUL-terminated buf of len bytes, for describe hooks; NB_SLICE_END prints "end". */
void nb_describe_ints(char *buf, size_t len, const char *key, const int *v, int n);


/* -- conv.c, pool.c, batchnorm.c -- */
extern const nb_op nb_op_conv2d; /* x, kernel, and the bias when given */
extern const nb_op nb_op_conv2d_relu_max_pool2d; /* conv_pool.c: x, kernel, and the bias when given */
extern const nb_op nb_op_max_pool2d;
extern const nb_op nb_op_avg_pool2d;
extern const nb_op nb_op_global_avg_pool2d;
extern const nb_op nb_op_batch_norm; /* x, moving_mean, moving_var, then gamma and/or beta when given */

/* The output size along one spatial axis under TensorFlow's padding rule (see
 * nb_ops.h): *out and the padding before the first element (top or left).
 * Returns false when a valid-padded output would be empty (in < eff_k). */
bool nb_conv_out_size(int in, int eff_k, int stride, nb_padding padding, int *out, int *pad_before);


/* Shape rule of the ops whose output has their float input's shape
 * (elementwise.c: scale; activation.c; softmax.c). */
nb_status nb_same_shape(nb_tensor *t);

/* Activation helpers shared by activation.c and the fused dense op (matmul.c). */

/* Numerically stable logistic function: never evaluates exp of a large positive
 * number, so it is exact to float precision for any |x| (0 or 1 at the ends). */
static inline float nb_sigmoidf(float x)
{
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

#endif
