/* cli.h — command-line parsing shared by the example programs.
 *
 * A thin layer over libc's getopt_long that gives every example the same
 * conventions:
 *   - long options, as "--flag VALUE" or "--flag=VALUE" (a unique prefix of a
 *     flag's name is accepted, as getopt_long does); operands may come before,
 *     between or after the options;
 *   - every message is one line "PROG: ..." on stderr; a usage error is followed
 *     by the program's synopsis on stderr and gives exit status 2;
 *   - numbers are checked whole (no trailing text), for range, and for overflow;
 *     the message names the flag, the accepted range and the text given.
 *
 * Typical use:
 *
 *   static const struct option opts[] = {{"epochs", required_argument, NULL, 'e'}, ..., {0}};
 *   cli c;
 *   cli_begin(&c, "mnist", "train", SYNOPSIS, argc - 1, argv + 1, opts);
 *   for (int opt; (opt = cli_next(&c)) != -1;) {
 *       int rc = 0;
 *       switch (opt) {
 *       case 'e': rc = cli_int(&c, 1, 100000, &epochs); break;
 *       case '?': return 2;            (cli_next has printed why)
 *       }
 *       if (rc) return rc;
 *   }
 *   operands: c.argv[c.next_operand .. c.argc)
 *
 * Not thread-safe (getopt_long keeps global state); each cli_begin restarts it,
 * so a program may be run several times in one process (as the tests do). */
#ifndef EXAMPLES_CLI_H
#define EXAMPLES_CLI_H

#include <getopt.h>
#include <stdbool.h>

typedef struct cli {
    const char *prog;            /* message prefix ("mnist") */
    const char *cmd;             /* subcommand named in messages, or NULL */
    const char *synopsis;        /* printed to stderr after a usage error (may be NULL) */
    int argc;                    /* argv[0] is the program or subcommand name; getopt_long */
    char **argv;                 /*   may reorder argv[1..] to put the operands last */
    const struct option *opts;   /* the accepted long options, ended by {0} */
    char flag[64];               /* the option cli_next last returned, as "--name" */
    const char *value;           /* its value (NULL for a flag without one) */
    int next_operand;            /* after cli_next returned -1: the first operand's index */
} cli;

/* Start parsing argv[1..argc) against `opts` (borrowed for the parse; every
 * entry's `flag` must be NULL and its `val` a distinct positive code, 'h' for
 * {"help", no_argument, NULL, 'h'}). The only short option is -h, returned as
 * 'h' like --help. */
void cli_begin(cli *c, const char *prog, const char *cmd, const char *synopsis, int argc, char **argv,
               const struct option *opts);

/* The next option's `val`, with c->flag and c->value set; -1 when the options
 * are done (c->next_operand then indexes the first operand); '?' after printing
 * a usage error for an unknown or ambiguous option, a missing value or a value
 * given to a flag that takes none. */
int cli_next(cli *c);

/* Print "PROG: <message>" (printf-style) and the synopsis to stderr; returns 2,
 * the exit status of a usage error. */
int cli_usage_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For programs run as "PROG COMMAND [options]": true when argv[1] is one of the
 * commands in `cmds` (NULL-terminated). Otherwise false with *status the exit
 * status to return: 0 after printing `usage` to stdout for --help, -h or help;
 * 2 after printing the synopsis (no command) or "PROG: unknown command 'x'; use
 * a, b or c" and the synopsis to stderr. */
bool cli_command(const char *prog, const char *synopsis, const char *usage, int argc, char **argv,
                 const char *const *cmds, int *status);

/* Parse the current option's value as a whole number in [lo, hi] into *out.
 * Returns 0, or 2 after printing "PROG: --flag needs a whole number in
 * [lo, hi], got 'text'" and the synopsis. */
int cli_int(const cli *c, long lo, long hi, int *out);

/* Parse the current value as a whole number >= 0 (up to 2^64 - 1). Returns 0,
 * or 2 after printing why. */
int cli_u64(const cli *c, unsigned long long *out);

/* Parse the current value as a finite number in [lo, hi) — (lo, hi) when
 * `open_lo` — into *out. Returns 0, or 2 after printing why. */
int cli_float(const cli *c, double lo, double hi, int open_lo, float *out);

#endif
