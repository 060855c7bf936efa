/* data.h — the words example's data: a word list read and checked, shuffled,
 * split, and cut into (context -> next character) examples.
 *
 * Symbols: '.' is 0 (the frame around every word), 'a'..'z' are 1..26. A word
 * w of length L gives L + 1 examples: for each position i in 0..L, the `context`
 * symbols before it (left-padded with '.') -> the symbol at i (the final '.'
 * included). With context 3, "cat" gives
 *     ...->c  ..c->a  .ca->t  cat->.
 *
 * Errors: functions return an nb_status and leave a one-line message in
 * nb_last_error() naming the file and what was wrong. */
#ifndef WORDS_DATA_H
#define WORDS_DATA_H

#include <stdint.h>

#include <nabla/nabla.h>

#define WORDS_SYMBOLS 27            /* '.' and a-z */
#define WORDS_MAX_LINE 64           /* longer lines (bytes, newline excluded) are skipped */
#define WORDS_MAX_FILE (256 << 20)  /* largest list read (bytes) */
#define WORDS_SPLIT_SEED 2003u      /* the fixed seed of the shuffle before the split */

/* A list of words of lowercase a-z, each NUL-terminated inside one buffer. */
typedef struct words_list {
    char *text;       /* all words, each followed by a NUL (owned) */
    int32_t *start;   /* (n) offset of word i in text (owned) */
    int n;            /* words kept */
    int lines;        /* lines read */
    int non_ascii;    /* lines skipped: a byte >= 0x80 */
    int too_long;     /* lines skipped: more than WORDS_MAX_LINE bytes */
    int other;        /* lines left out: ASCII, but not only a-z (capitals, apostrophes, empty) */
} words_list;

/* Symbol of a character: '.' -> 0, 'a'..'z' -> 1..26, anything else -1. */
int words_symbol(int c);

/* The character of a symbol in [0, WORDS_SYMBOLS): '.' or 'a'..'z'. */
char words_char(int symbol);

/* Word i of the list (borrowed from it). */
const char *words_at(const words_list *w, int i);

/* Read a word list (one word per line, '\n' or "\r\n"): keep the lines made only
 * of a-z, skip and count the others. On success *w is filled (free with
 * words_free); NB_ERR_IO for a missing or unreadable file, NB_ERR_FORMAT when no
 * word is left (an empty list), NB_ERR_NOMEM. On failure *w is left empty. */
nb_status words_read(const char *path, words_list *w);

/* Shuffle the words in place (Fisher-Yates with nb_rng seeded with `seed`). */
void words_shuffle(words_list *w, uint64_t seed);

/* The number of training words of a split: the first 90 % (floor), the rest
 * validation. */
int words_train_count(int n);

/* Examples of words [first, first + count): returns how many there are (the sum
 * of lengths + 1). When x and y are non-NULL, fills x (examples, context) with
 * the context symbols and y (examples) with the next symbol. */
long words_examples(const words_list *w, int first, int count, int context, int32_t *x, int32_t *y);

/* Free the list's buffers and zero it. NULL is a no-op. */
void words_free(words_list *w);

#endif
