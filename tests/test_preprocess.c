/* test_preprocess.c — the MNIST example's picture preprocessing
 * (examples/mnist/preprocess.c) on PNGs the test writes: an off-centre, dark
 * on light, large digit-like ring must come out MNIST-like (light on dark,
 * longest side 20 px, centre of mass at the field's centre); grey, RGB and RGBA
 * versions of one picture agree; absurd dimensions, non-images, blank and
 * missing files are refused with a clear message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include <stb_image_write.h>

#include "../examples/mnist/preprocess.h"

#define W 200
#define H 150
#define N (PRE_SIDE * PRE_SIDE)
#include "tmpdir.h"

/* Ink coverage (0..1) of an elliptical ring, 60 wide and 100 tall, whose box
 * starts at (30, 25): a "0" well off the picture's centre. */
static float ring(int x, int y)
{
    double cx = 60, cy = 75, dx = (x + 0.5 - cx) / 30.0, dy = (y + 0.5 - cy) / 50.0, r = sqrt(dx * dx + dy * dy);
    return r <= 1.0 && r >= 0.7 ? 1.0f : 0.0f;
}

/* Write the ring as a PNG with `channels` (1 grey, 3 RGB, 4 RGBA), dark ink on
 * white (RGBA: black ink on a transparent background), or light on black. */
static void write_ring(const char *name, int channels, int light_ink)
{
    uint8_t *img = malloc((size_t)W * H * channels);
    assert_non_null(img);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float ink = ring(x, y);
            uint8_t *p = img + ((size_t)y * W + x) * channels;
            uint8_t v = (uint8_t)(light_ink ? 255 * ink : 255 * (1 - ink));
            if (channels == 4) {
                p[0] = p[1] = p[2] = 0;
                p[3] = (uint8_t)(255 * ink);
            } else if (channels == 3) {
                p[0] = v; /* ink red-free: dark cyan on white */
                p[1] = p[2] = (uint8_t)(light_ink ? v : 255 - 0.6 * (255 - v));
            } else {
                p[0] = v;
            }
        }
    assert_true(stbi_write_png(at(name), W, H, channels, img, W * channels));
    free(img);
}

/* Bounding box of out > 0, centre of mass with pixel centres at i + 0.5. */
static void measure(const float *out, int *bw, int *bh, double *cx, double *cy)
{
    int x0 = PRE_SIDE, y0 = PRE_SIDE, x1 = -1, y1 = -1;
    double m = 0, mx = 0, my = 0;
    for (int y = 0; y < PRE_SIDE; y++)
        for (int x = 0; x < PRE_SIDE; x++) {
            float v = out[y * PRE_SIDE + x];
            assert_true(v >= 0.0f && v <= 1.0f);
            if (v <= 0) continue;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
            m += v, mx += v * (x + 0.5), my += v * (y + 0.5);
        }
    assert_true(m > 0);
    *bw = x1 - x0 + 1;
    *bh = y1 - y0 + 1;
    *cx = mx / m;
    *cy = my / m;
}

static void test_off_centre_light_background(void **state)
{
    (void)state;
    write_ring("ring_gray.png", 1, 0);
    float out[N];
    assert_int_equal(pre_image_file(at("ring_gray.png"), PRE_MNIST, out), NB_OK);
    int bw, bh;
    double cx, cy;
    measure(out, &bw, &bh, &cx, &cy);
    assert_int_equal(bh, PRE_BOX);           /* the longest side (height) scaled to 20 */
    assert_in_range(bw, 11, 13);             /* 60:100 kept: 12 px */
    assert_true(fabs(cx - 14.0) <= 1.0);     /* centred by mass */
    assert_true(fabs(cy - 14.0) <= 1.0);
    /* inverted: the ring is bright, its hole and the border dark */
    float peak = 0;
    for (int i = 0; i < N; i++) peak = fmaxf(peak, out[i]);
    assert_float_equal(peak, 1.0f, 1e-6);
    assert_float_equal(out[14 * PRE_SIDE + 14], 0.0f, 1e-6); /* the hole */
    assert_float_equal(out[0], 0.0f, 1e-6);
    /* the same picture light-on-dark is not inverted and gives the same result */
    write_ring("ring_dark.png", 1, 1);
    float out2[N];
    assert_int_equal(pre_image_file(at("ring_dark.png"), PRE_MNIST, out2), NB_OK);
    for (int i = 0; i < N; i++) assert_float_equal(out[i], out2[i], 1e-3);
}

/* Fashion-MNIST's layout: longest side 28 px, the bounding box centred. */
static void test_fashion_layout(void **state)
{
    (void)state;
    write_ring("ring_f.png", 1, 0);
    float out[N];
    assert_int_equal(pre_image_file(at("ring_f.png"), PRE_FASHION, out), NB_OK);
    int bw, bh;
    double cx, cy;
    measure(out, &bw, &bh, &cx, &cy);
    assert_int_equal(bh, PRE_SIDE);
    assert_in_range(bw, 16, 18); /* 60:100 of 28 */
    int x0 = PRE_SIDE;
    for (int i = 0; i < N; i++)
        if (out[i] > 0 && i % PRE_SIDE < x0) x0 = i % PRE_SIDE;
    assert_int_equal(x0, (PRE_SIDE - bw) / 2);
}

