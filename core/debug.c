/* debug.c — graph printing, DOT output, gradient checking, numerics check. */
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include <nabla/nb_debug.h>
#include "core_internal.h"
#include <nabla/nb_plugin.h>

static const char *op_name(const nb_tensor *t)
{
    if (t->op) return t->op->name;
    if (t->flags & NB_FLAG_PARAM) return "param";
    return "input";
}

/* The op's attributes as text ("" when it has none to show). */
static const char *attrs(const nb_tensor *t, char *buf, size_t len)
{
    buf[0] = '\0';
    if (t->op && t->op->describe) t->op->describe(t, buf, len);
    return buf;
}

static void summary(const float *v, size_t n, char *buf, size_t len)
{
    if (!v || n == 0) {
        snprintf(buf, len, "-");
        return;
    }
    if (n == 1) {
        snprintf(buf, len, "%.6g", v[0]);
        return;
    }
    float lo = v[0], hi = v[0];
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
        sum += v[i];
    }
    snprintf(buf, len, "%.4g/%.4g/%.4g", lo, sum / (double)n, hi);
}

void nb_graph_print(const nb_graph *g, FILE *out)
{
    if (!g || !out) return;
    int opw = 8; /* the op column fits the longest op name */
    for (int i = 0; i < nb_graph_size(g); i++) {
        int len = (int)strlen(op_name(nb_graph_node(g, i)));
        opw = len > opw ? len : opw;
    }
    fprintf(out, "%-4s %-12s %-*s %-10s %-16s %-30s %-30s %s\n", "id", "name", opw, "op", "inputs", "shape",
            "value min/mean/max", "grad min/mean/max", "attributes");
    for (int i = 0; i < nb_graph_size(g); i++) {
        const nb_tensor *t = nb_graph_node(g, i);
        char ins[32] = "", shp[64], val[64], grd[64], att[96];
        size_t at = 0;
        for (int k = 0; k < t->n_src && at < sizeof ins; k++)
            at += (size_t)snprintf(ins + at, sizeof ins - at, k ? ",%d" : "%d", t->src[k]->id);
        if (t->dtype == NB_I32) snprintf(val, sizeof val, "(int labels)");
        else summary(t->data, t->size, val, sizeof val);
        summary(t->grad, t->grad ? t->size : 0, grd, sizeof grd);
        fprintf(out, "%-4d %-12s %-*s %-10s %-16s %-30s %-30s %s\n", t->id, t->name[0] ? t->name : "-", opw,
                op_name(t), at ? ins : "-", nb_shape_str(t, shp, sizeof shp), val, grd, attrs(t, att, sizeof att));
    }
}

/* Up to 4 leading values of v, "v0, v1, v2, v3, ..." */
static void head(const float *v, size_t n, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < 4 && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %.4g" : "%.4g", v[i]);
    if (n > 4 && at < len) snprintf(buf + at, len - at, ", ...");
}

nb_status nb_graph_dot(const nb_graph *g, FILE *out, int flags)
{
    if (!g || !out) return nb_fail(NB_ERR_ARG, "nb_graph_dot: graph or stream is NULL");
    fprintf(out, "digraph nabla {\n  rankdir=LR;\n  node [shape=record, fontname=\"monospace\"];\n");
    for (int i = 0; i < nb_graph_size(g); i++) {
        const nb_tensor *t = nb_graph_node(g, i);
        char shp[64], buf[128];
        fprintf(out, "  n%d [label=\"{%s%s%s | %s", t->id, t->name[0] ? t->name : "", t->name[0] ? ": " : "",
                op_name(t), nb_shape_str(t, shp, sizeof shp));
        if (attrs(t, buf, sizeof buf)[0]) fprintf(out, " | %s", buf);
        if ((flags & NB_DOT_VALUES) && t->data) {
            head(t->data, t->size, buf, sizeof buf);
            fprintf(out, " | value: %s", buf);
        }
        if ((flags & NB_DOT_GRADS) && t->grad) {
            head(t->grad, t->size, buf, sizeof buf);
            fprintf(out, " | grad: %s", buf);
        }
        fprintf(out, "}\"%s];\n", t->flags & NB_FLAG_PARAM ? ", style=filled, fillcolor=\"#e8f0ff\"" : "");
        for (int k = 0; k < t->n_src; k++) fprintf(out, "  n%d -> n%d;\n", t->src[k]->id, t->id);
    }
    fprintf(out, "}\n");
    if (ferror(out)) return nb_fail(NB_ERR_IO, "nb_graph_dot: write failed");
    return NB_OK;
}

/* The loss after a forward pass that draws what the first pass drew (random ops
 * such as dropout see the same generator state every time), or NAN on failure. */
static double eval_loss(nb_graph *g, nb_tensor *loss, const nb_rng *rng)
{
    *nb_graph_rng(g) = *rng;
    if (nb_forward(g) != NB_OK) return NAN;
    return loss->data[0];
}

/* The tensors to check: `params` as given, or every parameter of g into all[]. */
static nb_status checked_tensors(nb_graph *g, nb_tensor *const **params, int *n, nb_tensor **all, int max)
{
    if (!*params) {
        *n = 0;
        for (int i = 0; i < nb_graph_size(g); i++) {
            if (!(nb_graph_node(g, i)->flags & NB_FLAG_PARAM)) continue;
            if (*n == max)
                return nb_fail(NB_ERR_ARG, "nb_gradcheck: more than %d parameters; pass the ones to check", max);
            all[(*n)++] = nb_graph_node(g, i);
        }
        *params = all;
    }
    if (*n < 0) return nb_fail(NB_ERR_ARG, "nb_gradcheck: negative tensor count %d", *n);
    for (int k = 0; k < *n; k++)
        if (!(*params)[k] || !(*params)[k]->grad || (*params)[k]->op)
            return nb_fail(NB_ERR_ARG, "nb_gradcheck: tensor %d is not a parameter with a gradient", k);
    return NB_OK;
}

