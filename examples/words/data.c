/* data.c — reading, checking, shuffling and cutting the word list (data.h). */
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int words_symbol(int c)
{
    if (c == '.') return 0;
    if (c >= 'a' && c <= 'z') return c - 'a' + 1;
    return -1;
}

char words_char(int symbol) { return symbol <= 0 ? '.' : (char)('a' + symbol - 1); }

const char *words_at(const words_list *w, int i) { return w->text + w->start[i]; }

void words_free(words_list *w)
{
    if (!w) return;
    free(w->text);
    free(w->start);
    memset(w, 0, sizeof *w);
}

/* The whole file into a malloc'ed buffer (*len bytes, plus a NUL). */
static nb_status slurp(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return nb_fail(NB_ERR_IO, "%s: cannot open the word list: %s", path, strerror(errno));
    char *b = NULL;
    size_t n = 0, cap = 0;
    nb_status s = NB_OK;
    for (;;) {
        if (n == cap) {
            size_t want = cap ? cap * 2 : 1 << 16;
            char *nb = cap >= (size_t)WORDS_MAX_FILE ? NULL : realloc(b, want + 1);
            if (!nb) {
                s = cap >= (size_t)WORDS_MAX_FILE ? nb_fail(NB_ERR_FORMAT, "%s: larger than %d MiB; not a word list", path,
                                                            WORDS_MAX_FILE >> 20)
                                                  : nb_fail(NB_ERR_NOMEM, "%s: out of memory reading it", path);
                break;
            }
            b = nb, cap = want;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) s = nb_fail(NB_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (s != NB_OK) {
        free(b);
        return s;
    }
    if (!b && !(b = malloc(1))) return nb_fail(NB_ERR_NOMEM, "%s: out of memory", path);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return NB_OK;
}

/* Classify line [p, p + n) (newline removed): 0 keep, else which counter. */
enum { KEEP, NON_ASCII, TOO_LONG, OTHER };
static int classify(const char *p, size_t n)
{
    int kind = n ? KEEP : OTHER;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80) return NON_ASCII;
        if (c < 'a' || c > 'z') kind = OTHER;
    }
    return n > WORDS_MAX_LINE ? TOO_LONG : kind;
}

nb_status words_read(const char *path, words_list *w)
{
    memset(w, 0, sizeof *w);
    if (!path) return nb_fail(NB_ERR_ARG, "words_read: path is NULL");
    char *buf = NULL;
    size_t len = 0;
    nb_status s = slurp(path, &buf, &len);
    if (s != NB_OK) return s;
    size_t max_words = len / 2 + 1; /* a word and its newline are >= 2 bytes */
    w->start = malloc(max_words * sizeof *w->start);
    if (!w->start) {
        free(buf);
        return nb_fail(NB_ERR_NOMEM, "%s: out of memory for the word index", path);
    }
    size_t out = 0; /* words are compacted to the front of buf, NUL-terminated */
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - at;
        if (n && buf[at + n - 1] == '\r') n--;
        w->lines++;
        int kind = classify(buf + at, n);
        if (kind == KEEP) {
            memmove(buf + out, buf + at, n);
            w->start[w->n++] = (int32_t)out;
            out += n;
            buf[out++] = '\0';
        }
        w->non_ascii += kind == NON_ASCII;
        w->too_long += kind == TOO_LONG;
        w->other += kind == OTHER;
        at = end + 1;
    }
    w->text = buf;
    if (w->n == 0) {
        s = nb_fail(NB_ERR_FORMAT, "%s: no words of lowercase a-z in it (%d lines read); is it a word list?", path, w->lines);
        words_free(w);
    }
    return s;
}

void words_shuffle(words_list *w, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_rng_shuffle(&r, w->start, w->n);
}

int words_train_count(int n) { return (int)((long long)n * 9 / 10); }

long words_examples(const words_list *w, int first, int count, int context, int32_t *x, int32_t *y)
{
    long k = 0;
    for (int i = first; i < first + count; i++) {
        const char *s = words_at(w, i);
        int len = (int)strlen(s);
        for (int at = 0; at <= len; at++, k++) {
            if (!x || !y) continue;
            int32_t *row = x + (size_t)k * (size_t)context;
            for (int j = 0; j < context; j++) {
                int src = at - context + j; /* position in the word; < 0 is the '.' padding */
                row[j] = src < 0 ? 0 : words_symbol(s[src]);
            }
            y[k] = at < len ? words_symbol(s[at]) : 0;
        }
    }
    return k;
}
