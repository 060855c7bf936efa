/* custom_op — two ops written OUTSIDE the library, with the public plug-in
 * interface (<nabla/nb_plugin.h>) only, used like built-in ones.
 *
 *   hinge:  the hinge loss mean(max(0, margin - y * s)) of scores s and labels
 *           y in {-1, 1}; the margin is an attribute (Keras's hinge has 1).
 *   swish:  x * sigmoid(beta * x) with a learnable beta (a 1-element tensor).
 *
 * The program
 *   1. builds a small network with both ops and checks their gradients with
 *      nb_gradcheck against central finite differences (exit status 1 when the
 *      worst relative error exceeds GRAD_TOL),
 *   2. prints that graph with nb_graph_print (and writes it as Graphviz DOT
 *      with --dot FILE),
 *   3. shows the errors the ops report for bad input,
 *   4. trains a linear classifier with the hinge loss on two 2-D blobs (exit
 *      status 1 unless the loss goes down), then evaluates it on new points by
 *      running the same graph at another batch size.
 *
 * docs/CUSTOM_OPS.md walks through this file.
 *
 *   custom_op [--dot FILE] */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <nabla/nabla.h>

#define GRAD_TOL 1e-3 /* float32 finite differences with h = 1e-3 are good to ~1e-4 */

/* ==== the hinge loss ==================================================== */

/* The op's attributes: copied into the node by nb_node, read with NB_ATTR. */
typedef struct hinge_attr {
    float margin;
} hinge_attr;

/* Shape rule: scores and labels are float tensors of one shape; the loss is a
 * scalar. Runs at build time and before every forward: no allocation. */
static nb_status hinge_shape(nb_tensor *t)
{
    const nb_tensor *s = t->src[0], *y = t->src[1];
    if (s->dtype != NB_F32 || y->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "hinge: scores and labels must be float tensors (labels -1 or 1)");
    int same = s->ndim == y->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = s->shape[d] == y->shape[d];
    if (!same) {
        char ss[64], sy[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "hinge: scores %s and labels %s differ in shape",
                            nb_shape_str(s, ss, sizeof ss), nb_shape_str(y, sy, sizeof sy));
    }
    t->ndim = 0; /* a scalar: size 1 */
    return NB_OK;
}

/* Forward: the loss, and in scratch what the backward needs, d loss / d s_i
 * (-y_i / n inside the margin, 0 outside), so the backward is one loop. */
static nb_status hinge_forward(nb_tensor *t)
{
    const nb_tensor *s = t->src[0], *y = t->src[1];
    const size_t n = s->size;
    for (size_t i = 0; i < n; i++) /* the data can change between runs: check it on every one */
        if (y->data[i] != 1.0f && y->data[i] != -1.0f)
            return nb_node_fail(t, NB_ERR_LABEL, "hinge: labels[%zu] = %g; labels must be -1 or 1", i,
                                (double)y->data[i]);
    float *restrict dds = nb_scratch(t, n); /* grows only: no allocation after the first run */
    if (!dds) return NB_ERR_NOMEM;          /* nb_scratch recorded the message */
    const float margin = NB_ATTR(t, hinge_attr)->margin, inv_n = 1.0f / (float)n;
    const float *restrict sv = s->data, *restrict yv = y->data;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        float gap = margin - yv[i] * sv[i];
        total += gap > 0.0f ? gap : 0.0f;
        dds[i] = gap > 0.0f ? -yv[i] * inv_n : 0.0f;
    }
    t->data[0] = (float)(total / (double)n);
    return NB_OK;
}

/* Backward: ds += dloss * d loss / d s. Labels get no gradient (like the
 * built-in losses); scores only when they keep one. */
static void hinge_backward(nb_tensor *t)
{
    nb_tensor *s = t->src[0];
    if (!s->grad) return;
    const float g = t->grad[0];
    const float *restrict dds = t->scratch;
    float *restrict ds = s->grad;
    for (size_t i = 0; i < s->size; i++) ds[i] += g * dds[i];
}

/* "margin=1" in nb_graph_print and nb_graph_dot. */
static void hinge_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "margin=%g", (double)NB_ATTR(t, hinge_attr)->margin);
}

static const nb_op hinge_op = {.name = "hinge", .n_src = 2, .shape = hinge_shape, .forward = hinge_forward,
                               .backward = hinge_backward, .describe = hinge_describe};

/* The builder: checks the attributes (NB_ERR_ARG), then nb_node checks the
 * sources, runs the shape rule and the forward. NULL with a message on g. */
