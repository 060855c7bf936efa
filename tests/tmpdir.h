/* tmpdir.h — a scratch folder for test suites that write files. */
#ifndef NB_TEST_TMPDIR_H
#define NB_TEST_TMPDIR_H

/* The folder's path ("" before tmpdir_setup). */
extern char dir[64];

/* cmocka group setup: make a fresh folder /tmp/nabla_test_XXXXXX. */
int tmpdir_setup(void **state);

/* cmocka group teardown: remove the folder and everything in it. */
int tmpdir_teardown(void **state);

/* "dir/name", in one of four rotating static buffers (so up to four paths can
 * be used at once). */
const char *at(const char *name);

#endif
