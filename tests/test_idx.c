/* test_idx.c — the MNIST example's IDX reader (examples/mnist/idx.c) on files
 * the test writes: good sets, plain and gzip, under both spellings of the
 * names, and corrupted ones (bad magic, bad sizes, truncated, trailing bytes,
 * counts that differ, labels out of range, missing files). Each failure must be
 * an nb_status with a message naming the file and the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "../examples/mnist/idx.h"
#include "tmpdir.h"

/* n images of rows x cols whose pixel j of image i is (i * 7 + j) & 255, and
 * labels i % 10. */
static uint8_t *make_pixels(int n, int rows, int cols)
{
    uint8_t *p = malloc((size_t)n * rows * cols);
    assert_non_null(p);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < rows * cols; j++) p[(size_t)i * rows * cols + j] = (uint8_t)((i * 7 + j) & 255);
    return p;
}

static void write_set(const char *prefix, int n, int rows, int cols, bool gz, int n_labels)
{
    char name[128];
    uint8_t *pix = make_pixels(n, rows, cols), *lab = malloc((size_t)n_labels);
    assert_non_null(lab);
    for (int i = 0; i < n_labels; i++) lab[i] = (uint8_t)(i % 10);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    assert_int_equal(idx_write(at(name), gz, 3, (int[]){n, rows, cols}, pix), NB_OK);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    assert_int_equal(idx_write(at(name), gz, 1, (int[]){n_labels}, lab), NB_OK);
    free(pix);
    free(lab);
}

