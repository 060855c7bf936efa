/* lesson.c — backpropagation shown node by node (see lesson.h).
 *
 * Part 1: one example's cross-entropy. Logits z = [2.5, -1.0, 0.8, 4.1, -0.3],
 * true class 3:
 *   loss = log Σ_j exp(z_j) - z_3 = 4.328850 - 4.1 = 0.2288503
 *   d loss / d z = softmax(z) - onehot(3), so -0.2045524 at index 3.
 * Part 2: a two-layer network (3 -> 4 relu -> 3) on one example, every
 * intermediate value and gradient printed, the chain rule checked by hand.
 * Part 3: a convolution. A 4x4 one-channel image x and a 2x2 kernel K give a 3x3
 * output y[i,j] = Σ_ab x[i+a, j+b] K[a,b]; with loss = Σ_ij y[i,j] G[i,j] (so
 * d loss / d y = G), d loss / d K[a,b] = Σ_ij x[i+a, j+b] G[i,j]: the input
 * correlated with the output gradient, here [[1, 8], [3, 2]]. */
#include "lesson.h"
#include "../common/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

/* Print a tensor's values (or gradient) in full: name (shape) = [...] */
static void show(FILE *out, const char *label, const nb_tensor *t, const float *v)
{
    char shp[64];
    fprintf(out, "  %-22s %-8s = [", label, nb_shape_str(t, shp, sizeof shp));
    int cols = t->ndim >= 2 ? t->shape[t->ndim - 1] : (int)t->size;
    for (size_t i = 0; i < t->size; i++) {
        if (i && cols && i % (size_t)cols == 0) fprintf(out, "\n  %-22s %-8s    ", "", "");
        if (t->dtype == NB_I32) fprintf(out, "%s%d", i % (size_t)cols ? ", " : "", t->idata[i]);
        else fprintf(out, "%s%10.7f", i % (size_t)cols ? ", " : "", v[i]);
    }
    fprintf(out, "]\n");
}

static void show_all(FILE *out, const nb_graph *g, bool grads)
{
    for (int i = 0; i < nb_graph_size(g); i++) {
        const nb_tensor *t = nb_graph_node(g, i);
        char label[64];
        snprintf(label, sizeof label, "%d %s%s", t->id, t->name[0] ? t->name : "?", grads ? " grad" : "");
        if (!grads) show(out, label, t, t->data);
        else if (t->grad) show(out, label, t, t->grad);
    }
}

/* Write g as DOT with values and gradients to path. */
static int write_dot(const nb_graph *g, const char *path, FILE *out)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "backprop_explained: cannot create %s\n", path);
        return 1;
    }
    nb_status s = nb_graph_dot(g, f, NB_DOT_VALUES | NB_DOT_GRADS);
    if (fclose(f) != 0 || s) {
        fprintf(stderr, "backprop_explained: writing %s failed\n", path);
        return 1;
    }
    fprintf(out, "\nGraphviz DOT written to %s (render: dot -Tpng %s -o graph.png)\n", path, path);
    return 0;
}

static int graph_failed(const nb_graph *g)
{
    const char *msg = g && nb_graph_error(g) ? nb_graph_error(g) : nb_last_error();
    fprintf(stderr, "backprop_explained: %s\n", msg);
    return 1;
}

/* ---- part 1: softmax cross-entropy of one example ------------------------- */

