/* preprocess.c — a user's picture -> MNIST's 28x28 layout (see preprocess.h). */
#include "preprocess.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

#define PRE_INK_THRESHOLD 0.2f /* ink level (0..1 above the background) that counts for the bounding box */
#define PRE_MIN_CONTRAST 24.0f /* grey levels between background and darkest ink; less is a blank picture */

/* Resample n values spaced `stride` apart in src to m values in dst (spacing
 * dstride). Shrinking averages the source area each output covers (box filter);
 * growing interpolates linearly between pixel centres. */
static void resample_1d(const float *src, int n, int stride, float *dst, int m, int dstride)
{
    double s = (double)n / m; /* source pixels per output pixel */
    for (int k = 0; k < m; k++) {
        double v = 0;
        if (s >= 1) {
            double a = k * s, b = (k + 1) * s;
            for (int c = (int)a; c < n && c < b; c++) {
                double lo = a > c ? a : c, hi = b < c + 1 ? b : c + 1;
                if (hi > lo) v += (hi - lo) * src[(size_t)c * stride];
            }
            v /= s;
        } else {
            double pos = (k + 0.5) * s - 0.5;
            if (pos < 0) pos = 0;
            if (pos > n - 1) pos = n - 1;
            int i0 = (int)pos, i1 = i0 + 1 < n ? i0 + 1 : i0;
            double t = pos - i0;
            v = (1 - t) * src[(size_t)i0 * stride] + t * src[(size_t)i1 * stride];
        }
        dst[(size_t)k * dstride] = (float)v;
    }
}

nb_status pre_gray(const uint8_t *gray, int w, int h, const char *name, pre_layout layout, float *out)
{
    if (!name) name = "image";
    if (!gray || !out || w < 1 || h < 1) return nb_fail(NB_ERR_ARG, "%s: empty picture", name);
    /* Polarity from the border: MNIST has light ink on black. */
    double border = 0;
    long nb = 0;
    for (int x = 0; x < w; x++) {
        border += gray[x] + gray[(size_t)(h - 1) * w + x];
        nb += 2;
    }
    for (int y = 1; y < h - 1; y++) {
        border += gray[(size_t)y * w] + gray[(size_t)y * w + w - 1];
        nb += 2;
    }
    border /= (double)nb;
    int invert = border > 127.0;
    float bg = (float)(invert ? 255.0 - border : border), top = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float v = invert ? 255.0f - gray[i] : gray[i];
        if (v > top) top = v;
    }
    if (top - bg < PRE_MIN_CONTRAST)
        return nb_fail(NB_ERR_FORMAT, "%s: no ink found (the picture is nearly uniform)", name);
    /* ink(i) in [0, 1]: how far pixel i stands out from the background */
    float inv_range = 1.0f / (top - bg);
#define INK(i) fminf(1.0f, fmaxf(0.0f, ((invert ? 255.0f - gray[i] : (float)gray[i]) - bg) * inv_range))
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (INK((size_t)y * w + x) > PRE_INK_THRESHOLD) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    if (x1 < 0) return nb_fail(NB_ERR_FORMAT, "%s: no ink found above the background", name);
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1, side = cw > ch ? cw : ch, box_side = layout == PRE_FASHION ? PRE_SIDE : PRE_BOX;
    int ow = (int)lround((double)cw * box_side / side), oh = (int)lround((double)ch * box_side / side);
    if (ow < 1) ow = 1;
    if (oh < 1) oh = 1;
    /* Horizontal pass row by row (ch x ow), then vertical (oh x ow): no full
     * float copy of a large picture is ever made. */
    float *row = malloc(sizeof(float) * (size_t)cw), *tmp = malloc(sizeof(float) * (size_t)ch * ow);
    if (!row || !tmp) {
        free(row);
        free(tmp);
        return nb_fail(NB_ERR_NOMEM, "%s: out of memory", name);
    }
    for (int y = 0; y < ch; y++) {
        for (int x = 0; x < cw; x++) row[x] = INK((size_t)(y0 + y) * w + x0 + x);
        resample_1d(row, cw, 1, tmp + (size_t)y * ow, ow, 1);
    }
#undef INK
    float box[PRE_SIDE * PRE_SIDE];
    for (int x = 0; x < ow; x++) resample_1d(tmp + x, ch, ow, box + x, oh, ow);
    free(row);
    free(tmp);
    /* Stretch to a full-range stroke and find the centre of mass (pixel centres
     * at i + 0.5). */
    float peak = 0;
    for (int i = 0; i < ow * oh; i++) peak = fmaxf(peak, box[i]);
    double mass = 0, mx = 0, my = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            float v = box[y * ow + x] / peak;
            box[y * ow + x] = v;
            mass += v;
            mx += v * (x + 0.5);
            my += v * (y + 0.5);
        }
    /* MNIST: shift so the centre of mass lands at (14, 14), keeping the box
     * inside; Fashion-MNIST: centre the box. */
    int ox = (int)lround(PRE_SIDE / 2.0 - mx / mass), oy = (int)lround(PRE_SIDE / 2.0 - my / mass);
    if (layout == PRE_FASHION) ox = (PRE_SIDE - ow) / 2, oy = (PRE_SIDE - oh) / 2;
    if (ox < 0) ox = 0;
    if (ox > PRE_SIDE - ow) ox = PRE_SIDE - ow;
    if (oy < 0) oy = 0;
    if (oy > PRE_SIDE - oh) oy = PRE_SIDE - oh;
    memset(out, 0, sizeof(float) * PRE_SIDE * PRE_SIDE);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) out[(oy + y) * PRE_SIDE + ox + x] = box[y * ow + x];
    return NB_OK;
}

