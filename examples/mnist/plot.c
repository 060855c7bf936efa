/* plot.c — rasteriser, training curves and the misclassified-images grid. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define PLOT_MAX_SIDE 8192

static const plot_color WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GRID = {225, 225, 225},
                        AXIS = {90, 90, 90}, BLUE = {31, 119, 180}, ORANGE = {255, 127, 14},
                        GREEN = {0, 128, 0}, RED = {200, 30, 30}, DARK = {40, 40, 40};

nb_status plot_new(plot_canvas *c, int w, int h, plot_color bg)
{
    if (!c || w < 1 || h < 1 || w > PLOT_MAX_SIDE || h > PLOT_MAX_SIDE)
        return nb_fail(NB_ERR_ARG, "plot_new: canvas size %dx%d is outside 1..%d", w, h, PLOT_MAX_SIDE);
    *c = (plot_canvas){.w = w, .h = h, .rgb = malloc((size_t)w * h * 3)};
    if (!c->rgb) return nb_fail(NB_ERR_NOMEM, "plot_new: out of memory for a %dx%d canvas", w, h);
    plot_rect(c, 0, 0, w, h, bg);
    return NB_OK;
}

void plot_free(plot_canvas *c)
{
    if (!c) return;
    free(c->rgb);
    memset(c, 0, sizeof *c);
}

static void dot(plot_canvas *c, int x, int y, plot_color col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
    p[0] = col.r;
    p[1] = col.g;
    p[2] = col.b;
}

void plot_rect(plot_canvas *c, int x, int y, int w, int h, plot_color col)
{
    int xa = x < 0 ? 0 : x, ya = y < 0 ? 0 : y;
    int xb = x + w > c->w ? c->w : x + w, yb = y + h > c->h ? c->h : y + h;
    for (int j = ya; j < yb; j++)
        for (int i = xa; i < xb; i++) dot(c, i, j, col);
}

/* Bresenham's line, each point drawn as a thick x thick square. */
void plot_line(plot_canvas *c, int x0, int y0, int x1, int y1, int thick, plot_color col)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    int off = (thick - 1) / 2;
    for (;;) {
        plot_rect(c, x0 - off, y0 - off, thick, thick, col);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* stb_easy_font indexes its tables by (char - 32): keep to printable ASCII. */
static char printable(char ch)
{
    return ch >= 32 && ch < 127 ? ch : '?';
}

int plot_text_width(const char *text, int scale)
{
    int widest = 0, w = 0;
    for (const char *t = text; *t; t++) {
        if (*t == '\n') {
            w = 0;
            continue;
        }
        char one[2] = {printable(*t), 0};
        w += stb_easy_font_width(one) * scale;
        if (w > widest) widest = w;
    }
    return widest;
}

int plot_text(plot_canvas *c, int x, int y, const char *text, int scale, plot_color col)
{
    int cx = x, widest = 0;
    for (const char *t = text; *t; t++) {
        if (*t == '\n') {
            cx = x;
            y += 12 * scale;
            continue;
        }
        char one[2] = {printable(*t), 0};
        float quads[64 * 4]; /* 16 quads of 4 vertices of (x, y, z, colour) */
        int nq = stb_easy_font_print(0, 0, one, NULL, quads, sizeof quads);
        for (int q = 0; q < nq; q++) {
            const float *v0 = quads + q * 16, *v2 = v0 + 8; /* opposite corners */
            int qx = (int)v0[0], qy = (int)v0[1], qw = (int)v2[0] - qx, qh = (int)v2[1] - qy;
            plot_rect(c, cx + qx * scale, y + qy * scale, qw * scale, qh * scale, col);
        }
        cx += stb_easy_font_width(one) * scale;
        if (cx - x > widest) widest = cx - x;
    }
    return widest;
}

nb_status plot_save_png(const plot_canvas *c, const char *path)
{
    if (!c || !c->rgb || !path) return nb_fail(NB_ERR_ARG, "plot_save_png: NULL argument");
    if (!stbi_write_png(path, c->w, c->h, 3, c->rgb, c->w * 3))
        return nb_fail(NB_ERR_IO, "%s: cannot write the PNG", path);
    return NB_OK;
}

/* ---- training curves ------------------------------------------------------ */

/* A plot area: pixels (x, y, w, h) showing data [x0, x1] x [y0, y1]. */
typedef struct panel {
    int x, y, w, h;
    double x0, x1, y0, y1;
} panel;

static int px(const panel *p, double v)
{
    return p->x + (int)lround((v - p->x0) / (p->x1 - p->x0) * (p->w - 1));
}

static int py(const panel *p, double v)
{
    return p->y + p->h - 1 - (int)lround((v - p->y0) / (p->y1 - p->y0) * (p->h - 1));
}

/* A round step (1, 2 or 5 times a power of ten) giving about `target` ticks. */
static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void draw_series(plot_canvas *c, const panel *p, const float *v, int n, plot_color col)
{
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        int x = px(p, i + 1), y = py(p, v[i]);
        if (i > 0 && isfinite(v[i - 1])) plot_line(c, px(p, i), py(p, v[i - 1]), x, y, 2, col);
        plot_rect(c, x - 2, y - 2, 5, 5, col);
    }
}

