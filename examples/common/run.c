/* run.c — the examples' shared entry point (see run.h). */
#include "run.h"

#include <stdio.h>

#include <nabla/nabla.h>

int example_run(const char *prog, int (*program)(int argc, char **argv), int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "%s: %s\n", prog, nb_last_error());
        return 1;
    }
    if (nb_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    int status = program(argc, argv);
    nb_dist_finalize();
    return status;
}
