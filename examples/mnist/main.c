/* main.c — the mnist example's entry point; the program lives in app.c.
 *
 * Started by mpirun with several processes, training is data-parallel (see
 * docs/DISTRIBUTED.md): every rank runs the same program on the same data, nb_fit
 * splits each batch over the ranks, and only rank 0 prints (the others' standard
 * output is discarded; errors still reach standard error) and saves. */
#include <stdio.h>

#include <nabla/nabla.h>
#include <nabla/nb_dist.h>

#include "app.h"

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "mnist: %s\n", nb_last_error());
        return 1;
    }
    if (nb_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    int status = mnist_main(argc, argv);
    nb_dist_finalize();
    return status;
}
