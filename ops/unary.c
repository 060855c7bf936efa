/* unary.c — elementwise math: neg, exp, log, sqrt, square, abs, clip, pow.
 *
 * Each op is a value f(x) and a derivative d(x, y) = dy/dx (NB_UNARY_KERNELS in
 * ops_private.h turns them into a vectorisable forward and a backward that adds
 * g * d into the input's gradient). Out has the input's shape. */
#include "ops_private.h"

/* ---- no constants ---- */
static inline float neg_f(float x, float p, float q) { (void)p, (void)q; return -x; }
static inline float neg_d(float x, float y, float p, float q) { (void)x, (void)y, (void)p, (void)q; return -1.0f; }
static inline float exp_f(float x, float p, float q) { (void)p, (void)q; return nb_expf(x); }
static inline float exp_d(float x, float y, float p, float q) { (void)x, (void)p, (void)q; return y; }
static inline float log_f(float x, float p, float q) { (void)p, (void)q; return logf(x); }
static inline float log_d(float x, float y, float p, float q) { (void)y, (void)p, (void)q; return 1.0f / x; }
static inline float sqrt_f(float x, float p, float q) { (void)p, (void)q; return sqrtf(x); }
static inline float sqrt_d(float x, float y, float p, float q) { (void)x, (void)p, (void)q; return 0.5f / y; }
static inline float square_f(float x, float p, float q) { (void)p, (void)q; return x * x; }
static inline float square_d(float x, float y, float p, float q) { (void)y, (void)p, (void)q; return 2.0f * x; }
static inline float abs_f(float x, float p, float q) { (void)p, (void)q; return fabsf(x); }
/* sign(x): 0 at x = 0, as TensorFlow's gradient of abs */
static inline float abs_d(float x, float y, float p, float q)
{
    (void)y, (void)p, (void)q;
    return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f;
}

NB_UNARY_KERNELS(neg, neg_f, neg_d, nb_no_params)
NB_UNARY_KERNELS(exp, exp_f, exp_d, nb_no_params)
NB_UNARY_KERNELS(log, log_f, log_d, nb_no_params)
NB_UNARY_KERNELS(sqrt, sqrt_f, sqrt_d, nb_no_params)
NB_UNARY_KERNELS(square, square_f, square_d, nb_no_params)
NB_UNARY_KERNELS(abs, abs_f, abs_d, nb_no_params)

/* ---- clip: min(max(x, lo), hi); gradient where lo <= x <= hi (bounds included) ---- */
typedef struct clip_attr {
    float lo, hi;
} clip_attr;

static void clip_params(const nb_tensor *t, float *p, float *q)
{
    *p = NB_ATTR(t, clip_attr)->lo;
    *q = NB_ATTR(t, clip_attr)->hi;
}
static inline float clip_f(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static inline float clip_d(float x, float y, float lo, float hi)
{
    (void)y;
    return x >= lo && x <= hi ? 1.0f : 0.0f;
}
NB_UNARY_KERNELS(clip, clip_f, clip_d, clip_params)
static void clip_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "min=%g max=%g", (double)NB_ATTR(t, clip_attr)->lo, (double)NB_ATTR(t, clip_attr)->hi);
}

/* ---- pow: x^p for a constant p ---- */
typedef struct pow_attr {
    float exponent;
} pow_attr;

static void pow_params(const nb_tensor *t, float *p, float *q)
{
    *p = NB_ATTR(t, pow_attr)->exponent;
    *q = 0.0f;
}
static inline float pow_f(float x, float p, float q)
{
    (void)q;
    return p == 2.0f ? x * x : powf(x, p);
}
/* p x^(p-1); 0 for p = 0 (x^-1 would make 0 · Inf at x = 0) */
static inline float pow_d(float x, float y, float p, float q)
{
    (void)y, (void)q;
    return p == 0.0f ? 0.0f : p == 2.0f ? 2.0f * x : p == 1.0f ? 1.0f : p * powf(x, p - 1.0f);
}
NB_UNARY_KERNELS(pow, pow_f, pow_d, pow_params)
static void pow_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "exponent=%g", (double)NB_ATTR(t, pow_attr)->exponent);
}

#define UNARY_DEF(nm, ...)                                                                                 \
    const nb_op nb_op_##nm = {.name = #nm, .n_src = 1, .shape = nb_same_shape, .forward = nm##_forward, \
                              .backward = nm##_backward, __VA_ARGS__}
UNARY_DEF(neg);
UNARY_DEF(exp);
UNARY_DEF(log);
UNARY_DEF(sqrt);
UNARY_DEF(square);
UNARY_DEF(abs);
UNARY_DEF(clip, .describe = clip_describe);
UNARY_DEF(pow, .describe = pow_describe);

static nb_tensor *unary(nb_graph *g, const nb_op *op, nb_tensor *a) { return nb_node(g, op, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_neg(nb_graph *g, nb_tensor *a) { return unary(g, &nb_op_neg, a); }
nb_tensor *nb_exp(nb_graph *g, nb_tensor *a) { return unary(g, &nb_op_exp, a); }
nb_tensor *nb_log(nb_graph *g, nb_tensor *a) { return unary(g, &nb_op_log, a); }
nb_tensor *nb_sqrt(nb_graph *g, nb_tensor *a) { return unary(g, &nb_op_sqrt, a); }
nb_tensor *nb_square(nb_graph *g, nb_tensor *a) { return unary(g, &nb_op_square, a); }
nb_tensor *nb_abs(nb_graph *g, nb_tensor *a) { return unary(g, &nb_op_abs, a); }

nb_tensor *nb_clip(nb_graph *g, nb_tensor *a, float lo, float hi)
{
    if (g && !(lo <= hi)) /* also catches a NaN bound */
        return nb_graph_fail(g, NB_ERR_ARG, "clip: min %g must not exceed max %g (and neither may be NaN)", (double)lo,
                             (double)hi);
    clip_attr attr = {.lo = lo, .hi = hi};
    return nb_node(g, &nb_op_clip, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}

nb_tensor *nb_pow(nb_graph *g, nb_tensor *a, float p)
{
    if (g && !isfinite(p)) return nb_graph_fail(g, NB_ERR_ARG, "pow: the exponent must be finite, got %g", (double)p);
    pow_attr attr = {.exponent = p};
    return nb_node(g, &nb_op_pow, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}
