/* gemm_driver.c — times one 1x1-convolution GEMM shape, Y[M][N] = W[M][K]·X[K][N] + b, two ways, in one run:
 *   native:   the hybridc-generated kernel (libmodel.a of a one-conv2d graph, weights prepacked at compile time),
 *             bias fused into the micro-kernel;
 *   openblas: cblas_sgemm on the same planar layout, plus the separate pass that adds the bias (an activation or
 *             residual would be one more pass each).
 * Usage: gemm_driver M K H W THREADS REPEAT   (N = H·W; the graph was compiled for exactly this shape)
 * Prints one line: M K N threads, median ms and GFLOP/s of each, OpenBLAS's split between sgemm and the bias
 * pass, and the speed ratio native/openblas (> 1: native faster).
 * Built by Benchmarks/gemm_shapes.sh; not a test. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include "model.h"

extern void openblas_set_num_threads(int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s M K H W THREADS REPEAT\n", argv[0]); return 2; }
    const int M = atoi(argv[1]), K = atoi(argv[2]), H = atoi(argv[3]), W = atoi(argv[4]);
    const int threads = atoi(argv[5]), repeat = atoi(argv[6]);
    const long N = (long)H * W;
    model_ctx *ctx;
    int rc = model_create(model_weights_blob, (size_t)(model_weights_blob_end - model_weights_blob), threads, &ctx);
    if (rc) { fprintf(stderr, "model_create: %s\n", model_error_message(rc)); return 1; }
    float *x = malloc(sizeof(float) * K * N), *y = malloc(sizeof(float) * M * N), *yb = malloc(sizeof(float) * M * N);
    void *ws = malloc(model_workspace_size(ctx, H, W));
    srand(1);
    for (long i = 0; i < (long)K * N; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    /* Timing only: correctness of the generated kernel is KernelTests' job (against the interpreter). */
    double *t = malloc(sizeof(double) * (repeat > 0 ? repeat : 1));
    model_run(ctx, x, y, H, W, ws); /* warm-up */
    for (int r = 0; r < repeat; r++) { const double t0 = now(); model_run(ctx, x, y, H, W, ws); t[r] = now() - t0; }
    qsort(t, repeat, sizeof(double), cmp);
    const double native = t[repeat / 2];

    /* OpenBLAS: the same GEMM with its own (random) weights, then the bias pass. */
    float *w = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * M);
    for (long i = 0; i < (long)M * K; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < M; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
    openblas_set_num_threads(threads);
    double tb[2] = {0, 0};
    for (int r = -1; r < repeat; r++) {
        const double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, (int)N, K, 1.0f, w, K, x, (int)N, 0.0f, yb, (int)N);
        const double t1 = now();
        for (int m = 0; m < M; m++) { float *yr = yb + (long)m * N; const float bv = b[m]; for (long p = 0; p < N; p++) yr[p] += bv; }
        const double t2 = now();
        if (r >= 0) { t[r] = t2 - t0; tb[0] += t1 - t0; tb[1] += t2 - t1; }
    }
    qsort(t, repeat, sizeof(double), cmp);
    const double blas = t[repeat / 2];
    const double flops = 2.0 * M * K * N;
    printf("%5d %5d %6ld %2d  native %8.3f ms %6.1f GFLOP/s  openblas %8.3f ms %6.1f GFLOP/s (sgemm %.1f%%, bias pass %.1f%%)  native/openblas speed %.2f\n",
           M, K, N, threads, native * 1e3, flops / native * 1e-9, blas * 1e3, flops / blas * 1e-9,
           100.0 * tb[0] / (tb[0] + tb[1]), 100.0 * tb[1] / (tb[0] + tb[1]), blas / native);
    model_destroy(ctx);
    free(x); free(y); free(yb); free(ws); free(t); free(w); free(b);
    return 0;
}
