/* fuzz_util.h — shared by the fuzz targets: hand bytes to a loader that wants a
 * path, through a file in memory-backed storage. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A private temporary path ("<dir>/nabla_fuzz_<pid>_<tag><suffix>"), on /dev/shm
 * when it exists so the fuzzer does not wear a disk. */
static inline const char *fuzz_path(const char *tag, const char *suffix)
{
    static char buf[4][128];
    static int k;
    k = (k + 1) & 3;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf[k], sizeof buf[k], "%s/nabla_fuzz_%ld_%s%s", dir, (long)getpid(), tag, suffix);
    return buf[k];
}

/* Write size bytes to path; 0 on success. */
static inline int fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, size, f) == size;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Abort (a crash the fuzzer reports) when a failing call left no message. */
static inline void fuzz_require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz: %s\n", what);
        abort();
    }
}

#endif
