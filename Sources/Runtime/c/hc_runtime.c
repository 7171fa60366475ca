/* hc_runtime.c — hybridc's C runtime: sleeping thread pool, flush-to-zero, monotonic clock, errors, file mapping. */
#define _POSIX_C_SOURCE 200809L

#include "hc_runtime.h"
#include "hc_simd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* CPU seconds of the calling thread (profiling traces only). */
static double hc_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
    hc_trace_event *trace;       /* profiling only: one event per thread per run (NULL: off) */
    long trace_capacity, trace_count;
    int tag;
};

/* With the mutex held: stores one trace event (counted, and dropped past the capacity). */
static void hc_trace_record(hc_pool *p, int tid, double t0, double t1, double cpu)
{
    if (p->trace_count < p->trace_capacity) {
        hc_trace_event *e = &p->trace[p->trace_count];
        e->t0 = t0;
        e->t1 = t1;
        e->cpu = cpu;
        e->tag = p->tag;
        e->tid = tid;
    }
    p->trace_count++;
}

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
        int traced = p->trace != NULL;
        pthread_mutex_unlock(&p->mutex);

        if (traced) {
            const double t0 = hc_now(), c0 = hc_thread_cpu();
            fn(args, w->tid, n);
            const double t1 = hc_now(), c1 = hc_thread_cpu();
            pthread_mutex_lock(&p->mutex);
            hc_trace_record(p, w->tid, t0, t1, c1 - c0);
        } else {
            fn(args, w->tid, n);
            pthread_mutex_lock(&p->mutex);
        }
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
        if (p != NULL && p->trace != NULL) {
            const double t0 = hc_now(), c0 = hc_thread_cpu();
            fn(args, 0, p->nthreads);
            const double c1 = hc_thread_cpu();
            hc_trace_record(p, 0, t0, hc_now(), c1 - c0);
            return;
        }
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

    const int traced = p->trace != NULL; /* set only between runs, by the thread that runs them */
    const double t0 = traced ? hc_now() : 0.0, c0 = traced ? hc_thread_cpu() : 0.0;
    fn(args, 0, p->nthreads);
    const double t1 = traced ? hc_now() : 0.0, c1 = traced ? hc_thread_cpu() : 0.0;

    pthread_mutex_lock(&p->mutex);
    if (traced) hc_trace_record(p, 0, t0, t1, c1 - c0);
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

/* ------------------------------------------------------------------ profiling */

void hc_pool_set_trace(hc_pool *p, hc_trace_event *events, long capacity)
{
    if (p == NULL) return;
    pthread_mutex_lock(&p->mutex);
    p->trace = capacity > 0 ? events : NULL;
    p->trace_capacity = events != NULL && capacity > 0 ? capacity : 0;
    p->trace_count = 0;
    pthread_mutex_unlock(&p->mutex);
}

void hc_pool_set_tag(hc_pool *p, int tag)
{
    if (p != NULL) p->tag = tag; /* between runs only; workers read it under the mutex */
}

long hc_pool_trace_count(const hc_pool *p) { return p == NULL ? 0 : p->trace_count; }

const char *hc_simd_target(void) { return HC_TARGET_NAME; }

/* Calibration: FMA throughput.  HC_CAL_ACC independent accumulators cover latency x pipes (4 x 2 on AVX2 cores,
 * 4 x 2 zmm on AVX-512 server cores with two 512-bit FMA units, 4 x 4 on Oryon-class NEON cores) and stay in
 * registers (16 ymm on AVX2, 32 zmm on AVX-512); the operands come through volatile so that nothing folds. */
#if HC_VLEN == 8
#define HC_CAL_ACC 12
#else
#define HC_CAL_ACC 16
#endif

typedef struct {
    long iterations;
    int threads;
    volatile float sink[HC_MAX_THREADS];
} hc_fma_args;

static void hc_fma_task(void *argp, int tid, int nt)
{
    hc_fma_args *a = (hc_fma_args *)argp;
    (void)nt;
    if (tid >= a->threads) return;
    volatile float mv = 0.999999f, av = 1e-7f;
    const hc_vf m = hc_vset1(mv), c = hc_vset1(av);
    hc_vf acc[HC_CAL_ACC];
    for (int k = 0; k < HC_CAL_ACC; k++) acc[k] = hc_vset1((float)(k + tid));
    const long n = a->iterations;
    /* without -ffast-math nothing here can be folded or reassociated: every FMA runs */
    for (long i = 0; i < n; i++)
        for (int k = 0; k < HC_CAL_ACC; k++) acc[k] = hc_vfma(acc[k], m, c);
    hc_vf s = acc[0];
    for (int k = 1; k < HC_CAL_ACC; k++) s = hc_vadd(s, acc[k]);
    a->sink[tid] = hc_vhsum(s);
}

double hc_measure_fma_gflops(hc_pool *p, int threads, double seconds)
{
    hc_fma_args a;
    memset(&a, 0, sizeof a);
    const int nt = hc_pool_threads(p);
    a.threads = threads < 1 ? 1 : threads > nt ? nt : threads;
    /* grow the loop until one run takes a tenth of the budget, then take the best of the rest */
    a.iterations = 1024;
    double dt = 0;
    for (;;) {
        const double t0 = hc_now();
        hc_pool_run(p, hc_fma_task, &a);
        dt = hc_now() - t0;
        if (dt >= 0.1 * seconds || a.iterations > (1L << 40)) break;
        a.iterations *= 2;
    }
    double best = dt;
    const double end = hc_now() + 0.8 * seconds;
    while (hc_now() < end) {
        const double t0 = hc_now();
        hc_pool_run(p, hc_fma_task, &a);
        const double d = hc_now() - t0;
        if (d < best) best = d;
    }
    const double flops = 2.0 * HC_VLEN * HC_CAL_ACC * (double)a.iterations * a.threads;
    return best > 0 ? flops / best * 1e-9 : 0.0;
}

typedef struct {
    const float *src;
    float *dst;
    size_t n;
} hc_copy_args;

static void hc_copy_task(void *argp, int tid, int nt)
{
    const hc_copy_args *a = (const hc_copy_args *)argp;
    long b, e;
    hc_split((long)a->n, tid, nt, &b, &e);
    if (e > b) memcpy(a->dst + b, a->src + b, (size_t)(e - b) * sizeof(float));
}

double hc_measure_copy_gbps(hc_pool *p, float *a, float *b, size_t floats, double seconds)
{
    if (a == NULL || b == NULL || floats == 0) return 0.0;
    hc_copy_args args = {a, b, floats};
    hc_pool_run(p, hc_copy_task, &args); /* touch every page first */
    args.src = b;
    args.dst = a;
    double best = 0;
    int runs = 0;
    const double end = hc_now() + seconds;
    while (runs < 3 || hc_now() < end) {
        const double t0 = hc_now();
        hc_pool_run(p, hc_copy_task, &args);
        const double d = hc_now() - t0;
        if (runs == 0 || d < best) best = d;
        const float *t = args.src; /* alternate direction */
        args.src = args.dst;
        args.dst = (float *)t;
        if (++runs >= 1000) break;
    }
    return best > 0 ? 2.0 * (double)floats * sizeof(float) / best * 1e-9 : 0.0;
}

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
