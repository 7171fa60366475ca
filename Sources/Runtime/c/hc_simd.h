/* hc_simd.h — the one SIMD mapping header of hybridc's generated code (AVX2+FMA, NEON, or scalar). */
/*
 * The build picks exactly one target with a macro:
 *   HC_TARGET_AVX2   x86-64 with AVX2 and FMA (compile with -mavx2 -mfma)   HC_VLEN 8
 *   HC_TARGET_NEON   aarch64 NEON (e.g. -march=armv8.2-a+fp16)              HC_VLEN 4
 *   neither          portable scalar C                                      HC_VLEN 1
 *
 * Everything is a static inline function over the vector type hc_vf:
 *   hc_vld(p)              load HC_VLEN floats from p (no alignment needed)
 *   hc_vst(p, v)           store HC_VLEN floats to p (no alignment needed)
 *   hc_vld_partial(p, n)   load n floats (0 <= n <= HC_VLEN), other lanes are 0; never reads past p[n-1]
 *   hc_vst_partial(p, v, n) store the first n lanes; never writes past p[n-1]
 *   hc_vset1(x), hc_vzero()
 *   hc_vadd, hc_vsub, hc_vmul, hc_vdiv, hc_vmax, hc_vmin (a, b)
 *   hc_vfma(a, b, c)       a*b + c with a single rounding (fused on every target, scalar uses fmaf)
 *   hc_vhsum(v)            horizontal sum, see the fixed order below
 *
 * hc_vhsum order (deterministic for a given target): a halving tree that repeatedly adds the upper half of
 * the lanes onto the lower half.  AVX2: ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)).  NEON: (v0+v2) + (v1+v3).
 * Scalar: v.  Results therefore differ between targets but never between runs or thread counts.
 *
 * hc_vmax/hc_vmin with a NaN operand follow the hardware (x86: returns b; NEON: NaN; scalar: returns b);
 * generated code must not rely on NaN propagation through them.
 *
 * HC_TARGET_NAME is a string naming the selected mapping ("avx2", "neon", "scalar").
 */
#ifndef HC_SIMD_H
#define HC_SIMD_H

#include <string.h>

#if defined(HC_TARGET_AVX2) && defined(HC_TARGET_NEON)
#error "hc_simd.h: define at most one of HC_TARGET_AVX2 and HC_TARGET_NEON"
#endif

#if defined(HC_TARGET_AVX2)
/* ------------------------------------------------------------------ x86-64 AVX2 + FMA, 8 floats */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "hc_simd.h: HC_TARGET_AVX2 needs -mavx2 -mfma (or an -march that implies them)"
#endif
#include <immintrin.h>

#define HC_VLEN 8
#define HC_TARGET_NAME "avx2"
typedef __m256 hc_vf;

static inline hc_vf hc_vld(const float *p) { return _mm256_loadu_ps(p); }
static inline void hc_vst(float *p, hc_vf v) { _mm256_storeu_ps(p, v); }
static inline hc_vf hc_vset1(float x) { return _mm256_set1_ps(x); }
static inline hc_vf hc_vzero(void) { return _mm256_setzero_ps(); }
static inline hc_vf hc_vadd(hc_vf a, hc_vf b) { return _mm256_add_ps(a, b); }
static inline hc_vf hc_vsub(hc_vf a, hc_vf b) { return _mm256_sub_ps(a, b); }
static inline hc_vf hc_vmul(hc_vf a, hc_vf b) { return _mm256_mul_ps(a, b); }
static inline hc_vf hc_vdiv(hc_vf a, hc_vf b) { return _mm256_div_ps(a, b); }
static inline hc_vf hc_vmax(hc_vf a, hc_vf b) { return _mm256_max_ps(a, b); }
static inline hc_vf hc_vmin(hc_vf a, hc_vf b) { return _mm256_min_ps(a, b); }
static inline hc_vf hc_vfma(hc_vf a, hc_vf b, hc_vf c) { return _mm256_fmadd_ps(a, b, c); }

