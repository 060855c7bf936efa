/* plot.h — a small RGB rasteriser and the two pictures the MNIST example draws:
 * training curves (loss and accuracy per epoch, training and validation) and a
 * grid of misclassified test images. Written as PNG with stb_image_write.
 * Text uses stb_easy_font's segment glyphs, drawn as filled rectangles. */
#ifndef MNIST_PLOT_H
#define MNIST_PLOT_H

#include <stdint.h>

#include <nabla/nabla.h>

/* An RGB picture, w x h pixels of 3 bytes, row-major. */
typedef struct plot_canvas {
    int w, h;
    uint8_t *rgb; /* (h, w, 3) */
} plot_canvas;

typedef struct plot_color {
    uint8_t r, g, b;
} plot_color;

/* A w x h canvas filled with `bg`. NB_ERR_ARG for a size outside 1..8192,
 * NB_ERR_NOMEM. Free with plot_free. */
nb_status plot_new(plot_canvas *c, int w, int h, plot_color bg);
void plot_free(plot_canvas *c);

/* Drawing; everything is clipped to the canvas. */
void plot_rect(plot_canvas *c, int x, int y, int w, int h, plot_color col); /* filled */
void plot_line(plot_canvas *c, int x0, int y0, int x1, int y1, int thick, plot_color col);
/* Text with its top-left corner at (x, y), glyphs about 6 x 7 px times `scale`;
 * '\n' starts a new line. Returns the width drawn in pixels. Non-ASCII bytes
 * are drawn as '?'. */
int plot_text(plot_canvas *c, int x, int y, const char *text, int scale, plot_color col);
/* Width in pixels of the widest line of text at `scale`. */
int plot_text_width(const char *text, int scale);

/* Write the canvas as a PNG. NB_ERR_IO naming the file on failure. */
nb_status plot_save_png(const plot_canvas *c, const char *path);

/* Training curves: two panels (loss, accuracy) over epochs 1..epochs, training
 * in blue and validation in orange (val_* may be NULL). */
nb_status plot_history(const char *path, const char *title, int epochs, const float *loss, const float *accuracy,
                       const float *val_loss, const float *val_accuracy);

/* A grid of the first min(n, 48) images idx[0..n) (rows x cols bytes each, at
 * images + idx[i] * rows * cols), scaled to 84 px, captioned with truth[i] and
 * pred[i] (class names[k], or the number k when names is NULL). `total` and
 * `tested` go in the title ("123 of 10000 test images misclassified"). */
nb_status plot_errors(const char *path, const uint8_t *images, int rows, int cols, const int *idx,
                      const uint8_t *truth, const uint8_t *pred, int n, const char *const *names, int total,
                      int tested);

#endif
