/* stb_image_impl.c — stb_image's decoders (the system header, the same source
 * Debian's libstb is built from) compiled into the image fuzz target, so they
 * are instrumented too. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
