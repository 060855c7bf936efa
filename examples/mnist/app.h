/* app.h — the mnist program (train / eval / predict) as a callable function,
 * so tests can run it in-process; main.c only forwards to it. */
#ifndef MNIST_APP_H
#define MNIST_APP_H

/* Run the program with the usual argc/argv (argv[1] is the subcommand).
 * Returns the process exit status: 0 success, 1 failure, 2 bad usage. Every
 * failure prints one line "mnist: ..." to stderr. */
int mnist_main(int argc, char **argv);

#endif
