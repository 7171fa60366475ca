/* vmath_mca.c — one loop per activation function of hc_simd.h with llvm-mca region markers around its body.
 *   gcc -O3 <target flags> -DHC_TARGET_... -I Sources/Runtime/c -S Benchmarks/vmath_mca.c -o /tmp/vm.s
 *   llvm-mca -mcpu=sapphirerapids /tmp/vm.s     (aarch64: llvm-mca-19 -mtriple=aarch64 -mcpu=oryon-1)
 * reports the steady-state cycles per vector of each body (see Benchmarks/vmath_bench.c for timings). */
#include "hc_simd.h"

#define KERNEL(F)                                                                  \
    void k_##F(float *restrict o, const float *restrict in, long n)                \
    {                                                                              \
        for (long j = 0; j < n; j += HC_VLEN) {                                    \
            __asm__ volatile("# LLVM-MCA-BEGIN " #F);                              \
            hc_vst(o + j, F(hc_vld(in + j)));                                      \
            __asm__ volatile("# LLVM-MCA-END " #F);                                \
        }                                                                          \
    }

KERNEL(hc_vexp)
KERNEL(hc_vsigmoid)
KERNEL(hc_vsilu)
KERNEL(hc_verf)
KERNEL(hc_vgelu)
KERNEL(hc_vsoftplus)
