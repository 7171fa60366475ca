/* hc_runtime.c — hybridc's C runtime: sleeping thread pool, flush-to-zero, monotonic clock, errors, file mapping. */
#define _POSIX_C_SOURCE 200809L

#include "hc_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE__)
#define HC_HAVE_MXCSR 1
#include <xmmintrin.h>
#endif

/* ------------------------------------------------------------------ errors */

const char *hc_error_string(int code)
{
    switch (code) {
    case HC_OK: return "ok";
    case HC_ERR_ARGUMENT: return "invalid argument";
    case HC_ERR_BLOB: return "malformed or mismatched weights blob";
    case HC_ERR_SIZE: return "image size not supported by this model";
    case HC_ERR_THREADS: return "could not start worker threads";
    case HC_ERR_MEMORY: return "out of memory";
    case HC_ERR_IO: return "could not read file";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------------ flush to zero */

void hc_set_flush_to_zero(void)
{
#if defined(HC_HAVE_MXCSR)
    _mm_setcsr(_mm_getcsr() | 0x8040u);          /* FTZ (bit 15) | DAZ (bit 6) */
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    fpcr |= (uint64_t)1 << 24;                     /* FPCR.FZ */
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
#endif
}

/* ------------------------------------------------------------------ clock */

double hc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ thread pool */
/*
 * One mutex and two condition variables.  hc_pool_run publishes (fn, args), bumps `generation`, sets
 * `pending` to the number of workers and broadcasts `wake`; each worker runs the task once per generation,
 * decrements `pending`, and the last one signals `done`, on which the caller sleeps after doing its own
 * share as tid 0.  A new generation only starts after every worker has finished the previous one.
 */

typedef struct {
    hc_pool *pool;
    int tid;
    pthread_t thread;
} hc_worker;

struct hc_pool {
    int nthreads;
    int started;                 /* workers successfully created (nthreads - 1 when healthy) */
    pthread_mutex_t mutex;
    pthread_cond_t wake;         /* workers wait here for a new generation or shutdown */
    pthread_cond_t done;         /* the caller waits here for pending == 0             */
    unsigned long generation;
    int pending;
    int stop;
    hc_task_fn fn;
    void *args;
    hc_worker *workers;          /* nthreads - 1 entries, tids 1..nthreads-1 */
};

static void *hc_worker_main(void *arg)
{
    hc_worker *w = (hc_worker *)arg;
    hc_pool *p = w->pool;
    unsigned long seen = 0; /* the generation at creation: a task published before this thread first gets
                               the lock must still be run, so never read the current value here */

    hc_set_flush_to_zero();
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mutex);
        if (p->stop) break;
        seen = p->generation;
        hc_task_fn fn = p->fn;
        void *args = p->args;
        int n = p->nthreads;
        pthread_mutex_unlock(&p->mutex);

        fn(args, w->tid, n);

        pthread_mutex_lock(&p->mutex);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

static void hc_pool_stop_workers(hc_pool *p)
{
    pthread_mutex_lock(&p->mutex);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; i < p->started; i++) pthread_join(p->workers[i].thread, NULL);
    p->started = 0;
}

int hc_pool_create(hc_pool **out, int nthreads)
{
    if (out == NULL) return HC_ERR_ARGUMENT;
    *out = NULL;
    if (nthreads < 1 || nthreads > HC_MAX_THREADS) return HC_ERR_ARGUMENT;

    hc_set_flush_to_zero();

    hc_pool *p = (hc_pool *)calloc(1, sizeof *p);
    if (p == NULL) return HC_ERR_MEMORY;
    p->nthreads = nthreads;
    if (nthreads > 1) {
        p->workers = (hc_worker *)calloc((size_t)(nthreads - 1), sizeof *p->workers);
        if (p->workers == NULL) {
            free(p);
            return HC_ERR_MEMORY;
        }
    }
    if (pthread_mutex_init(&p->mutex, NULL) != 0) goto fail_mutex;
    if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_wake;
    if (pthread_cond_init(&p->done, NULL) != 0) goto fail_done;

    for (int i = 0; i < nthreads - 1; i++) {
        hc_worker *w = &p->workers[i];
        w->pool = p;
        w->tid = i + 1;
        if (pthread_create(&w->thread, NULL, hc_worker_main, w) != 0) {
            hc_pool_stop_workers(p);
            pthread_cond_destroy(&p->done);
            pthread_cond_destroy(&p->wake);
            pthread_mutex_destroy(&p->mutex);
            free(p->workers);
            free(p);
            return HC_ERR_THREADS;
        }
        p->started++;
    }
    *out = p;
    return HC_OK;

fail_done:
    pthread_cond_destroy(&p->wake);
fail_wake:
    pthread_mutex_destroy(&p->mutex);
fail_mutex:
    free(p->workers);
    free(p);
    return HC_ERR_THREADS;
}

void hc_pool_run(hc_pool *p, hc_task_fn fn, void *args)
{
    hc_set_flush_to_zero();
    if (p == NULL || p->started == 0) {
        fn(args, 0, p == NULL ? 1 : p->nthreads);
        return;
    }
    pthread_mutex_lock(&p->mutex);
    p->fn = fn;
    p->args = args;
    p->pending = p->started;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);

    fn(args, 0, p->nthreads);

    pthread_mutex_lock(&p->mutex);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}

void hc_pool_destroy(hc_pool *p)
{
    if (p == NULL) return;
    hc_pool_stop_workers(p);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mutex);
    free(p->workers);
    free(p);
}

int hc_pool_threads(const hc_pool *p) { return p == NULL ? 1 : p->nthreads; }

/* ------------------------------------------------------------------ file mapping */

int hc_map_file(const char *path, const void **data, size_t *size)
{
    if (path == NULL || data == NULL || size == NULL) return HC_ERR_ARGUMENT;
    *data = NULL;
    *size = 0;

    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return HC_ERR_IO;

    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return HC_ERR_IO;
    }
    if (st.st_size <= 0) {
        close(fd);
        return HC_ERR_BLOB;
    }
    if ((uintmax_t)st.st_size > (uintmax_t)SIZE_MAX) {
        close(fd);
        return HC_ERR_MEMORY;
    }
    size_t n = (size_t)st.st_size;
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return HC_ERR_IO;
    *data = m;
    *size = n;
    return HC_OK;
}

void hc_unmap_file(const void *data, size_t size)
{
    if (data != NULL && size > 0) munmap((void *)(uintptr_t)data, size);
}
