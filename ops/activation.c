/* activation.c — relu, sigmoid, tanh, leaky_relu, elu, gelu, silu, softplus
 * (elementwise; out has a's shape), and nb_activate.
 *
 * relu, sigmoid and tanh write their derivative in terms of the output y, so the
 * backward reads only t->data: relu' = [y > 0], sigmoid' = y (1 - y),
 * tanh' = 1 - y². The others are value/derivative pairs (NB_UNARY_KERNELS). */

#include "ops_private.h"

/* ---- relu: y = max(x, 0) ---- */
static nb_status relu_forward(nb_tensor *t)
{
    const float *x = t->src[0]->data;
    for (size_t i = 0; i < t->size; i++) t->data[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return NB_OK;
}
static void relu_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->data[i] > 0.0f ? t->grad[i] : 0.0f;
}

/* ---- sigmoid: y = 1 / (1 + e^-x), stable for large |x| (nb_sigmoidf) ---- */
static nb_status sigmoid_forward(nb_tensor *t)
{
    const float *x = t->src[0]->data;
    for (size_t i = 0; i < t->size; i++) t->data[i] = nb_sigmoidf(x[i]);
    return NB_OK;
}
static void sigmoid_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * t->data[i] * (1.0f - t->data[i]);
}

/* ---- tanh ---- */
static nb_status tanh_forward(nb_tensor *t)
{
    const float *x = t->src[0]->data;
    for (size_t i = 0; i < t->size; i++) t->data[i] = tanhf(x[i]);
    return NB_OK;
}
static void tanh_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * (1.0f - t->data[i] * t->data[i]);
}

/* ---- leaky_relu: x for x >= 0, alpha x below; gradient 1 for x > 0, alpha otherwise ---- */
typedef struct leaky_relu_attr {
    float alpha;
} leaky_relu_attr;

static void leaky_params(const nb_tensor *t, float *p, float *q)
{
    *p = NB_ATTR(t, leaky_relu_attr)->alpha;
    *q = 0.0f;
}
static inline float leaky_f(float x, float alpha, float q) { (void)q; return x >= 0.0f ? x : alpha * x; }
static inline float leaky_d(float x, float y, float alpha, float q) { (void)y, (void)q; return x > 0.0f ? 1.0f : alpha; }
NB_UNARY_KERNELS(leaky_relu, leaky_f, leaky_d, leaky_params)
static void leaky_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "alpha=%g", (double)NB_ATTR(t, leaky_relu_attr)->alpha);
}

/* ---- elu (alpha 1): x for x > 0, e^x - 1 otherwise; gradient 1, or y + 1 = e^x ---- */
static inline float elu_f(float x, float p, float q) { (void)p, (void)q; return x > 0.0f ? x : nb_expf(x) - 1.0f; }
static inline float elu_d(float x, float y, float p, float q) { (void)p, (void)q; return x > 0.0f ? 1.0f : y + 1.0f; }
NB_UNARY_KERNELS(elu, elu_f, elu_d, nb_no_params)

/* ---- gelu: exact 0.5 x (1 + erf(x / √2)), or the tanh form (gelu_attr.approximate) ----
 * Exact: dy/dx = Φ(x) + x φ(x), Φ the normal CDF, φ its density.
 * Tanh form: u = c (x + k x³), c = √(2/π), k = 0.044715, t = tanh u;
 * y = 0.5 x (1 + t), dy/dx = 0.5 (1 + t) + 0.5 x (1 - t²) c (1 + 3 k x²). */
typedef struct gelu_attr {
    bool approximate;
} gelu_attr;

#define GELU_C 0.7978845608028654f /* √(2/π) */
#define GELU_K 0.044715f
/* erf without a libm call, so the loops vectorise: Abramowitz & Stegun 7.1.26,
 * |error| < 1.5e-7. */
static inline float erf_fast(float x)
{
    float ax = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float r = 1.0f - poly * nb_expf(-ax * ax);
    return x < 0.0f ? -r : r;
}
static inline float gelu_exact_f(float x, float p, float q)
{
    (void)p, (void)q;
    return 0.5f * x * (1.0f + erf_fast(x * 0.70710678118654752f));
}
static inline float gelu_exact_d(float x, float y, float p, float q)
{
    (void)y, (void)p, (void)q;
    float cdf = 0.5f * (1.0f + erf_fast(x * 0.70710678118654752f));
    return cdf + x * 0.3989422804014327f * nb_expf(-0.5f * x * x);
}
/* tanh u = 1 - 2 / (e^2u + 1): ±1 at the ends, no libm call */
static inline float tanh_fast(float u) { return 1.0f - 2.0f / (nb_expf(2.0f * u) + 1.0f); }
static inline float gelu_tanh_f(float x, float p, float q)
{
    (void)p, (void)q;
    return 0.5f * x * (1.0f + tanh_fast(GELU_C * (x + GELU_K * x * x * x)));
}
static inline float gelu_tanh_d(float x, float y, float p, float q)
{
    (void)y, (void)p, (void)q;
    float t = tanh_fast(GELU_C * (x + GELU_K * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_K * x * x);
}
NB_UNARY_KERNELS(gelu_exact, gelu_exact_f, gelu_exact_d, nb_no_params)
NB_UNARY_KERNELS(gelu_tanh, gelu_tanh_f, gelu_tanh_d, nb_no_params)
static nb_status gelu_forward(nb_tensor *t)
{
    return NB_ATTR(t, gelu_attr)->approximate ? gelu_tanh_forward(t) : gelu_exact_forward(t);
}
static void gelu_backward(nb_tensor *t)
{
    if (NB_ATTR(t, gelu_attr)->approximate) gelu_tanh_backward(t);
    else gelu_exact_backward(t);
}
static void gelu_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s", NB_ATTR(t, gelu_attr)->approximate ? "approximate (tanh)" : "exact (erf)");
}