static nb_tensor *hinge_loss(nb_graph *g, nb_tensor *scores, nb_tensor *labels, float margin)
{
    if (g && !(margin >= 0.0f && isfinite(margin)))
        return nb_graph_fail(g, NB_ERR_ARG, "hinge: margin must be finite and >= 0, got %g", (double)margin);
    hinge_attr attr = {.margin = margin};
    return nb_node(g, &hinge_op, (nb_tensor *[]){scores, labels}, 2, &attr, sizeof attr);
}

/* ==== swish with a learnable beta ======================================= */

/* Shape rule: x any float tensor, beta one float; out has x's shape. */
static nb_status swish_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *beta = t->src[1];
    char sx[64], sb[64];
    if (x->dtype != NB_F32 || beta->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "swish: x and beta must be float tensors");
    if (beta->size != 1)
        return nb_node_fail(t, NB_ERR_SHAPE, "swish: beta must hold one value, got shape %s (x %s)",
                            nb_shape_str(beta, sb, sizeof sb), nb_shape_str(x, sx, sizeof sx));
    t->ndim = x->ndim;
    memcpy(t->shape, x->shape, sizeof t->shape);
    return NB_OK;
}

/* Forward: y = x * sig, keeping sig = sigmoid(beta * x) in scratch for the
 * backward. 1 / (1 + e^-z) is exact enough at both ends in float (e^-z
 * overflows to +Inf, giving 0, never NaN). */
static nb_status swish_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    float *restrict sig = nb_scratch(t, x->size);
    if (!sig) return NB_ERR_NOMEM;
    const float beta = t->src[1]->data[0];
    const float *restrict xv = x->data;
    float *restrict y = t->data;
    for (size_t i = 0; i < x->size; i++) {
        sig[i] = 1.0f / (1.0f + expf(-beta * xv[i]));
        y[i] = xv[i] * sig[i];
    }
    return NB_OK;
}

/* Backward: dy/dx = sig + beta x sig (1 - sig), dy/dbeta = x² sig (1 - sig);
 * each added only into a gradient that exists. */
static void swish_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0], *beta = t->src[1];
    const float b = beta->data[0];
    const float *restrict xv = x->data, *restrict sig = t->scratch, *restrict g = t->grad;
    if (x->grad) {
        float *restrict dx = x->grad;
        for (size_t i = 0; i < x->size; i++) dx[i] += g[i] * sig[i] * (1.0f + b * xv[i] * (1.0f - sig[i]));
    }
    if (beta->grad) {
        double db = 0;
        for (size_t i = 0; i < x->size; i++) db += g[i] * xv[i] * xv[i] * sig[i] * (1.0f - sig[i]);
        beta->grad[0] += (float)db;
    }
}

/* No attributes (beta is an input, shown as one): no describe hook. */
static const nb_op swish_op = {.name = "swish", .n_src = 2, .shape = swish_shape, .forward = swish_forward,
                               .backward = swish_backward};

static nb_tensor *swish(nb_graph *g, nb_tensor *x, nb_tensor *beta)
{
    return nb_node(g, &swish_op, (nb_tensor *[]){x, beta}, 2, NULL, 0);
}

/* ==== 1-2: gradient check and the graph ================================= */

static void fill_normal(nb_rng *rng, nb_tensor *t, float std)
{
    for (size_t i = 0; i < t->size; i++) t->data[i] = std * nb_rng_normal(rng);
}

/* x (6, 3) -> matmul W (3, 4) -> swish(beta) -> matmul v (4, 1) -> hinge with
 * labels y. Every leaf but y is a parameter, so nb_gradcheck checks the
 * gradient both ops send to x-like inputs and to beta. Returns 0 when the check
 * passes. */
