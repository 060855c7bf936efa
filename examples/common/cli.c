/* cli.c — getopt_long with the examples' shared conventions (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_begin(cli *c, const char *prog, const char *cmd, const char *synopsis, int argc, char **argv,
               const struct option *opts)
{
    *c = (cli){.prog = prog, .cmd = cmd, .synopsis = synopsis, .argc = argc, .argv = argv, .opts = opts};
    optind = 0; /* glibc: 0 restarts the scan from scratch, forgetting any earlier parse */
    opterr = 0; /* the messages are ours */
}

static void vreport(const cli *c, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (c->synopsis) fputs(c->synopsis, stderr);
    fprintf(stderr, "(%s --help shows every option)\n", c->prog);
}

int cli_usage_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, fmt, ap);
    va_end(ap);
    return 2;
}

bool cli_command(const char *prog, const char *synopsis, const char *usage, int argc, char **argv,
                 const char *const *cmds, int *status)
{
    if (argc < 2) {
        fprintf(stderr, "%s(%s --help shows every option)\n", synopsis, prog);
        *status = 2;
        return false;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        *status = 0;
        return false;
    }
    int n = 0;
    while (cmds[n] && strcmp(cmds[n], cmd)) n++;
    if (cmds[n]) return true;
    char list[256] = "";
    for (int i = 0; cmds[i]; i++) { /* "train, eval or predict" */
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i == 0 ? "" : cmds[i + 1] ? ", " : " or ", cmds[i]);
    }
    cli c;
    cli_begin(&c, prog, NULL, synopsis, argc - 1, argv + 1, NULL);
    *status = cli_usage_error(&c, "unknown command '%s'; use %s", cmd, list);
    return false;
}

static const struct option *by_val(const cli *c, int val)
{
    for (const struct option *o = c->opts; o->name; o++)
        if (o->val == val) return o;
    return NULL;
}

/* The option getopt_long rejected, as written: the argument it stopped at
 * without any "=value", or the short option. */
static void rejected_name(const cli *c, char *name, size_t size)
{
    const char *arg = optind > 0 && optind <= c->argc ? c->argv[optind - 1] : "";
    if (!strncmp(arg, "--", 2)) snprintf(name, size, "%.*s", (int)strcspn(arg, "="), arg);
    else snprintf(name, size, "-%c", optopt > 0 && optopt < 128 ? optopt : '?');
}

/* How many long options start with `prefix`. */
static int count_prefixed(const cli *c, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const struct option *p = c->opts; len && p->name; p++) n += !strncmp(p->name, prefix, len);
    return n;
}

/* Report why getopt_long returned `code` (':' a missing value, '?' the rest). */
static void reject(const cli *c, int code)
{
    char name[64], where[80];
    rejected_name(c, name, sizeof name);
    if (c->cmd) snprintf(where, sizeof where, " for '%s'", c->cmd);
    else where[0] = '\0';
    const struct option *o = optopt ? by_val(c, optopt) : NULL;
    if (code == ':' && o) cli_usage_error(c, "--%s needs a value", o->name);
    else if (code == ':') cli_usage_error(c, "%s needs a value", name);
    else if (o && o->has_arg == no_argument) cli_usage_error(c, "--%s takes no value", o->name);
    else if (!strncmp(name, "--", 2) && count_prefixed(c, name + 2) > 1)
        cli_usage_error(c, "option '%s' is ambiguous%s", name, where);
    else cli_usage_error(c, "unknown option '%s'%s", name, where);
}

int cli_next(cli *c)
{
    int index = -1;
    int opt = getopt_long(c->argc, c->argv, ":h", c->opts, &index);
    if (opt == -1) {
        c->next_operand = optind;
        return -1;
    }
    if (opt == '?' || opt == ':') {
        reject(c, opt);
        return '?';
    }
    const struct option *o = index >= 0 ? &c->opts[index] : by_val(c, opt);
    if (o) snprintf(c->flag, sizeof c->flag, "--%s", o->name);
    else snprintf(c->flag, sizeof c->flag, "-%c", opt);
    c->value = optarg;
    return opt;
}

/* ---- values ---- */

int cli_int(const cli *c, long lo, long hi, int *out)
{
    const char *v = c->value ? c->value : "";
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return cli_usage_error(c, "%s needs a whole number in [%ld, %ld], got '%s'", c->flag, lo, hi, v);
    *out = (int)x;
    return 0;
}

int cli_u64(const cli *c, unsigned long long *out)
{
    const char *v = c->value ? c->value : "";
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    char first = v[strspn(v, " \t\n\v\f\r")]; /* strtoull accepts a sign (and negates) */
    if (errno || end == v || *end || first == '-' || first == '+')
        return cli_usage_error(c, "%s needs a whole number >= 0, got '%s'", c->flag, v);
    *out = x;
    return 0;
}

int cli_float(const cli *c, double lo, double hi, int open_lo, float *out)
{
    const char *v = c->value ? c->value : "";
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || (open_lo && x == lo) || x >= hi)
        return cli_usage_error(c, "%s needs a number in %c%g, %g), got '%s'", c->flag, open_lo ? '(' : '[', lo, hi, v);
    *out = (float)x;
    return 0;
}