static inline float hc_vhsum(hc_vf v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);                       /* s_i = v_i + v_{i+4}        */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));       /* t0 = s0 + s2, t1 = s1 + s3 */
    __m128 u = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));   /* t0 + t1                    */
    return _mm_cvtss_f32(u);
}

#elif defined(HC_TARGET_NEON)
/* ------------------------------------------------------------------ aarch64 NEON, 4 floats */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "hc_simd.h: HC_TARGET_NEON needs an aarch64 compiler with NEON"
#endif
#include <arm_neon.h>

#define HC_VLEN 4
#define HC_TARGET_NAME "neon"
typedef float32x4_t hc_vf;

static inline hc_vf hc_vld(const float *p) { return vld1q_f32(p); }
static inline void hc_vst(float *p, hc_vf v) { vst1q_f32(p, v); }
static inline hc_vf hc_vset1(float x) { return vdupq_n_f32(x); }
static inline hc_vf hc_vzero(void) { return vdupq_n_f32(0.0f); }
static inline hc_vf hc_vadd(hc_vf a, hc_vf b) { return vaddq_f32(a, b); }
static inline hc_vf hc_vsub(hc_vf a, hc_vf b) { return vsubq_f32(a, b); }
static inline hc_vf hc_vmul(hc_vf a, hc_vf b) { return vmulq_f32(a, b); }
static inline hc_vf hc_vdiv(hc_vf a, hc_vf b) { return vdivq_f32(a, b); }
static inline hc_vf hc_vmax(hc_vf a, hc_vf b) { return vmaxq_f32(a, b); }
static inline hc_vf hc_vmin(hc_vf a, hc_vf b) { return vminq_f32(a, b); }
static inline hc_vf hc_vfma(hc_vf a, hc_vf b, hc_vf c) { return vfmaq_f32(c, a, b); }

static inline float hc_vhsum(hc_vf v)
{
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));   /* (v0 + v2, v1 + v3) */
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}

#else
/* ------------------------------------------------------------------ portable scalar, 1 float */
#include <math.h>

#define HC_VLEN 1
#define HC_TARGET_NAME "scalar"
typedef float hc_vf;

static inline hc_vf hc_vld(const float *p) { return *p; }
static inline void hc_vst(float *p, hc_vf v) { *p = v; }
static inline hc_vf hc_vset1(float x) { return x; }
static inline hc_vf hc_vzero(void) { return 0.0f; }
static inline hc_vf hc_vadd(hc_vf a, hc_vf b) { return a + b; }
static inline hc_vf hc_vsub(hc_vf a, hc_vf b) { return a - b; }
static inline hc_vf hc_vmul(hc_vf a, hc_vf b) { return a * b; }
static inline hc_vf hc_vdiv(hc_vf a, hc_vf b) { return a / b; }
static inline hc_vf hc_vmax(hc_vf a, hc_vf b) { return a > b ? a : b; }
static inline hc_vf hc_vmin(hc_vf a, hc_vf b) { return a < b ? a : b; }
static inline hc_vf hc_vfma(hc_vf a, hc_vf b, hc_vf c) { return fmaf(a, b, c); }
static inline float hc_vhsum(hc_vf v) { return v; }

#endif

/* Tails: go through a small zeroed stack buffer so that no lane outside [0, n) is ever touched. */
static inline hc_vf hc_vld_partial(const float *p, int n)
{
    float buf[HC_VLEN];
    memset(buf, 0, sizeof buf);
    if (n > HC_VLEN) n = HC_VLEN;
    if (n > 0) memcpy(buf, p, (size_t)n * sizeof(float));
    return hc_vld(buf);
}

static inline void hc_vst_partial(float *p, hc_vf v, int n)
{
    float buf[HC_VLEN];
    hc_vst(buf, v);
    if (n > HC_VLEN) n = HC_VLEN;
    if (n > 0) memcpy(p, buf, (size_t)n * sizeof(float));
}

#endif /* HC_SIMD_H */