/* Write raw bytes to dir/name. */
static void write_raw(const char *name, const uint8_t *bytes, size_t len)
{
    FILE *f = fopen(at(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void assert_error_has(const char *fragment, const char *file)
{
    const char *msg = nb_last_error();
    if (!strstr(msg, fragment) || (file && !strstr(msg, file)))
        fail_msg("error message \"%s\" lacks \"%s\" or the file \"%s\"", msg, fragment, file ? file : "");
    assert_null(strchr(msg, '\n')); /* one line */
}

static void check_set(const mnist_set *s, int n, int rows, int cols)
{
    assert_int_equal(s->n, n);
    assert_int_equal(s->rows, rows);
    assert_int_equal(s->cols, cols);
    uint8_t *want = make_pixels(n, rows, cols);
    assert_memory_equal(s->images, want, (size_t)n * rows * cols);
    free(want);
    for (int i = 0; i < n; i++) assert_int_equal(s->labels[i], i % 10);
}

static void test_plain_and_gz(void **state)
{
    (void)state;
    write_set("train", 50, 28, 28, true, 50);
    write_set("t10k", 20, 28, 28, false, 20);
    mnist_set s;
    assert_int_equal(mnist_load(dir, "train", &s), NB_OK);
    check_set(&s, 50, 28, 28);
    mnist_set_free(&s);
    assert_null(s.images);
    assert_int_equal(mnist_load(dir, "t10k", &s), NB_OK);
    check_set(&s, 20, 28, 28);
    mnist_set_free(&s);
    mnist_set_free(NULL);
}

static void test_other_sizes_and_names(void **state)
{
    (void)state;
    /* the "train-images.idx3-ubyte" spelling, non-square images */
    uint8_t *pix = make_pixels(3, 5, 9), lab[3] = {0, 1, 2};
    assert_int_equal(idx_write(at("x-images.idx3-ubyte"), false, 3, (int[]){3, 5, 9}, pix), NB_OK);
    assert_int_equal(idx_write(at("x-labels.idx1-ubyte.gz"), true, 1, (int[]){3}, lab), NB_OK);
    char path[256];
    assert_int_equal(idx_find(dir, "x-images-idx3-ubyte", path, sizeof path), NB_OK);
    assert_string_equal(path, at("x-images.idx3-ubyte"));
    mnist_set s;
    assert_int_equal(mnist_load(dir, "x", &s), NB_OK);
    check_set(&s, 3, 5, 9);
    mnist_set_free(&s);
    free(pix);
}

static void test_bad_magic(void **state)
{
    (void)state;
    uint8_t lab[4] = {1, 2, 3, 4};
    assert_int_equal(idx_write(at("labels-as-images"), false, 1, (int[]){4}, lab), NB_OK);
    uint8_t *pix;
    int n, r, c;
    assert_int_equal(idx_read_images(at("labels-as-images"), &pix, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("bad magic 0x00000801", at("labels-as-images"));
    assert_error_has("this is a label file", NULL);
    const uint8_t junk[16] = {'G', 'I', 'F', '8', '9', 'a'};
    write_raw("junk", junk, sizeof junk);
    assert_int_equal(idx_read_labels(at("junk"), &pix, &n), NB_ERR_FORMAT);
    assert_error_has("bad magic 0x47494638", at("junk"));
}

static void test_bad_dimensions(void **state)
{
    (void)state;
    /* rows 0, then cols 5000, then count 0 */
    const uint8_t zero_rows[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 28};
    const uint8_t huge_cols[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0x13, 0x88};
    const uint8_t no_images[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    uint8_t *pix;
    int n, r, c;
    write_raw("zero_rows", zero_rows, 16);
    assert_int_equal(idx_read_images(at("zero_rows"), &pix, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("image size 0x28 is outside", at("zero_rows"));
    write_raw("huge_cols", huge_cols, 16);
    assert_int_equal(idx_read_images(at("huge_cols"), &pix, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("image size 28x5000 is outside", at("huge_cols"));
    write_raw("no_images", no_images, 16);
    assert_int_equal(idx_read_images(at("no_images"), &pix, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("image count 0 is outside", at("no_images"));
    /* a header cut short */
    write_raw("short", zero_rows, 10);
    assert_int_equal(idx_read_images(at("short"), &pix, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("too short for an IDX header (10 bytes, need 16)", at("short"));
}

/* A header promising a billion images of 28x28 in a tiny file: fails as
 * truncated without reserving 784 GB. */
static void test_truncated(void **state)
{
    (void)state;
    uint8_t *pix = make_pixels(10, 28, 28);
    uint8_t buf[16 + 784 * 10];
    memcpy(buf, (uint8_t[]){0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28}, 16);
    memcpy(buf + 16, pix, 784 * 10);
    write_raw("cut", buf, sizeof buf - 100);
    int n, r, c;
    uint8_t *out;
    assert_int_equal(idx_read_images(at("cut"), &out, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("truncated: 10 images of 28x28 need 7840 bytes after the header, the file holds 7740", at("cut"));

    buf[4] = 0x3b, buf[5] = 0x9a, buf[6] = 0xca, buf[7] = 0x00; /* 1e9 images */
    write_raw("claims_a_billion", buf, sizeof buf);
    assert_int_equal(idx_read_images(at("claims_a_billion"), &out, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("image count 1000000000 is outside", NULL);
    buf[4] = 0x05, buf[5] = 0xf5, buf[6] = 0xe1, buf[7] = 0x00; /* 1e8 images: 78 GB promised */
    write_raw("claims_1e8", buf, sizeof buf);
    assert_int_equal(idx_read_images(at("claims_1e8"), &out, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("truncated: 100000000 images of 28x28", at("claims_1e8"));

    /* a gzip file cut in the middle */
    assert_int_equal(idx_write(at("whole.gz"), true, 3, (int[]){10, 28, 28}, pix), NB_OK);
    FILE *f = fopen(at("whole.gz"), "rb");
    assert_non_null(f);
    uint8_t gz[16384];
    size_t len = fread(gz, 1, sizeof gz, f);
    fclose(f);
    assert_true(len > 200 && len < sizeof gz);
    write_raw("cut.gz", gz, len / 2);
    assert_int_equal(idx_read_images(at("cut.gz"), &out, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has("truncated", at("cut.gz"));
    /* and one with a damaged body */
    for (size_t i = 20; i < len - 20; i += 7) gz[i] ^= 0x5a;
    write_raw("bad.gz", gz, len);
    assert_int_equal(idx_read_images(at("bad.gz"), &out, &n, &r, &c), NB_ERR_FORMAT);
    assert_error_has(at("bad.gz"), NULL);
    free(pix);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    uint8_t lab[7] = {1, 2, 3, 4, 5, 6, 7};
    uint8_t buf[8 + 7 + 3] = {0, 0, 8, 1, 0, 0, 0, 7};
    memcpy(buf + 8, lab, 7);
    write_raw("long-labels", buf, sizeof buf);
    uint8_t *out;
    int n;
    assert_int_equal(idx_read_labels(at("long-labels"), &out, &n), NB_ERR_FORMAT);
    assert_error_has("3 bytes of trailing data after 7 labels", at("long-labels"));
    /* the same inside gzip */
    gzFile f = gzopen(at("long-labels.gz"), "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, buf, sizeof buf), (int)sizeof buf);
    assert_int_equal(gzclose(f), Z_OK);
    assert_int_equal(idx_read_labels(at("long-labels.gz"), &out, &n), NB_ERR_FORMAT);
    assert_error_has("3 bytes of trailing data", at("long-labels.gz"));
}

static void test_count_mismatch(void **state)
{
    (void)state;
    write_set("mismatch", 30, 28, 28, true, 29);
    mnist_set s;
    assert_int_equal(mnist_load(dir, "mismatch", &s), NB_ERR_FORMAT);
    assert_error_has("counts differ", at("mismatch-images-idx3-ubyte.gz"));
    assert_error_has("holds 30 images", at("mismatch-labels-idx1-ubyte.gz"));
    assert_error_has("holds 29 labels", NULL);
    assert_null(s.images);
    assert_null(s.labels);
}

static void test_label_out_of_range(void **state)
{
    (void)state;
    uint8_t lab[5] = {0, 9, 3, 10, 2};
    assert_int_equal(idx_write(at("bad-labels"), false, 1, (int[]){5}, lab), NB_OK);
    uint8_t *out;
    int n;
    assert_int_equal(idx_read_labels(at("bad-labels"), &out, &n), NB_ERR_LABEL);
    assert_error_has("label 10 at index 3 is outside [0, 9]", at("bad-labels"));
}

static void test_missing(void **state)
{
    (void)state;
    uint8_t *out;
    int n, r, c;
    assert_int_equal(idx_read_images(at("nothing-here"), &out, &n, &r, &c), NB_ERR_IO);
    assert_error_has("cannot open: No such file or directory", at("nothing-here"));
    assert_int_equal(idx_read_labels(dir, &out, &n), NB_ERR_IO);
    assert_error_has("not a regular file", dir);
    mnist_set s;
    assert_int_equal(mnist_load(dir, "absent", &s), NB_ERR_IO);
    assert_error_has("no absent-images-idx3-ubyte or absent-images-idx3-ubyte.gz in this folder", dir);
    /* images present, labels missing */
    uint8_t *pix = make_pixels(2, 28, 28);
    assert_int_equal(idx_write(at("half-images-idx3-ubyte"), false, 3, (int[]){2, 28, 28}, pix), NB_OK);
    free(pix);
    assert_int_equal(mnist_load(dir, "half", &s), NB_ERR_IO);
    assert_error_has("no half-labels-idx1-ubyte", dir);
    assert_int_equal(mnist_load(NULL, "half", &s), NB_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_gz),      cmocka_unit_test(test_other_sizes_and_names),
        cmocka_unit_test(test_bad_magic),         cmocka_unit_test(test_bad_dimensions),
        cmocka_unit_test(test_truncated),         cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_count_mismatch),    cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