static void test_rgb_and_rgba(void **state)
{
    (void)state;
    float gray[N], rgb[N], rgba[N];
    write_ring("g.png", 1, 0);
    write_ring("rgb.png", 3, 0);
    write_ring("rgba.png", 4, 0);
    assert_int_equal(pre_image_file(at("g.png"), PRE_MNIST, gray), NB_OK);
    assert_int_equal(pre_image_file(at("rgb.png"), PRE_MNIST, rgb), NB_OK);
    assert_int_equal(pre_image_file(at("rgba.png"), PRE_MNIST, rgba), NB_OK);
    for (int i = 0; i < N; i++) {
        assert_float_equal(gray[i], rgb[i], 0.02);
        assert_float_equal(gray[i], rgba[i], 0.02);
    }
}

/* A small picture is enlarged: a 4x6 block of ink in a 16x16 picture fills
 * 13x20 px (4:6 kept) centred in the field. */
static void test_enlarges_small_ink(void **state)
{
    (void)state;
    uint8_t img[16 * 16];
    for (int i = 0; i < 256; i++) img[i] = (i / 16 >= 2 && i / 16 < 8 && i % 16 >= 1 && i % 16 < 5) ? 0 : 255;
    float out[N];
    assert_int_equal(pre_gray(img, 16, 16, "block", PRE_MNIST, out), NB_OK);
    int bw, bh;
    double cx, cy;
    measure(out, &bw, &bh, &cx, &cy);
    assert_int_equal(bh, 20);
    assert_int_equal(bw, 13);
    assert_true(fabs(cx - 14.0) <= 1.0 && fabs(cy - 14.0) <= 1.0);
}

/* A PNG whose header announces w x h pixels (stb_image reads the size from
 * the IHDR chunk alone, so no pixel data is needed to test the refusal). */
static void write_png_header(const char *name, uint32_t w, uint32_t h)
{
    uint8_t b[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    uint32_t v[2] = {w, h};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) b[16 + 4 * k + i] = (uint8_t)(v[k] >> (24 - 8 * i));
    b[24] = 8; /* bit depth; colour type 0 (grey), no interlace */
    uLong crc = crc32(0, b + 12, 17);
    for (int i = 0; i < 4; i++) b[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
    FILE *f = fopen(at(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, sizeof b, f), sizeof b);
    assert_int_equal(fclose(f), 0);
}

static void assert_error_has(const char *fragment, const char *file)
{
    const char *msg = nb_last_error();
    if (!strstr(msg, fragment) || !strstr(msg, file))
        fail_msg("error message \"%s\" lacks \"%s\" or the file \"%s\"", msg, fragment, file);
}

static void test_absurd_dimensions(void **state)
{
    (void)state;
    float out[N];
    write_png_header("wide.png", 9000, 10);
    assert_int_equal(pre_image_file(at("wide.png"), PRE_MNIST, out), NB_ERR_FORMAT);
    assert_error_has("image of 9000x10 pixels is too large", at("wide.png"));
    write_png_header("big.png", 8000, 8400); /* each side fine, 67.2 M pixels > 2^26 */
    assert_int_equal(pre_image_file(at("big.png"), PRE_MNIST, out), NB_ERR_FORMAT);
    assert_error_has("image of 8000x8400 pixels is too large", at("big.png"));
    /* an accepted size whose pixel data is missing fails at decoding */
    write_png_header("nodata.png", 100, 100);
    assert_int_equal(pre_image_file(at("nodata.png"), PRE_MNIST, out), NB_ERR_FORMAT);
    assert_error_has("cannot decode the image", at("nodata.png"));
}

static void test_not_an_image(void **state)
{
    (void)state;
    float out[N];
    FILE *f = fopen(at("notes.txt"), "w");
    assert_non_null(f);
    fputs("this is not a picture\n", f);
    fclose(f);
    assert_int_equal(pre_image_file(at("notes.txt"), PRE_MNIST, out), NB_ERR_FORMAT);
    assert_error_has("not an image stb_image can read", at("notes.txt"));
    f = fopen(at("empty.png"), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(pre_image_file(at("empty.png"), PRE_MNIST, out), NB_ERR_FORMAT);
    assert_error_has("0 bytes is not a plausible image size", at("empty.png"));
    assert_int_equal(pre_image_file(at("missing.png"), PRE_MNIST, out), NB_ERR_IO);
    assert_error_has("cannot open", at("missing.png"));
    assert_int_equal(pre_image_file(dir, PRE_MNIST, out), NB_ERR_IO);
    assert_error_has("not a regular file", dir);
    /* a blank picture has no ink */
    uint8_t blank[64 * 64];
    memset(blank, 200, sizeof blank);
    assert_true(stbi_write_png(at("blank.png"), 64, 64, 1, blank, 64));
    assert_int_equal(pre_image_file(at("blank.png"), PRE_MNIST, out), NB_ERR_FORMAT);
    assert_error_has("no ink found", at("blank.png"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_centre_light_background),
        cmocka_unit_test(test_fashion_layout),
        cmocka_unit_test(test_rgb_and_rgba),
        cmocka_unit_test(test_enlarges_small_ink),
        cmocka_unit_test(test_absurd_dimensions),
        cmocka_unit_test(test_not_an_image),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
