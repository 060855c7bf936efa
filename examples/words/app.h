/* app.h — the words program (train / sample) as a callable function, so tests
 * can run it in-process; main.c only forwards to it. */
#ifndef WORDS_APP_H
#define WORDS_APP_H

/* Run the program with the usual argc/argv (argv[1] is the subcommand).
 * Returns the process exit status: 0 success, 1 failure, 2 bad usage. Every
 * failure prints one line "words: ..." to stderr. */
int words_main(int argc, char **argv);

#endif
