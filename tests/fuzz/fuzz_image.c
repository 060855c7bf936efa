/* fuzz_image.c — the picture path of `mnist predict` on any bytes:
 * pre_image_memory (examples/mnist/preprocess.c) checks the size, asks
 * stb_image for the dimensions (stbi_info) and refuses absurd ones, decodes,
 * reduces to grey and preprocesses to 28x28. The input's length picks the
 * layout (MNIST or Fashion-MNIST). A success must give 784 values in [0, 1]; a
 * failure must leave a message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../examples/mnist/preprocess.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float out[PRE_SIDE * PRE_SIDE];
    nb_clear_error();
    nb_status s = pre_image_memory(data, size, "fuzz", (size & 1) ? PRE_FASHION : PRE_MNIST, out);
    if (s != NB_OK) {
        fuzz_require(nb_last_error()[0] != '\0', "failure without a message");
        return 0;
    }
    for (int i = 0; i < PRE_SIDE * PRE_SIDE; i++)
        fuzz_require(isfinite(out[i]) && out[i] >= 0.0f && out[i] <= 1.0f, "output value outside [0, 1]");
    return 0;
}
