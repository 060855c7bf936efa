/* failalloc.h — an allocator for failure injection: once armed with k, the k-th
 * allocation from then on (0: the next) fails, and so does every one after it;
 * it counts the blocks that are live so a test can prove nothing leaked. */
#ifndef NB_TEST_FAILALLOC_H
#define NB_TEST_FAILALLOC_H

#include <nabla/nabla.h>

/* Install with nb_set_allocator(&failalloc); restore with nb_set_allocator(NULL). */
extern const nb_allocator failalloc;

/* Fail from the k-th allocation on (k < 0: never); resets the live count and
 * the failed flag. */
void failalloc_arm(long k);

/* Blocks allocated since the last arm and not freed yet. */
long failalloc_live(void);

/* Whether an allocation has been refused since the last arm. */
int failalloc_failed(void);

#endif
