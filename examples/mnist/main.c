/* main.c — the mnist example's entry point; the program lives in app.c. Under
 * mpirun it trains data-parallel and only rank 0 prints, reports and saves
 * (examples/common/run.h). */
#include "../common/run.h"
#include "app.h"

int main(int argc, char **argv) { return example_run("mnist", mnist_main, argc, argv); }
