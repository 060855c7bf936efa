/* main.c — the words example's entry point; the program lives in app.c.
 *
 * Under mpirun training is data-parallel (docs/DISTRIBUTED.md): each global batch
 * is split over the ranks; only rank 0 prints (the others' standard output is
 * discarded) and saves. */
#include <stdio.h>

#include <nabla/nabla.h>

#include "app.h"

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "words: %s\n", nb_last_error());
        return 1;
    }
    if (nb_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    int status = words_main(argc, argv);
    nb_dist_finalize();
    return status;
}