static int check_gradients(const char *dot_path)
{
    nb_graph *g = nb_graph_new();
    if (!g) return fprintf(stderr, "custom_op: %s\n", nb_last_error()), 1;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *x = nb_set_name(nb_param(g, 2, (int[]){6, 3}), "x");
    nb_tensor *w = nb_set_name(nb_param(g, 2, (int[]){3, 4}), "W");
    nb_tensor *beta = nb_set_name(nb_param(g, 1, (int[]){1}), "beta");
    nb_tensor *v = nb_set_name(nb_param(g, 2, (int[]){4, 1}), "v");
    nb_tensor *y = nb_set_name(nb_input(g, NB_F32, 2, (int[]){6, 1}), "y");
    if (!x || !w || !beta || !v || !y) return fprintf(stderr, "custom_op: %s\n", nb_graph_error(g)), nb_graph_free(g), 1;
    fill_normal(&rng, x, 1.0f);
    fill_normal(&rng, w, 1.0f);
    fill_normal(&rng, v, 8.0f); /* scores of a few units: some beyond the margin */
    beta->data[0] = 1.5f;
    for (int i = 0; i < 6; i++) y->data[i] = 1.0f; /* valid labels to build on; set below */
    nb_tensor *h = nb_set_name(swish(g, nb_matmul(g, x, w), beta), "h");
    nb_tensor *s = nb_set_name(nb_matmul(g, h, v), "scores");
    nb_tensor *loss = nb_set_name(hinge_loss(g, s, y, 1.0f), "loss");
    if (!loss) return fprintf(stderr, "custom_op: %s\n", nb_graph_error(g)), nb_graph_free(g), 1;

    /* Labels: the signs of these first scores, so the examples with |s| < 1 are
     * inside the margin and the others outside: both sides of the kink get
     * checked (none is within 0.3 of it, far more than h). */
    int inside = 0;
    for (int i = 0; i < 6; i++) {
        y->data[i] = s->data[i] > 0.0f ? 1.0f : -1.0f;
        inside += fabsf(s->data[i]) < 1.0f;
    }
    double worst;
    nb_status st = nb_gradcheck(g, loss, NULL, 0, 1e-3f, &worst);
    if (st != NB_OK) return fprintf(stderr, "custom_op: %s\n", nb_last_error()), nb_graph_free(g), 1;
    printf("gradient check of hinge and swish (x, W, beta, v; %d of 6 examples inside the margin):\n", inside);
    printf("  worst relative error %.2e (tolerance %.0e): %s\n\n", worst, GRAD_TOL,
           worst <= GRAD_TOL ? "the gradients are right" : "WRONG");
    nb_graph_print(g, stdout); /* nb_gradcheck leaves one backward pass's gradients */

    int rc = worst <= GRAD_TOL ? 0 : 1;
    if (dot_path) {
        FILE *f = fopen(dot_path, "w");
        if (!f || nb_graph_dot(g, f, NB_DOT_VALUES | NB_DOT_GRADS) != NB_OK || fclose(f) != 0) {
            fprintf(stderr, "custom_op: cannot write %s\n", dot_path);
            rc = 1;
        } else {
            printf("\ngraph written to %s (render with: dot -Tpng %s -o graph.png)\n", dot_path, dot_path);
        }
    }
    nb_graph_free(g);
    return rc;
}

/* ==== 3: errors ========================================================== */

/* Print the graph's error and compare its status with `want`; 0 when it matches. */
static int expect(nb_graph *g, const nb_tensor *t, nb_status want)
{
    nb_status got = nb_graph_status(g);
    printf("  %-12s %s\n", nb_status_name(got), nb_graph_error(g) ? nb_graph_error(g) : "(no error)");
    nb_graph_clear_error(g);
    if (t == NULL && got == want) return 0;
    fprintf(stderr, "custom_op: expected %s\n", nb_status_name(want));
    return 1;
}

/* Bad shapes, a bad attribute, a bad label found by a later forward. */
static int check_errors(void)
{
    nb_graph *g = nb_graph_new();
    if (!g) return 1;
    nb_tensor *s = nb_input(g, NB_F32, 2, (int[]){4, 1}), *y5 = nb_input(g, NB_F32, 2, (int[]){5, 1});
    nb_tensor *y = nb_input(g, NB_F32, 2, (int[]){4, 1}), *b2 = nb_param(g, 1, (int[]){2});
    if (!s || !y5 || !y || !b2) return nb_graph_free(g), 1;
    for (int i = 0; i < 4; i++) y->data[i] = 1.0f;
    printf("\nwhat the ops say about bad input:\n");
    int bad = expect(g, hinge_loss(g, s, y5, 1.0f), NB_ERR_SHAPE);
    bad |= expect(g, hinge_loss(g, s, y, -1.0f), NB_ERR_ARG);
    bad |= expect(g, swish(g, s, b2), NB_ERR_SHAPE);
    bad |= expect(g, hinge_loss(g, s, NULL, 1.0f), NB_ERR_ARG);
    nb_tensor *loss = hinge_loss(g, s, y, 1.0f);
    y->data[2] = 0.5f; /* valid when built, not at the next run */
    nb_status st = loss ? nb_forward(g) : NB_ERR_ARG;
    printf("  %-12s %s (from nb_forward)\n", nb_status_name(st), nb_last_error());
    bad |= st != NB_ERR_LABEL;
    nb_graph_free(g);
    return bad;
}