static int part1(FILE *out, const char *dot)
{
    static const float logits[5] = {2.5f, -1.0f, 0.8f, 4.1f, -0.3f};
    const int label = 3, K = 5;
    fprintf(out, "== Part 1: the cross-entropy of one example ==\n\n"
                 "logits z = [2.5, -1.0, 0.8, 4.1, -0.3], true class y = 3\n"
                 "loss = -log softmax(z)_y = log(sum_j exp(z_j)) - z_y\n\n");
    nb_graph *g = nb_graph_new();
    if (!g) return graph_failed(NULL);
    nb_tensor *z = nb_set_name(nb_param(g, 2, (int[]){1, K}), "logits");
    nb_tensor *y = nb_set_name(nb_input(g, NB_I32, 1, (int[]){1}), "label");
    if (!z || !y) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    memcpy(z->data, logits, sizeof logits);
    y->idata[0] = label;
    /* Building an op evaluates it at once. */
    nb_tensor *xent = nb_set_name(nb_sparse_softmax_cross_entropy_with_logits(g, z, y), "xent");
    nb_tensor *loss = nb_set_name(nb_sum(g, xent), "loss");
    if (!loss) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    fprintf(out, "The graph after building it (building evaluates every node), nb_graph_print:\n");
    nb_graph_print(g, out);
    fprintf(out, "\nEvery node's value:\n");
    show_all(out, g, false);

    /* The forward pass by hand, in double precision. */
    double mx = logits[0], sum = 0, p[5];
    for (int j = 1; j < K; j++) mx = fmax(mx, logits[j]);
    for (int j = 0; j < K; j++) sum += exp(logits[j] - mx);
    for (int j = 0; j < K; j++) p[j] = exp(logits[j] - mx) / sum;
    double lse = mx + log(sum);
    fprintf(out, "\nBy hand: max z = %.1f; log-sum-exp = %.1f + log(sum_j exp(z_j - %.1f)) = %.6f\n", mx, mx, mx, lse);
    fprintf(out, "         loss = %.6f - z_3 = %.6f - %.1f = %.7f (nabla: %.7f)\n", lse, lse, logits[label],
             lse - logits[label], loss->data[0]);
    fprintf(out, "         softmax(z) = [");
    for (int j = 0; j < K; j++) fprintf(out, "%s%.7f", j ? ", " : "", p[j]);
    fprintf(out, "]\n");

    /* Backward: d loss / d loss = 1, then each op's backward in reverse. */
    nb_zero_grad(g);
    if (nb_backward(g, loss)) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    fprintf(out, "\nAfter nb_backward(g, loss), every gradient d loss / d node:\n");
    show_all(out, g, true);

    /* The gradient three ways: nabla, the formula softmax - onehot, and
     * central finite differences (f(z + h e_i) - f(z - h e_i)) / 2h. */
    const float h = 1e-3f;
    fprintf(out, "\nd loss / d z_i:   %-12s %-20s %-16s %s\n", "nabla", "softmax - onehot", "finite diff.", "|nabla - fd|");
    for (int i = 0; i < K; i++) {
        float keep = z->data[i];
        z->data[i] = keep + h;
        nb_forward(g);
        double up = loss->data[0];
        z->data[i] = keep - h;
        nb_forward(g);
        double down = loss->data[0];
        z->data[i] = keep;
        double fd = (up - down) / (2.0 * h), formula = p[i] - (i == label);
        fprintf(out, "  i = %d          %11.7f  %11.7f          %11.7f      %.1e\n", i, z->grad[i], formula, fd,
                fabs(z->grad[i] - fd));
    }
    if (nb_forward(g)) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    double worst;
    if (nb_gradcheck(g, loss, NULL, 0, h, &worst) != NB_OK) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    fprintf(out, "\nnb_gradcheck (h = 1e-3, every parameter): worst relative error %.2e%s\n", worst,
            worst < 1e-2 ? " - the gradient is right" : " - MISMATCH");
    fprintf(out, "\nloss = %.7f, gradient at the true class = %.7f\n", loss->data[0], z->grad[label]);
    int rc = dot ? write_dot(g, dot, out) : 0;
    nb_graph_free(g);
    return rc;
}

/* ---- part 2: a two-layer network on one example --------------------------- */