static void draw_panel(plot_canvas *c, panel p, const char *name, int epochs, const float *train, const float *val)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < epochs; i++) {
        if (isfinite(train[i])) lo = fmin(lo, train[i]), hi = fmax(hi, train[i]);
        if (val && isfinite(val[i])) lo = fmin(lo, val[i]), hi = fmax(hi, val[i]);
    }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-6) lo -= 0.05, hi += 0.05;
    double step = nice_step(hi - lo, 5);
    p.y0 = floor(lo / step) * step;
    p.y1 = ceil(hi / step) * step;
    p.x0 = 0.5;
    p.x1 = epochs + 0.5;
    int decimals = (int)ceil(-log10(step) - 1e-9);
    if (decimals < 0) decimals = 0;
    char buf[32];
    for (double t = p.y0; t <= p.y1 + step * 1e-6; t += step) {
        int y = py(&p, t);
        plot_line(c, p.x, y, p.x + p.w - 1, y, 1, GRID);
        snprintf(buf, sizeof buf, "%.*f", decimals, t);
        plot_text(c, p.x - 8 - plot_text_width(buf, 1), y - 4, buf, 1, DARK);
    }
    int xstep = (int)fmax(1, nice_step(epochs, 8));
    for (int e = 1; e <= epochs; e += xstep) {
        int x = px(&p, e);
        plot_line(c, x, p.y + p.h, x, p.y + p.h + 4, 1, AXIS);
        snprintf(buf, sizeof buf, "%d", e);
        plot_text(c, x - plot_text_width(buf, 1) / 2, p.y + p.h + 8, buf, 1, DARK);
    }
    plot_line(c, p.x, p.y, p.x, p.y + p.h - 1, 1, AXIS);
    plot_line(c, p.x, p.y + p.h - 1, p.x + p.w - 1, p.y + p.h - 1, 1, AXIS);
    plot_text(c, p.x + p.w / 2 - plot_text_width("epoch", 1) / 2, p.y + p.h + 24, "epoch", 1, DARK);
    plot_text(c, p.x, p.y - 22, name, 2, BLACK);
    draw_series(c, &p, train, epochs, BLUE);
    if (val) draw_series(c, &p, val, epochs, ORANGE);
}

nb_status plot_history(const char *path, const char *title, int epochs, const float *loss, const float *accuracy,
                       const float *val_loss, const float *val_accuracy)
{
    if (!path || !loss || !accuracy || epochs < 1) return nb_fail(NB_ERR_ARG, "plot_history: no epochs to draw");
    plot_canvas c = {0};
    nb_status s = plot_new(&c, 900, 420, WHITE);
    if (s) return s;
    plot_text(&c, 20, 12, title ? title : "training", 2, BLACK);
    /* legend */
    int lx = 20, ly = 44;
    plot_rect(&c, lx, ly + 2, 20, 3, BLUE);
    lx += 26 + plot_text(&c, lx + 26, ly, "training", 1, DARK) + 20;
    if (val_loss || val_accuracy) {
        plot_rect(&c, lx, ly + 2, 20, 3, ORANGE);
        plot_text(&c, lx + 26, ly, "validation", 1, DARK);
    }
    draw_panel(&c, (panel){.x = 70, .y = 100, .w = 360, .h = 260}, "loss", epochs, loss, val_loss);
    draw_panel(&c, (panel){.x = 520, .y = 100, .w = 360, .h = 260}, "accuracy", epochs, accuracy, val_accuracy);
    s = plot_save_png(&c, path);
    plot_free(&c);
    return s;
}

/* ---- misclassified images ------------------------------------------------- */

#define GRID_COLS 8
#define GRID_MAX 48
#define CELL_W 116
#define CELL_H 124

nb_status plot_errors(const char *path, const uint8_t *images, int rows, int cols, const int *idx,
                      const uint8_t *truth, const uint8_t *pred, int n, const char *const *names, int total,
                      int tested)
{
    if (!path || !images || !idx || !truth || !pred || rows < 1 || cols < 1 || n < 0)
        return nb_fail(NB_ERR_ARG, "plot_errors: bad argument");
    if (n > GRID_MAX) n = GRID_MAX;
    int grid_rows = n ? (n + GRID_COLS - 1) / GRID_COLS : 1;
    plot_canvas c = {0};
    nb_status s = plot_new(&c, GRID_COLS * CELL_W + 16, 48 + grid_rows * CELL_H, WHITE);
    if (s) return s;
    char buf[96];
    snprintf(buf, sizeof buf, "%d of %d test images misclassified%s", total, tested,
             total > n ? " (the first ones shown)" : "");
    plot_text(&c, 10, 10, buf, 2, BLACK);
    int side = rows > cols ? rows : cols, dw = cols * 84 / side, dh = rows * 84 / side;
    if (dw < 1) dw = 1;
    if (dh < 1) dh = 1;
    for (int k = 0; k < n; k++) {
        int x = 8 + (k % GRID_COLS) * CELL_W, y = 44 + (k / GRID_COLS) * CELL_H;
        int ix = x + (CELL_W - dw) / 2, iy = y + 4;
        const uint8_t *img = images + (size_t)idx[k] * rows * cols;
        for (int r = 0; r < dh; r++) /* nearest-neighbour scaling to 84 px */
            for (int q = 0; q < dw; q++) {
                uint8_t v = img[(r * rows / dh) * cols + q * cols / dw];
                dot(&c, ix + q, iy + r, (plot_color){v, v, v});
            }
        char name_t[16], name_p[16];
        snprintf(name_t, sizeof name_t, "%d", truth[k]);
        snprintf(name_p, sizeof name_p, "%d", pred[k]);
        snprintf(buf, sizeof buf, "true %s", names ? names[truth[k]] : name_t);
        plot_text(&c, x + 4, iy + 84 + 6, buf, 1, GREEN);
        snprintf(buf, sizeof buf, "pred %s", names ? names[pred[k]] : name_p);
        plot_text(&c, x + 4, iy + 84 + 18, buf, 1, RED);
    }
    s = plot_save_png(&c, path);
    plot_free(&c);
    return s;
}
