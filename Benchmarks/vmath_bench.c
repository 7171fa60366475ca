/* vmath_bench.c — throughput of hc_simd.h's activation functions per element, in L1 (a micro-benchmark, not a test).
 *   cc -O3 -mavx512f -mavx512dq -mavx512vl -mavx2 -mfma -DHC_TARGET_AVX512 -I Sources/Runtime/c \
 *      Benchmarks/vmath_bench.c -o /tmp/vmath_bench -lm && /tmp/vmath_bench
 * (-mavx2 -mfma -DHC_TARGET_AVX2 for AVX2.)  Prints ns and cycles (at the --ghz given, default 1) per element for
 * each function applied to 4096 floats in [-4, 4], best of 301 runs of 20 passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "hc_simd.h"

#define N 4096
static float in[N], out[N];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define BENCH(F)                                                                      \
    static double bench_##F(int reps, int runs)                                                 \
    {                                                                                 \
        double best = 1e30;                                                           \
        for (int run = 0; run < runs; run++) {                                           \
            double t0 = now();                                                        \
            for (int r = 0; r < reps; r++) {                                          \
                for (int i = 0; i < N; i += HC_VLEN) hc_vst(out + i, F(hc_vld(in + i))); \
                __asm__ volatile("" ::: "memory");                                    \
            }                                                                         \
            double t = (now() - t0) / ((double)reps * N);                             \
            if (t < best) best = t;                                                   \
        }                                                                             \
        return best * 1e9;                                                            \
    }

static inline hc_vf copy_(hc_vf x) { return x; }
BENCH(copy_)
BENCH(hc_vexp)
BENCH(hc_vsigmoid)
BENCH(hc_vsilu)
BENCH(hc_verf)
BENCH(hc_vgelu)
BENCH(hc_vsoftplus)

int main(int argc, char **argv)
{
    double ghz = argc > 1 ? atof(argv[1]) : 1.0;
    int reps = argc > 2 ? atoi(argv[2]) : 20, runs = argc > 3 ? atoi(argv[3]) : 301;
    for (int i = 0; i < N; i++) in[i] = -4.0f + 8.0f * (float)i / (float)N;
    printf("target %s (HC_VLEN %d), ns per element (cycles at %.2f GHz)\n", HC_TARGET_NAME, HC_VLEN, ghz);
#define ROW(F) { double ns = bench_##F(reps, runs); printf("%-14s %.4f ns  %.3f cyc\n", #F, ns, ns * ghz); }
    ROW(copy_) ROW(hc_vexp) ROW(hc_vsigmoid) ROW(hc_vsilu) ROW(hc_verf) ROW(hc_vgelu) ROW(hc_vsoftplus)
    return 0;
}
