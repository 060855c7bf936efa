/* progress.c — fit's progress output, after tf-keras's Progbar
 * (tf_keras/utils/generic_utils.py):
 *   bar (verbose 1):  "1500/1500 [==============================] - 3s 2ms/step - loss: 0.2900 - accuracy: 0.9200"
 *                     redrawn in place with '\r', " - ETA: 12s" while running;
 *   line (verbose 2): "1500/1500 - 3s - loss: 0.2900 - accuracy: 0.9200 - 3s/epoch - 2ms/step"
 * Values print as %.4f, or %.4e when |v| <= 1e-3. Redraws at most every 50 ms. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn_internal.h"

#define BAR_WIDTH 30
#define REDRAW_INTERVAL 0.05 /* seconds */


static int digits(int v)
{
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

/* Append printf output to buf at *at (bounded). */
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
    if (*at >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n > 0) *at = *at + (size_t)n < len ? *at + (size_t)n : len - 1;
}

static void put_value(char *buf, size_t len, size_t *at, const char *name, double v)
{
    put(buf, len, at, fabs(v) > 1e-3 ? " - %s: %.4f" : " - %s: %.4e", name, v);
}

static void put_metrics(char *buf, size_t len, size_t *at, const nn_metrics *mt)
{
    put_value(buf, len, at, "loss", mt->loss);
    if (mt->has_acc) put_value(buf, len, at, "accuracy", mt->acc);
    if (mt->has_val) {
        put_value(buf, len, at, "val_loss", mt->val_loss);
        if (mt->has_acc) put_value(buf, len, at, "val_accuracy", mt->val_acc);
    }
}

/* tf-keras _format_time: " 3s/step", " 2ms/step", " 450us/step". */
static void put_time(char *buf, size_t len, size_t *at, double t, const char *unit)
{
    if (t >= 1 || t == 0) put(buf, len, at, " %.0fs/%s", t, unit);
    else if (t >= 1e-3) put(buf, len, at, " %.0fms/%s", t * 1e3, unit);
    else put(buf, len, at, " %.0fus/%s", t * 1e6, unit);
}

void nn_progbar_epoch(nn_progbar *p, FILE *out, nb_verbosity v, int epoch, int epochs, int target)
{
    memset(p, 0, sizeof *p);
    p->out = out ? out : stdout;
    p->target = target;
    switch (v) {
    case NB_VERBOSE_SILENT: p->mode = 0; break;
    case NB_VERBOSE_BAR: p->mode = 1; break;
    case NB_VERBOSE_EPOCH: p->mode = 2; break;
    default: {
        int fd = fileno(p->out);
        p->mode = fd >= 0 && isatty(fd) ? 1 : 2;
    }
    }
    p->dynamic = p->mode == 1;
    p->start = nb_now();
    p->last_draw = -1e9;
    if (p->mode && epochs > 1) fprintf(p->out, "Epoch %d/%d\n", epoch + 1, epochs);
}

/* Seconds per step, leaving out the first step (it includes the warm-up). */
static double step_time(const nn_progbar *p, int current, double now)
{
    if (current > 1 && p->after_first > 0) return (now - p->after_first) / (current - 1);
    return current > 0 ? (now - p->start) / current : 0;
}

static void draw_bar(nn_progbar *p, int current, const nn_metrics *mt, bool final)
{
    double now = nb_now();
    char line[512];
    size_t at = 0;
    put(line, sizeof line, &at, "%*d/%d [", digits(p->target), current, p->target);
    int filled = (int)(BAR_WIDTH * (double)current / p->target);
    for (int i = 0; i < BAR_WIDTH; i++)
        put(line, sizeof line, &at, "%c",
            i < filled - 1 ? '=' : i == filled - 1 ? (current < p->target ? '>' : '=') : '.');
    put(line, sizeof line, &at, "]");
    double tps = step_time(p, current, now);
    if (final) {
        put(line, sizeof line, &at, " - %.0fs", now - p->start);
        put_time(line, sizeof line, &at, tps, "step");
    } else {
        double eta = tps * (p->target - current);
        if (eta > 3600) put(line, sizeof line, &at, " - ETA: %d:%02d:%02d", (int)eta / 3600, ((int)eta % 3600) / 60, (int)eta % 60);
        else if (eta > 60) put(line, sizeof line, &at, " - ETA: %d:%02d", (int)eta / 60, (int)eta % 60);
        else put(line, sizeof line, &at, " - ETA: %ds", (int)eta);
    }
    put_metrics(line, sizeof line, &at, mt);
    int width = (int)at;
    fprintf(p->out, "%s%s%*s%s", p->dynamic ? "\r" : "", line, p->prev_width > width ? p->prev_width - width : 0, "",
            final || !p->dynamic ? "\n" : "");
    fflush(p->out);
    p->prev_width = width;
    p->last_draw = now;
}

void nn_progbar_update(nn_progbar *p, int current, const nn_metrics *mt)
{
    if (current == 1) p->after_first = nb_now();
    if (p->mode != 1) return;
    double now = nb_now();
    if (now - p->last_draw < REDRAW_INTERVAL && current < p->target) return;
    draw_bar(p, current, mt, false);
}

void nn_progbar_finish(nn_progbar *p, const nn_metrics *mt)
{
    if (p->mode == 1) {
        draw_bar(p, p->target, mt, true);
    } else if (p->mode == 2) {
        double now = nb_now(), epoch_time = now - p->start;
        char line[512];
        size_t at = 0;
        put(line, sizeof line, &at, "%*d/%d - %.0fs", digits(p->target), p->target, p->target, epoch_time);
        put_metrics(line, sizeof line, &at, mt);
        put(line, sizeof line, &at, " -");
        put_time(line, sizeof line, &at, epoch_time, "epoch");
        put(line, sizeof line, &at, " -");
        put_time(line, sizeof line, &at, epoch_time / p->target, "step");
        fprintf(p->out, "%s\n", line);
        fflush(p->out);
    }
}
