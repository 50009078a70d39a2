/* LD_PRELOAD shim for tests/store/test_store_guard.py: tear one write to a *.duckdb file.
 *
 * The TORN_AT-th pwrite to a file whose name ends in ".duckdb" writes only its first
 * TORN_KEEP bytes (default 4096, whole pages, at least one page short), then the process
 * kills itself with SIGKILL: what the kernel leaves when SIGKILL lands in the middle of
 * a multi-page write. A write of one page is never torn: it is dropped. With TORN_AT
 * unset or 0 nothing is torn, and the number of such writes is printed to stderr at exit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

#define PAGE 4096

static long writes = 0;

static int is_database(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 8) return 0;
    path[n] = 0;
    return strcmp(path + n - 7, ".duckdb") == 0;
}

static ssize_t tear(int fd, const void *buf, size_t count, off_t offset, pwrite_fn real) {
    if (is_database(fd)) {
        const char *at = getenv("TORN_AT");
        writes++;
        if (at && atol(at) == writes) {
            const char *keep = getenv("TORN_KEEP");
            size_t part = keep ? (size_t)atol(keep) : PAGE;
            part -= part % PAGE;
            if (part + PAGE > count) part = count > PAGE ? (count - 1) / PAGE * PAGE : 0;
            if (part) real(fd, buf, part, offset);
            raise(SIGKILL);
        }
    }
    return real(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    return tear(fd, buf, count, offset, real);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    return tear(fd, buf, count, offset, real);
}

__attribute__((destructor)) static void report(void) {
    const char *at = getenv("TORN_AT");
    if (!at || atol(at) == 0) fprintf(stderr, "torn_write: %ld database writes\n", writes);
}
