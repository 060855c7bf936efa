/* preprocess.h — turn a user's picture of a digit or a garment into the
 * 28x28 input a model trained on MNIST or Fashion-MNIST expects, the way each
 * data set was made:
 *   MNIST (LeCun et al.): ink bright on a dark background, the ink's bounding
 *     box scaled so its longest side is 20 px (keeping the aspect ratio, with
 *     anti-aliasing), placed so its centre of mass is at the field's centre;
 *   Fashion-MNIST (Xiao et al. 2017): the same polarity, the item trimmed and
 *     scaled so its longest side is 28 px, its bounding box centred.
 *
 * Any size and channel count stb_image reads (PNG, JPEG, BMP, GIF, PGM...);
 * colour is reduced to luminance, transparency composited over white. */
#ifndef MNIST_PREPROCESS_H
#define MNIST_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include <nabla/nabla.h>

#define PRE_SIDE 28                       /* output field, PRE_SIDE x PRE_SIDE */
#define PRE_BOX 20                        /* the ink's longest side after scaling (MNIST) */
#define PRE_MAX_SIDE 8192                 /* larger images are refused before decoding */
#define PRE_MAX_PIXELS (1L << 26)         /* so are images of more pixels than this */
#define PRE_MAX_FILE (256L * 1024 * 1024) /* and files larger than this */

/* How the data set placed its pictures in the field (see above). */
typedef enum pre_layout { PRE_MNIST = 0, PRE_FASHION } pre_layout;

/* Read and preprocess an image file into out (PRE_SIDE*PRE_SIDE floats in
 * [0, 1], 1 = ink). NB_ERR_IO (missing / unreadable), NB_ERR_FORMAT (not an
 * image, absurd dimensions, no ink), NB_ERR_NOMEM; the message names the file. */
nb_status pre_image_file(const char *path, pre_layout layout, float *out);

/* The same for an encoded image held in memory; `name` is used in messages. */
nb_status pre_image_memory(const uint8_t *buf, size_t len, const char *name, pre_layout layout, float *out);

/* The same from a grayscale picture: w*h bytes, row-major, 0 black .. 255
 * white, either polarity (a light background, border mean > 127, is inverted).
 * The ink is contrast-stretched so the scaled result's brightest pixel is 1. */
nb_status pre_gray(const uint8_t *gray, int w, int h, const char *name, pre_layout layout, float *out);

#endif
