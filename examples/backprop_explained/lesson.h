/* lesson.h — the backprop_explained example as a callable function, so tests
 * can run it in-process; main.c only forwards to it. */
#ifndef BACKPROP_LESSON_H
#define BACKPROP_LESSON_H

#include <stdio.h>

/* Run the lesson with argc/argv ("--dot FILE", "--dot-net FILE"), writing the
 * explanation to `out`. Returns the exit status (0 success, 1 failure, 2 bad
 * usage); failures print one line to stderr. */
int backprop_main(int argc, char **argv, FILE *out);

#endif
