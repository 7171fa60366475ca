/* hc_wrap_test.c — test-only linker wraps that count malloc/calloc/realloc/pthread_create/fopen calls while armed. */
/*
 * Link with  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=pthread_create,--wrap=fopen
 * Every call from the linked objects then goes through __wrap_X, which counts it (only while armed) and
 * forwards to the real function.  hc_wrap_arm(1) resets the counters and starts counting, hc_wrap_arm(0)
 * stops counting and keeps the values; hc_wrap_calls() is the sum of all counters.  Counters are atomic, so
 * calls from pool worker threads are counted too.  (--wrap only redirects references in the objects given
 * to the link, not calls made inside libc itself.)
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
FILE *__real_fopen(const char *path, const char *mode);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
FILE *__wrap_fopen(const char *path, const char *mode);

int hc_wrap_calls(void);
void hc_wrap_arm(int on);

/* Per-function counts, readable by tests. */
atomic_int hc_wrap_malloc_calls, hc_wrap_calloc_calls, hc_wrap_realloc_calls, hc_wrap_pthread_create_calls,
    hc_wrap_fopen_calls;
static atomic_int hc_wrap_armed;

static void count(atomic_int *counter)
{
    if (atomic_load_explicit(&hc_wrap_armed, memory_order_relaxed))
        atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void *__wrap_malloc(size_t size)
{
    count(&hc_wrap_malloc_calls);
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    count(&hc_wrap_calloc_calls);
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    count(&hc_wrap_realloc_calls);
    return __real_realloc(p, size);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    count(&hc_wrap_pthread_create_calls);
    return __real_pthread_create(t, attr, fn, arg);
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
    count(&hc_wrap_fopen_calls);
    return __real_fopen(path, mode);
}

int hc_wrap_calls(void)
{
    return atomic_load(&hc_wrap_malloc_calls) + atomic_load(&hc_wrap_calloc_calls) +
           atomic_load(&hc_wrap_realloc_calls) + atomic_load(&hc_wrap_pthread_create_calls) +
           atomic_load(&hc_wrap_fopen_calls);
}

void hc_wrap_arm(int on)
{
    if (on) {
        atomic_store(&hc_wrap_malloc_calls, 0);
        atomic_store(&hc_wrap_calloc_calls, 0);
        atomic_store(&hc_wrap_realloc_calls, 0);
        atomic_store(&hc_wrap_pthread_create_calls, 0);
        atomic_store(&hc_wrap_fopen_calls, 0);
    }
    atomic_store(&hc_wrap_armed, on ? 1 : 0);
}
