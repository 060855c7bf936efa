/* fuzz_model.c — the model loader nb_load on any bytes.
 *
 * The first input byte picks the mode, the rest is the file. With bit 0 set the
 * file_size field (bytes 12..19) and the trailing CRC-32 are rewritten to match
 * the bytes, so the fuzzer gets past those checks and into the field parser;
 * otherwise the bytes are loaded as they are. A loaded model must predict one
 * zero row, and a compiled one must take one training step, without a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <nabla/nabla.h>
#include "fuzz_util.h"

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, len);
    if ((mode & 1) && len >= 24) {
        put_le(buf + 12, len, 8);
        put_le(buf + len - 4, crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4)), 4);
    }
    const char *path = fuzz_path("model", ".nb");
    int w = fuzz_write(path, buf, len);
    free(buf);
    if (w != 0) return 0;
    nb_clear_error();
    nb_model *m = nb_load(path);
    unlink(path);
    if (!m) {
        fuzz_require(nb_last_error()[0] != '\0', "nb_load failed without a message");
        return 0;
    }
    int in = nb_model_input_width(m), out = nb_model_output_width(m);
    fuzz_require(in >= 1 && out >= 1, "loaded model has a bad width");
    float *x = calloc((size_t)in, sizeof *x), *y = calloc((size_t)out, sizeof *y);
    if (x && y) {
        nb_status s = nb_predict(m, x, 1, y);
        fuzz_require(s == NB_OK || nb_last_error()[0], "nb_predict failed without a message");
        if (nb_model_loss(m) != NB_LOSS_NONE) {
            int32_t label = 0;
            const void *target = nb_model_loss(m) == NB_SPARSE_CATEGORICAL_CROSSENTROPY ? (const void *)&label
                                                                                         : (const void *)y;
            memset(y, 0, sizeof *y * (size_t)out);
            s = nb_fit(m, x, target, 1, &(nb_fit_opts){.verbose = NB_VERBOSE_SILENT}, NULL);
            fuzz_require(s == NB_OK || nb_last_error()[0], "nb_fit failed without a message");
        }
    }
    free(x);
    free(y);
    nb_model_free(m);
    return 0;
}
