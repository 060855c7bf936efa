/* main.c — the mnist example's entry point; the program lives in app.c. */
#include "app.h"

int main(int argc, char **argv)
{
    return mnist_main(argc, argv);
}
