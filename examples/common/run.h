/* run.h — the entry point the example programs share.
 *
 * Started by mpirun with several processes, an example trains data-parallel
 * (docs/DISTRIBUTED.md): every rank runs the same program on the same data,
 * nb_fit splits each batch over the ranks, and only rank 0 prints (the other
 * ranks' standard output is discarded; errors still reach standard error). */
#ifndef EXAMPLES_RUN_H
#define EXAMPLES_RUN_H

/* Set up MPI (a no-op without it), run `program` (the example's main, which
 * saves only on rank 0), shut MPI down, and return program's exit status; 1
 * with "PROG: ..." on stderr when MPI cannot start. */
int example_run(const char *prog, int (*program)(int argc, char **argv), int argc, char **argv);

#endif
