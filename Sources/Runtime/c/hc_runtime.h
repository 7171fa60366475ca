/* hc_runtime.h — hybridc's C runtime: thread pool, flush-to-zero, clock, work split, model info, errors, mmap. */
/*
 * C11 + pthreads only.  Nothing here prints, and nothing reachable from hc_pool_run allocates memory,
 * creates threads or touches files; hc_pool_create / hc_map_file are for the create path only.
 */
#ifndef HC_RUNTIME_H
#define HC_RUNTIME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes (shared by the runtime, every generated model and the driver) ---- */
enum {
    HC_OK = 0,
    HC_ERR_ARGUMENT = 1,   /* a NULL pointer, a bad thread count, a bad size argument      */
    HC_ERR_BLOB = 2,       /* the weights blob is malformed or does not belong to the model */
    HC_ERR_SIZE = 3,       /* height/width not accepted (too large, zero, ...)              */
    HC_ERR_THREADS = 4,    /* the thread pool could not be started                          */
    HC_ERR_MEMORY = 5,     /* an allocation failed (create path only)                       */
    HC_ERR_IO = 6          /* a file could not be opened, read or mapped                    */
};

/* A static, never-NULL English message for a code ("unknown error" for codes outside the enum). */
const char *hc_error_string(int code);

/* ---- thread pool ---- */

/* One task: called once on every pool thread with its index tid in [0, nthreads). */
typedef void (*hc_task_fn)(void *args, int tid, int nthreads);

typedef struct hc_pool hc_pool;

#define HC_MAX_THREADS 256

/* Creates a pool of nthreads (1..HC_MAX_THREADS): starts nthreads-1 sleeping worker threads; the caller of
 * hc_pool_run is thread 0.  Sets flush-to-zero on the calling thread and on every worker.
 * Returns HC_OK, HC_ERR_ARGUMENT, HC_ERR_MEMORY or HC_ERR_THREADS; *out is NULL on failure. */
int hc_pool_create(hc_pool **out, int nthreads);

/* Runs fn(args, tid, nthreads) on every pool thread, the caller as tid 0, and returns when all have
 * returned.  No allocation, no thread creation; workers and the caller sleep on condition variables (never
 * spin).  Also sets flush-to-zero on the calling thread, so tid 0 computes like the workers whichever
 * thread calls.  Not reentrant: one hc_pool_run at a time per pool, and fn must not call hc_pool_run.
 * A NULL pool runs fn(args, 0, 1) on the caller. */
void hc_pool_run(hc_pool *p, hc_task_fn fn, void *args);

/* Stops and joins the workers and frees the pool.  NULL is ignored. */
void hc_pool_destroy(hc_pool *p);

/* The pool's thread count (1 for a NULL pool). */
int hc_pool_threads(const hc_pool *p);

/* Sets flush-to-zero and denormals-are-zero on the calling thread: MXCSR FTZ|DAZ on x86, FPCR.FZ on
 * aarch64, nothing elsewhere. */
void hc_set_flush_to_zero(void);

/* ---- profiling: per-thread trace of pool runs, and the machine's peaks ---- */

/* One pool run on one thread: the tag set by hc_pool_set_tag (a kernel index), the thread, its wall times and
 * the thread's CPU seconds during the run (busy time: excludes time the thread was preempted, which on a shared
 * machine tells imbalance and contention apart from other processes' load). */
typedef struct {
    double t0, t1, cpu;
    int tag, tid;
} hc_trace_event;

/* Records one event per thread per hc_pool_run into events[0..capacity) (NULL: off, the default; when off,
 * hc_pool_run costs one pointer test more).  Events past the capacity are counted but not stored. */
void hc_pool_set_trace(hc_pool *p, hc_trace_event *events, long capacity);
void hc_pool_set_tag(hc_pool *p, int tag);
/* Events recorded since hc_pool_set_trace (may exceed the capacity: the excess was dropped). */
long hc_pool_trace_count(const hc_pool *p);

/* Calibration (not for the run path): vector-FMA throughput in GFLOP/s (2 FLOP per lane) on `threads` of the
 * pool's threads (1..hc_pool_threads), and streaming copy bandwidth in GB/s (bytes read + written) over two
 * buffers of `floats` floats each, split among all pool threads.  Each takes about `seconds`. */
double hc_measure_fma_gflops(hc_pool *p, int threads, double seconds);
double hc_measure_copy_gbps(hc_pool *p, float *a, float *b, size_t floats, double seconds);
/* The SIMD mapping hc_runtime.c was built with: "avx2", "neon" or "scalar". */
const char *hc_simd_target(void);

/* ---- time ---- */

/* Monotonic clock in seconds (CLOCK_MONOTONIC); only differences are meaningful. */
double hc_now(void);

/* ---- work split ---- */

/* Helpers a kernel calls with run-time strides stay out of line: inlined into a kernel whose shapes are
 * constants, gcc's loop analysis reports false "iteration N invokes undefined behavior" errors (-Werror). */
#if defined(__GNUC__)
#define HC_NOINLINE __attribute__((noinline))
#else
#define HC_NOINLINE
#endif

/* Contiguous balanced split of [0, n) over nt threads: thread tid gets [*begin, *end); the first n % nt
 * threads get one extra item.  Empty ranges (begin == end) when n < nt. */
static inline void hc_split(long n, int tid, int nt, long *begin, long *end)
{
    if (nt < 1) nt = 1;
    if (n < 0) n = 0;
    long q = n / nt, r = n % nt, t = tid;
    long b = t * q + (t < r ? t : r);
    *begin = b;
    *end = b + q + (t < r ? 1 : 0);
}

/* ---- model description (filled by the generated model_get_info, read by the driver) ---- */
typedef struct {
    int image;                      /* 1: image model (planar C,H,W of any size up to the maximum); 0: tensor */
    int in_channels, out_channels;  /* image mode: C of input and output                                      */
    int max_height, max_width;      /* image mode: compiled maximum input size                                */
    int in_rank, in_shape[8];       /* image mode: (1, C, max_height, max_width); tensor mode: exact shape    */
    int out_rank, out_shape[8];     /* image mode: (1, C_out, H_out_max, W_out_max); tensor mode: exact shape */
    int num_kernels;                /* number of generated kernels (profile rows)                             */
} hc_model_info;

/* ---- weights files ---- */

/* Maps a whole file read-only (open/fstat/mmap).  Returns HC_OK, HC_ERR_ARGUMENT, HC_ERR_IO (cannot open,
 * not a regular file, mmap failed) or HC_ERR_BLOB (empty file).  Release with hc_unmap_file. */
int hc_map_file(const char *path, const void **data, size_t *size);
void hc_unmap_file(const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* HC_RUNTIME_H */