/* Binary PNM (P5 / P6) needs two guards stb_image 2.27 lacks: it does not
 * notice pixel data cut short (it returns a buffer partly uninitialised), and it
 * converts 16-bit colour to grey as if the samples were 8-bit (reading past its
 * buffer). Parse the header as stb does (whitespace, '#' comments, width,
 * height, maxval, one whitespace byte, then the samples): true for a binary
 * PNM, with the samples' offset and maxval. */
static bool pnm_header(const uint8_t *b, size_t len, size_t *offset, long *maxval)
{
    if (len < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return false;
    size_t at = 2;
    long v[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (at < len && isspace(b[at])) at++;
            if (at >= len || b[at] != '#') break;
            while (at < len && b[at] != '\n' && b[at] != '\r') at++;
        }
        for (; at < len && isdigit(b[at]); at++)
            if (v[k] < 100000000) v[k] = v[k] * 10 + (b[at] - '0');
    }
    *offset = at + 1; /* the whitespace byte after maxval */
    *maxval = v[2];
    return true;
}

nb_status pre_image_memory(const uint8_t *buf, size_t len, const char *name, pre_layout layout, float *out)
{
    if (!name) name = "image";
    if (!buf || !out) return nb_fail(NB_ERR_ARG, "%s: NULL argument", name);
    if (len == 0 || len > (size_t)PRE_MAX_FILE)
        return nb_fail(NB_ERR_FORMAT, "%s: %zu bytes is not a plausible image size", name, len);
    int w, h, comp;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &comp))
        return nb_fail(NB_ERR_FORMAT, "%s: not an image stb_image can read (%s)", name, stbi_failure_reason());
    if (w < 1 || h < 1 || w > PRE_MAX_SIDE || h > PRE_MAX_SIDE || (long)w * h > PRE_MAX_PIXELS)
        return nb_fail(NB_ERR_FORMAT, "%s: image of %dx%d pixels is too large (at most %d per side, %ld pixels)", name,
                       w, h, PRE_MAX_SIDE, PRE_MAX_PIXELS);
    size_t offset;
    long maxval;
    if (pnm_header(buf, len, &offset, &maxval)) {
        if (maxval > 255 && comp != 1)
            return nb_fail(NB_ERR_FORMAT, "%s: 16-bit colour PPM is not supported (save it with 8 bits per sample)", name);
        size_t need = (size_t)w * h * comp * (maxval > 255 ? 2 : 1);
        if (offset > len || len - offset < need)
            return nb_fail(NB_ERR_FORMAT, "%s: truncated: the header promises %dx%d pixels the file does not hold", name,
                           w, h);
    }
    /* Keep alpha when there is one, to composite over white; else let stb_image
     * reduce colour to luminance. */
    int want = comp == 2 || comp == 4 ? 4 : 1, got;
    uint8_t *pix = stbi_load_from_memory(buf, (int)len, &w, &h, &got, want);
    if (!pix) return nb_fail(NB_ERR_FORMAT, "%s: cannot decode the image (%s)", name, stbi_failure_reason());
    nb_status s;
    if (want == 4) {
        size_t n = (size_t)w * h;
        uint8_t *gray = malloc(n);
        if (!gray) {
            stbi_image_free(pix);
            return nb_fail(NB_ERR_NOMEM, "%s: out of memory", name);
        }
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = pix + 4 * i;
            float lum = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2], a = p[3] / 255.0f;
            gray[i] = (uint8_t)lrintf(a * lum + (1 - a) * 255.0f);
        }
        stbi_image_free(pix);
        s = pre_gray(gray, w, h, name, layout, out);
        free(gray);
    } else {
        s = pre_gray(pix, w, h, name, layout, out);
        stbi_image_free(pix);
    }
    return s;
}

nb_status pre_image_file(const char *path, pre_layout layout, float *out)
{
    if (!path || !out) return nb_fail(NB_ERR_ARG, "pre_image_file: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return nb_fail(NB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return nb_fail(NB_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size <= 0 || st.st_size > PRE_MAX_FILE) {
        fclose(f);
        return nb_fail(NB_ERR_FORMAT, "%s: %lld bytes is not a plausible image size", path, (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len);
    if (!buf) {
        fclose(f);
        return nb_fail(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int err = ferror(f);
    fclose(f);
    nb_status s = got == len && !err ? pre_image_memory(buf, len, path, layout, out)
                                     : nb_fail(NB_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, len);
    free(buf);
    return s;
}
