/* main.c — backprop_explained: every node's value and gradient of a
 * cross-entropy and of a two-layer network, checked by finite differences. */
#include "lesson.h"

int main(int argc, char **argv)
{
    return backprop_main(argc, argv, stdout);
}