static int part2(FILE *out, const char *dot)
{
    fprintf(out, "\n== Part 2: a two-layer network on one example ==\n\n"
                 "x (1, 3) -> matmul W1 (3, 4) -> + b1 -> relu -> matmul W2 (4, 3) -> + b2 -> logits;\n"
                 "loss = sparse softmax cross-entropy with the true class 2\n"
                 "(ops kept separate so every intermediate shows; nb_dense fuses them in practice)\n\n");
    nb_graph *g = nb_graph_new();
    if (!g) return graph_failed(NULL);
    nb_tensor *x = nb_set_name(nb_input(g, NB_F32, 2, (int[]){1, 3}), "x");
    nb_tensor *w1 = nb_set_name(nb_param(g, 2, (int[]){3, 4}), "W1");
    nb_tensor *b1 = nb_set_name(nb_param(g, 1, (int[]){4}), "b1");
    nb_tensor *w2 = nb_set_name(nb_param(g, 2, (int[]){4, 3}), "W2");
    nb_tensor *b2 = nb_set_name(nb_param(g, 1, (int[]){3}), "b2");
    nb_tensor *y = nb_set_name(nb_input(g, NB_I32, 1, (int[]){1}), "label");
    if (!x || !w1 || !b1 || !w2 || !b2 || !y) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    const float xv[3] = {0.5f, -1.2f, 2.0f};
    memcpy(x->data, xv, sizeof xv);
    y->idata[0] = 2;
    /* Glorot-uniform weights from a seeded generator, small biases. */
    nb_rng rng;
    nb_rng_seed(&rng, 4); /* a seed where one hidden unit is off: the relu mask shows */
    for (int i = 0; i < 12; i++) w1->data[i] = nb_rng_uniform_range(&rng, -0.93f, 0.93f);
    for (int i = 0; i < 12; i++) w2->data[i] = nb_rng_uniform_range(&rng, -0.93f, 0.93f);
    for (int i = 0; i < 4; i++) b1->data[i] = 0.1f * (float)(i - 1);
    for (int i = 0; i < 3; i++) b2->data[i] = 0.05f;
    nb_tensor *a1 = nb_set_name(nb_matmul(g, x, w1), "x.W1");
    nb_tensor *pre = nb_set_name(nb_add(g, a1, b1), "x.W1+b1");
    nb_tensor *hid = nb_set_name(nb_relu(g, pre), "h=relu");
    nb_tensor *a2 = nb_set_name(nb_matmul(g, hid, w2), "h.W2");
    nb_tensor *logits = nb_set_name(nb_add(g, a2, b2), "logits");
    nb_tensor *xent = nb_set_name(nb_sparse_softmax_cross_entropy_with_logits(g, logits, y), "xent");
    nb_tensor *loss = nb_set_name(nb_sum(g, xent), "loss");
    if (!loss) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    nb_graph_print(g, out);
    fprintf(out, "\nForward, every node's value:\n");
    show_all(out, g, false);
    nb_zero_grad(g);
    if (nb_backward(g, loss)) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    fprintf(out, "\nBackward, every gradient (from the loss down). relu passes d h through where its\n"
                 "input was positive and blocks it elsewhere, so the dead unit's W1 column and b1 get 0:\n");
    show_all(out, g, true);

    /* The chain rule by hand from the printed numbers. */
    float p[3];
    memcpy(p, logits->data, sizeof p);
    nb_softmax_rows(p, 1, 3);
    double worst = 0;
    for (int j = 0; j < 3; j++) worst = fmax(worst, fabs(logits->grad[j] - (p[j] - (j == 2))));
    fprintf(out, "\nBy hand, from the printed numbers:\n");
    fprintf(out, "  %-56s max |diff| %.1e\n", "d loss / d logits = softmax(logits) - onehot(2)", worst);
    worst = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) worst = fmax(worst, fabs(w2->grad[i * 3 + j] - hid->data[i] * logits->grad[j]));
    fprintf(out, "  %-56s max |diff| %.1e\n", "d loss / d W2 = h^T . d logits (an outer product)", worst);
    worst = 0;
    for (int i = 0; i < 4; i++) {
        double dh = 0;
        for (int j = 0; j < 3; j++) dh += logits->grad[j] * w2->data[i * 3 + j];
        double dpre = pre->data[i] > 0 ? dh : 0; /* relu passes the gradient where its input was positive */
        worst = fmax(worst, fabs(hid->grad[i] - dh));
        worst = fmax(worst, fabs(pre->grad[i] - dpre));
        for (int k = 0; k < 3; k++) worst = fmax(worst, fabs(w1->grad[k * 4 + i] - xv[k] * dpre));
        worst = fmax(worst, fabs(b1->grad[i] - dpre));
    }
    fprintf(out, "  %-56s max |diff| %.1e\n", "d h = d logits . W2^T; d pre = d h where pre > 0;", worst);
    fprintf(out, "    d W1 = x^T . d pre; d b1 = d pre\n");
    double fd;
    if (nb_gradcheck(g, loss, NULL, 0, 1e-3f, &fd) != NB_OK) {
        int rc = graph_failed(g);
        nb_graph_free(g);
        return rc;
    }
    fprintf(out, "  %-56s worst relative error %.2e\n", "nb_gradcheck over W1, b1, W2, b2 (h = 1e-3)", fd);
    int rc = dot ? write_dot(g, dot, out) : 0;
    nb_graph_free(g);
    return rc;
}

/* ---- part 3: the gradient of a convolution's kernel ----------------------- */

/* Print an h x w grid of floats, one row per line. */
static void show_grid(FILE *out, const char *label, const float *v, int h, int w)
{
    for (int i = 0; i < h; i++) {
        fprintf(out, "  %-26s [", i ? "" : label);
        for (int j = 0; j < w; j++) fprintf(out, "%s%5.1f", j ? ", " : "", v[i * w + j]);
        fprintf(out, "]\n");
    }
}