nb_status nb_gradcheck(nb_graph *g, nb_tensor *loss, nb_tensor *const *params, int n, float h, double *worst)
{
    if (worst) *worst = NAN;
    if (!g || !loss || !worst) return nb_fail(NB_ERR_ARG, "nb_gradcheck: graph, loss or result pointer is NULL");
    if (h <= 0) h = 1e-3f;
    enum { MAX_CHECKED = 256 };
    nb_tensor *all[MAX_CHECKED];
    nb_status s = checked_tensors(g, &params, &n, all, MAX_CHECKED);
    if (s != NB_OK) return s;
    const nb_rng rng = *nb_graph_rng(g);
    nb_zero_grad(g);
    if ((s = nb_forward(g)) != NB_OK || (s = nb_backward(g, loss)) != NB_OK) return s;
    double err_max = 0;
    for (int k = 0; k < n; k++) {
        nb_tensor *p = params[k];
        for (size_t i = 0; i < p->size; i++) {
            float keep = p->data[i];
            p->data[i] = keep + h;
            double up = eval_loss(g, loss, &rng);
            p->data[i] = keep - h;
            double down = eval_loss(g, loss, &rng);
            p->data[i] = keep;
            if (isnan(up) || isnan(down)) {
                *nb_graph_rng(g) = rng;
                nb_forward(g);
                return nb_fail(NB_ERR_NUMERIC, "nb_gradcheck: the loss is NaN or a forward pass failed at "
                               "element %zu of tensor %d", i, k);
            }
            double num = (up - down) / (2.0 * (double)h), ana = p->grad[i];
            double scale = fmax(1.0, fmax(fabs(num), fabs(ana)));
            double err = fabs(num - ana) / scale;
            if (!(err <= err_max)) err_max = err; /* NaN counts as worst */
        }
    }
    *nb_graph_rng(g) = rng;
    if ((s = nb_forward(g)) != NB_OK) return s;
    *worst = err_max;
    return NB_OK;
}

nb_status nb_check_numerics(const nb_graph *g)
{
    if (!g) return nb_fail(NB_ERR_ARG, "nb_check_numerics: graph is NULL");
    for (int i = 0; i < nb_graph_size(g); i++) {
        const nb_tensor *t = nb_graph_node(g, i);
        if (t->dtype != NB_F32) continue;
        for (size_t j = 0; j < t->size; j++) {
            if (isfinite(t->data[j])) continue;
            char shp[64], ins[64] = "";
            size_t at = 0;
            for (int k = 0; k < t->n_src && at < sizeof ins; k++)
                at += (size_t)snprintf(ins + at, sizeof ins - at, k ? ", %d" : " from node %d", t->src[k]->id);
            return nb_fail(NB_ERR_NUMERIC, "node %d (%s%s%s, shape %s) holds %s at element %zu%s", t->id, op_name(t),
                           t->name[0] ? " " : "", t->name, nb_shape_str(t, shp, sizeof shp),
                           isnan(t->data[j]) ? "NaN" : "Inf", j, ins);
        }
    }
    return NB_OK;
}

/* ---- per-op timing ---- */

enum { PROFILE_ROWS = 64 };
static struct profile_row {
    const nb_op *op;
    unsigned long calls;
    double fwd_s, bwd_s;
} profile[PROFILE_ROWS];
static int profile_rows;
bool nb__profiling;

void nb_profile_enable(bool on) { nb__profiling = on; }

void nb_profile_reset(void)
{
    memset(profile, 0, sizeof profile);
    profile_rows = 0;
}

double nb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void nb__profile_add(const nb_op *op, bool backward, double seconds)
{
    int i = 0;
    while (i < profile_rows && profile[i].op != op) i++;
    if (i == profile_rows) {
        if (profile_rows == PROFILE_ROWS) return;
        profile[profile_rows++].op = op;
    }
    if (backward) profile[i].bwd_s += seconds;
    else {
        profile[i].fwd_s += seconds;
        profile[i].calls++;
    }
}

static int by_total(const void *a, const void *b)
{
    const struct profile_row *x = a, *y = b;
    double tx = x->fwd_s + x->bwd_s, ty = y->fwd_s + y->bwd_s;
    return (tx < ty) - (tx > ty);
}

int nb_profile_print(FILE *out)
{
    if (!out) return 0;
    struct profile_row rows[PROFILE_ROWS];
    memcpy(rows, profile, sizeof rows);
    qsort(rows, (size_t)profile_rows, sizeof rows[0], by_total);
    fprintf(out, "%-34s %10s %12s %12s %12s\n", "op", "calls", "forward ms", "backward ms", "us/call");
    for (int i = 0; i < profile_rows; i++)
        fprintf(out, "%-34s %10lu %12.1f %12.1f %12.2f\n", rows[i].op->name, rows[i].calls, 1e3 * rows[i].fwd_s,
                1e3 * rows[i].bwd_s, rows[i].calls ? 1e6 * (rows[i].fwd_s + rows[i].bwd_s) / (double)rows[i].calls : 0.0);
    return profile_rows;
}
