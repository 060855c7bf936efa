/* conv_internal.h — the convolution's machinery, shared by conv2d (conv.c) and
 * the fused convolution + relu + max pooling (conv_pool.c). Private to ops/.
 *
 * The work goes by chunks of images: the batch is split into `parts` contiguous
 * slices of images (one per thread), and each part walks its slice a chunk of
 * images at a time, so a chunk's col, its output rows and their gradients stay
 * in the core's cache between the steps that use them.
 *
 * Scratch: when the kernel takes a gradient and the batch's col (M, KC) is
 * small enough to stay in the cache, first that col as the forward built it,
 * for the kernel's gradient (else the backward rebuilds each chunk's col); then
 * per part a chunk of col rows (its col when none is kept, its dcol in the
 * backward), a chunk of output rows (the fused
 * relu's masked gradient, or the fused pooling's convolution output) and, for
 * p > 0, its own dkernel and dbias sums, added into the gradients after the
 * parts finish (part 0 accumulates into them directly). Inference keeps no col. */
#ifndef NB_CONV_INTERNAL_H
#define NB_CONV_INTERNAL_H

#include "ops_private.h"

/* The convolution's attributes: the builder's, then those its shape rule and
 * forward derive. The fused op's attributes start with one. */
typedef struct conv_attr {
    int stride_h, stride_w, dil_h, dil_w;
    nb_padding padding;
    int relu;                            /* max(0, .) after the bias */
    int pad_top, pad_left, out_h, out_w; /* derived: padding before, convolution output size */
    int parts;                           /* derived by the forward: how its scratch is split */
} conv_attr;

/* The sizes of one convolution: B batch, H W C input, KH KW kernel window, O
 * output channels, OH OW output size, strides, dilations, padding before, M =
 * B*OH*OW output pixels, KC = KH*KW*C the length of one receptive field. */
typedef struct conv_geom {
    int B, H, W, C, KH, KW, O, OH, OW;
    int sh, sw, dh, dw, pt, pl;
    size_t M, KC;
} conv_geom;

typedef struct conv_plan {
    int parts;       /* parts the batch is split into */
    size_t chunk;    /* images per chunk */
    size_t col_all;  /* floats of the kept col (M * KC, or 0: none kept) */
    size_t col_f;    /* floats of one part's col chunk (0 when pointwise) */
    size_t rows_f;   /* floats of one part's chunk of output rows (0 when unused) */
    size_t per_part; /* col_f + rows_f + KC*O + O */
} conv_plan;

typedef struct conv_run {
    conv_geom g;
    conv_plan p;
    nb_tensor *t;
} conv_run;

/* Checks t's sources (x, kernel, optional bias) and derives the padding and the
 * convolution's output size into t's conv_attr; fails with the node's message. */
nb_status nb__conv_check(nb_tensor *t);
/* Checks a builder's strides, dilations and padding; NULL-safe message on g. */
bool nb__conv_attrs_ok(nb_graph *g, const char *op, int sh, int sw, int dh, int dw, nb_padding padding);

/* The run of node t: its geometry and a plan whose parts keep a chunk of output
 * rows when `rows` (the fused relu or pooling), split in `parts` (0: by the
 * thread count; the backward passes the forward's, for which the scratch is sized). */
conv_run nb__conv_run(nb_tensor *t, bool rows, int parts);
/* The scratch floats the run uses (ops may keep more after them). */
size_t nb__conv_scratch_floats(const conv_run *r);
/* y (n*OH*OW, O) = act(col · kernel + bias) for images [b, b + n); part: the
 * part's scratch (its col chunk first, then its rows buffer at part + p.col_f). */
void nb__conv_forward_chunk(const conv_run *r, float *part, size_t b, size_t n, float *y, nb_activation act);

/* An op's forward of images [b, b + n) (part: the part's scratch), and the
 * output gradient of a chunk through what follows the convolution (the relu,
 * the pooling): t->grad's rows, or built in the part's rows buffer. */
typedef void (*conv_chunk_forward)(const conv_run *r, float *part, size_t b, size_t n);
typedef const float *(*conv_chunk_dy)(const conv_run *r, float *rows, size_t b, size_t n);
/* The drivers: the batch split over the threads, each part's chunks in turn.
 * The forward sizes the scratch (plus `extra` floats after it) and records the
 * split; the backward adds every part's kernel and bias gradients. */
nb_status nb__conv_forward(nb_tensor *t, bool rows, size_t extra, conv_chunk_forward fn);
void nb__conv_backward(nb_tensor *t, bool rows, conv_chunk_dy fn);
/* "3x3 stride 2 same" (plus " dilation 2", " relu"). */
int nb__conv_describe(const nb_tensor *t, char *buf, size_t len);

#endif