/* d loss / d K by hand, by nabla and by finite differences, side by side. */
static int part3_check(FILE *out, nb_graph *g, nb_tensor *x, nb_tensor *k, nb_tensor *gy, nb_tensor *loss)
{
    float hand[4] = {0};
    for (int a = 0; a < 2; a++) /* correlate the input with the output gradient */
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) hand[a * 2 + b] += x->data[(i + a) * 4 + j + b] * gy->data[i * 3 + j];
    fprintf(out, "\nBy hand, d loss / d K[a,b] = sum_ij x[i+a, j+b] G[i,j] (x correlated with G):\n");
    show_grid(out, "d loss / d K by hand", hand, 2, 2);
    nb_zero_grad(g);
    if (nb_backward(g, loss)) return graph_failed(g);
    show_grid(out, "d loss / d K (nabla)", k->grad, 2, 2);
    const float h = 1e-3f;
    double worst = 0;
    fprintf(out, "\nd loss / d K[a,b]:   %-10s %-10s %s\n", "by hand", "nabla", "finite diff.");
    for (int e = 0; e < 4; e++) {
        float keep = k->data[e];
        k->data[e] = keep + h;
        nb_forward(g);
        double up = loss->data[0];
        k->data[e] = keep - h;
        nb_forward(g);
        double down = loss->data[0];
        k->data[e] = keep;
        fprintf(out, "  K[%d,%d]            %8.4f   %8.4f   %8.4f\n", e / 2, e % 2, hand[e], k->grad[e],
                (up - down) / (2.0 * h));
        worst = fmax(worst, fabs(hand[e] - k->grad[e]));
    }
    double fd;
    if (nb_forward(g) || nb_gradcheck(g, loss, NULL, 0, h, &fd) != NB_OK) return graph_failed(g);
    fprintf(out, "\nconv kernel gradient: by hand vs nabla max |diff| %.1e, nb_gradcheck worst relative error %.2e\n",
            worst, fd);
    return 0;
}

static int part3(FILE *out)
{
    static const float xv[16] = {1, 2, 0, 1, 0, 1, 3, 1, 2, 1, 0, 2, 1, 0, 1, 1};
    static const float kv[4] = {1, -1, 0.5f, 2}, gv[9] = {1, 0, -1, 2, 1, 0, 0, -1, 1};
    fprintf(out, "\n== Part 3: the gradient of a convolution's kernel ==\n\n"
                 "x: a 4x4 image with one channel, K: a 2x2 kernel, y = conv2d(x, K), valid, stride 1 (3x3):\n"
                 "  y[i,j] = sum_ab x[i+a, j+b] K[a,b]   (NHWC: x is (1, 4, 4, 1), K is (2, 2, 1, 1))\n"
                 "loss = sum_ij y[i,j] G[i,j] for a fixed G, so d loss / d y = G\n"
                 "(x is an input, so conv2d's backward skips d loss / d x entirely)\n\n");
    nb_graph *g = nb_graph_new();
    if (!g) return graph_failed(NULL);
    nb_tensor *x = nb_set_name(nb_input(g, NB_F32, 4, (int[]){1, 4, 4, 1}), "x");
    nb_tensor *k = nb_set_name(nb_param(g, 4, (int[]){2, 2, 1, 1}), "K");
    nb_tensor *gy = nb_set_name(nb_input(g, NB_F32, 4, (int[]){1, 3, 3, 1}), "G");
    if (x && k && gy) {
        memcpy(x->data, xv, sizeof xv);
        memcpy(k->data, kv, sizeof kv);
        memcpy(gy->data, gv, sizeof gv);
    }
    nb_tensor *y = nb_set_name(nb_conv2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, 1, 1), "y");
    nb_tensor *loss = nb_set_name(nb_sum(g, nb_mul(g, y, gy)), "loss");
    int rc = loss ? 0 : graph_failed(g);
    if (!rc) {
        nb_graph_print(g, out);
        fprintf(out, "\n");
        show_grid(out, "x", x->data, 4, 4);
        show_grid(out, "K", k->data, 2, 2);
        show_grid(out, "y = conv2d(x, K)", y->data, 3, 3);
        show_grid(out, "G = d loss / d y", gy->data, 3, 3);
        fprintf(out, "  loss = %.2f\n", loss->data[0]);
        rc = part3_check(out, g, x, k, gy, loss);
    }
    nb_graph_free(g);
    return rc;
}

static const char USAGE[] = "usage: backprop_explained [--dot FILE] [--dot-net FILE]\n"
                            "  --dot FILE      write part 1's graph (values and gradients) as Graphviz DOT\n"
                            "  --dot-net FILE  write part 2's two-layer network the same way\n";

int backprop_main(int argc, char **argv, FILE *out)
{
    const char *dot = NULL, *dot_net = NULL;
    static const struct option opts[] = {{"dot", required_argument, NULL, 'd'},
                                         {"dot-net", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    cli c;
    cli_begin(&c, "backprop_explained", NULL, USAGE, argc, argv, opts);
    for (int opt; (opt = cli_next(&c)) != -1;) {
        switch (opt) {
        case 'd': dot = c.value; break;
        case 'n': dot_net = c.value; break;
        case 'h': fputs(USAGE, out); return 0;
        default: return 2; /* cli_next has said why */
        }
    }
    if (c.next_operand < c.argc) return cli_usage_error(&c, "unexpected argument '%s'", c.argv[c.next_operand]);
    int rc = part1(out, dot);
    if (!rc) rc = part2(out, dot_net);
    if (!rc) rc = part3(out);
    return rc;
}