/* ==== 4: a linear classifier trained with the hinge loss ================= */

enum { N_TRAIN = 200, N_TEST = 100, STEPS = 30 };

/* n points in two blobs around (-1.5, -1) (label -1) and (1.5, 1) (label 1),
 * standard deviation 1. */
static void make_blobs(nb_rng *rng, int n, float *x, float *y)
{
    for (int i = 0; i < n; i++) {
        y[i] = i % 2 ? 1.0f : -1.0f;
        x[2 * i] = 1.5f * y[i] + nb_rng_normal(rng);
        x[2 * i + 1] = y[i] + nb_rng_normal(rng);
    }
}

static float accuracy(const nb_tensor *s, const float *y, int n)
{
    int right = 0;
    for (int i = 0; i < n; i++) right += (s->data[i] > 0.0f) == (y[i] > 0.0f);
    return (float)right / (float)n;
}

/* Full-batch SGD on s = x w + b; returns 0 when the loss went down. */
static int train(void)
{
    static float xs[N_TRAIN * 2], ys[N_TRAIN], xt[N_TEST * 2], yt[N_TEST];
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    make_blobs(&rng, N_TRAIN, xs, ys);
    make_blobs(&rng, N_TEST, xt, yt);
    nb_graph *g = nb_graph_new();
    nb_optimizer *opt = nb_sgd(0.1f);
    if (!g || !opt) return fprintf(stderr, "custom_op: %s\n", nb_last_error()), nb_graph_free(g), 1;
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){N_TRAIN, 2}), *y = nb_input(g, NB_F32, 2, (int[]){N_TRAIN, 1});
    nb_tensor *w = nb_param(g, 2, (int[]){2, 1}), *b = nb_param(g, 1, (int[]){1});
    if (w) w->data[0] = -0.5f; /* start on the wrong side */
    /* Fill the inputs BEFORE building on them: a node is evaluated when it is
     * built, and zero-filled labels are not -1 or 1. */
    nb_status st = x && y ? nb_input_set(x, xs, N_TRAIN) : nb_graph_status(g);
    if (st == NB_OK) st = nb_input_set(y, ys, N_TRAIN);
    nb_tensor *s = nb_add(g, nb_matmul(g, x, w), b);
    nb_tensor *loss = st == NB_OK ? hinge_loss(g, s, y, 1.0f) : NULL;
    if (st == NB_OK) st = loss ? nb_graph_pack_params(g) : nb_graph_status(g);
    printf("\ntraining s = x w + b with the hinge loss (%d points, SGD 0.1, full batch):\n", N_TRAIN);
    float first = NAN, last = NAN;
    for (int step = 0; st == NB_OK && step < STEPS; step++) {
        if ((st = nb_forward(g)) != NB_OK || (st = nb_backward(g, loss)) != NB_OK) break;
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
        if (step % 5 == 0 || step == STEPS - 1)
            printf("  step %2d  loss %.4f  accuracy %.3f\n", step, (double)last, (double)accuracy(s, ys, N_TRAIN));
        st = nb_optimizer_step_clear(opt, nb_graph_param_data(g), nb_graph_param_grad(g), nb_graph_param_count(g));
    }
    /* The same graph on N_TEST new points: every shape rule runs again. */
    if (st == NB_OK && (st = nb_input_set(x, xt, N_TEST)) == NB_OK && (st = nb_input_set(y, yt, N_TEST)) == NB_OK &&
        (st = nb_forward(g)) == NB_OK)
        printf("  test (%d new points, same graph): loss %.4f  accuracy %.3f  w = [%.3f, %.3f]  b = %.3f\n", N_TEST,
               (double)loss->data[0], (double)accuracy(s, yt, N_TEST), (double)w->data[0], (double)w->data[1],
               (double)b->data[0]);
    if (st != NB_OK) fprintf(stderr, "custom_op: %s\n", nb_last_error()[0] ? nb_last_error() : nb_graph_error(g));
    int rc = st != NB_OK || !(last < first);
    if (st == NB_OK && rc) fprintf(stderr, "custom_op: the loss did not go down (%g -> %g)\n", first, last);
    nb_optimizer_free(opt);
    nb_graph_free(g);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dot = NULL;
    if (argc == 3 && strcmp(argv[1], "--dot") == 0) {
        dot = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "custom_op: unknown arguments\nusage: custom_op [--dot FILE]\n");
        return 2;
    }
    int rc = check_gradients(dot);
    rc |= check_errors();
    rc |= train();
    printf("\n%s\n", rc ? "FAILED" : "all checks passed");
    return rc;
}