/* ---- silu: x s, s = sigmoid(x); gradient s (1 + x (1 - s)) ---- */
static inline float sigmoid_fast(float x) { return 1.0f / (1.0f + nb_expf(-x)); } /* 0 or 1 at the ends */
static inline float silu_f(float x, float p, float q) { (void)p, (void)q; return x * sigmoid_fast(x); }
static inline float silu_d(float x, float y, float p, float q)
{
    (void)y, (void)p, (void)q;
    float s = sigmoid_fast(x);
    return s * (1.0f + x * (1.0f - s));
}
NB_UNARY_KERNELS(silu, silu_f, silu_d, nb_no_params)

/* ---- softplus: max(x, 0) + log1p(e^-|x|) (no overflow); gradient sigmoid(x) ---- */
static inline float softplus_f(float x, float p, float q)
{
    (void)p, (void)q;
    return (x > 0.0f ? x : 0.0f) + log1pf(nb_expf(-fabsf(x)));
}
static inline float softplus_d(float x, float y, float p, float q) { (void)y, (void)p, (void)q; return sigmoid_fast(x); }
NB_UNARY_KERNELS(softplus, softplus_f, softplus_d, nb_no_params)

const nb_op nb_op_leaky_relu = {.name = "leaky_relu", .n_src = 1, .shape = nb_same_shape, .forward = leaky_relu_forward,
                                .backward = leaky_relu_backward, .describe = leaky_describe};
const nb_op nb_op_elu = {.name = "elu", .n_src = 1, .shape = nb_same_shape, .forward = elu_forward, .backward = elu_backward};
const nb_op nb_op_gelu = {.name = "gelu", .n_src = 1, .shape = nb_same_shape, .forward = gelu_forward,
                          .backward = gelu_backward, .describe = gelu_describe};
const nb_op nb_op_silu = {.name = "silu", .n_src = 1, .shape = nb_same_shape, .forward = silu_forward, .backward = silu_backward};
const nb_op nb_op_softplus = {.name = "softplus", .n_src = 1, .shape = nb_same_shape, .forward = softplus_forward,
                              .backward = softplus_backward};

nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *a, float alpha)
{
    if (g && !isfinite(alpha))
        return nb_graph_fail(g, NB_ERR_ARG, "leaky_relu: alpha must be finite, got %g", (double)alpha);
    leaky_relu_attr attr = {.alpha = alpha};
    return nb_node(g, &nb_op_leaky_relu, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}
nb_tensor *nb_elu(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_elu, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *a, bool approximate)
{
    gelu_attr attr = {.approximate = approximate};
    return nb_node(g, &nb_op_gelu, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}
nb_tensor *nb_silu(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_silu, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_softplus(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_softplus, (nb_tensor *[]){a}, 1, NULL, 0); }

const nb_op nb_op_relu = {.name = "relu", .n_src = 1, .shape = nb_same_shape, .forward = relu_forward, .backward = relu_backward};
const nb_op nb_op_sigmoid = {.name = "sigmoid", .n_src = 1, .shape = nb_same_shape, .forward = sigmoid_forward, .backward = sigmoid_backward};
const nb_op nb_op_tanh = {.name = "tanh", .n_src = 1, .shape = nb_same_shape, .forward = tanh_forward, .backward = tanh_backward};

nb_tensor *nb_relu(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_relu, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_sigmoid, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_tanh, (nb_tensor *[]){a}, 1, NULL, 0); }

nb_tensor *nb_activate(nb_graph *g, nb_tensor *a, nb_activation act)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "activate: graph is NULL");
        return NULL;
    }
    switch (act) {
    case NB_LINEAR:
        if (!a && !nb_graph_error(g)) return nb_graph_fail(g, NB_ERR_ARG, "activate: input 0 is NULL");
        return a; /* identity: no node */
    case NB_RELU: return nb_relu(g, a);
    case NB_SIGMOID: return nb_sigmoid(g, a);
    case NB_TANH: return nb_tanh(g, a);
    case NB_SOFTMAX: return nb_softmax(g, a);
    case NB_LEAKY_RELU: return nb_leaky_relu(g, a, NB_LEAKY_RELU_ALPHA);
    case NB_ELU: return nb_elu(g, a);
    case NB_GELU: return nb_gelu(g, a, false);
    case NB_SILU: return nb_silu(g, a);
    case NB_SOFTPLUS: return nb_softplus(g, a);
    case NB_ACTIVATION_COUNT: break;
    }
    return nb_graph_fail(g, NB_ERR_ARG, "activate: unknown activation %d", (int)act);
}

const char *nb_activation_name(nb_activation a)
{
    switch (a) {
    case NB_LINEAR: return "linear";
    case NB_RELU: return "relu";
    case NB_SIGMOID: return "sigmoid";
    case NB_TANH: return "tanh";
    case NB_SOFTMAX: return "softmax";
    case NB_LEAKY_RELU: return "leaky_relu";
    case NB_ELU: return "elu";
    case NB_GELU: return "gelu";
    case NB_SILU: return "silu";
    case NB_SOFTPLUS: return "softplus";
    case NB_ACTIVATION_COUNT: break;
    }
    return "?";
}
