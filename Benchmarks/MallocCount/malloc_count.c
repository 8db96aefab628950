// An LD_PRELOAD allocation counter for out-of-process benchmarks (Scripts/bench-echo.sh): every
// malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign, and every free, counted in a
// shared mapping of the file named by MALLOC_COUNT_FILE, so another process (the benchmark's
// client) reads the counts at the start and end of its measuring window, with no signal and no
// cooperation from the server. Calls go on to glibc's own allocator (__libc_*), so no dlsym (which
// allocates) is needed. Not a SwiftPM target: the script builds it with `cc -shared`.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

/// The layout the client reads (EchoClient/main.c): three 64-bit counters.
struct counters {
    _Atomic unsigned long allocations;  // malloc, calloc, the aligned ones
    _Atomic unsigned long reallocations;
    _Atomic unsigned long frees;
};

static struct counters *counters;

__attribute__((constructor)) static void map_counters(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, 4096) == 0) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (page != MAP_FAILED) counters = page;
    }
    close(fd);
}

static inline void count(_Atomic unsigned long *counter) {
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void *malloc(size_t size) {
    if (counters) count(&counters->allocations);
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    if (counters) count(&counters->allocations);
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    if (counters) count(pointer ? &counters->reallocations : &counters->allocations);
    return __libc_realloc(pointer, size);
}

void free(void *pointer) {
    if (pointer && counters) count(&counters->frees);
    __libc_free(pointer);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (counters) count(&counters->allocations);
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer) return ENOMEM;
    *out = pointer;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (counters) count(&counters->allocations);
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    if (counters) count(&counters->allocations);
    return __libc_memalign(alignment, size);
}
