/* hc_simd.h — the one SIMD mapping header of hybridc's generated code (AVX-512, AVX2+FMA, NEON, or scalar). */
/*
 * The build picks exactly one target with a macro:
 *   HC_TARGET_AVX512 x86-64 with AVX-512 F/DQ/VL and FMA
 *                    (compile with -mavx512f -mavx512dq -mavx512vl -mavx2 -mfma)  HC_VLEN 16
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
 *   hc_vsel_gt(a, b, x, y) a > b ? x : y per lane (ordered: a NaN comparison picks y)
 *   hc_vabs(v)             |v| (clears the sign bit)
 *   hc_vround_(v)          round to the nearest integer, ties to even (the exp core's k)
 *   hc_vscale2_(p, k)      p * 2^k by adding k to the exponent bits (vscalefps on AVX-512: the same bits), for p in
 *                          [0.5, 2) and integral k in [-126, 128] with a normal result; other lanes give an
 *                          unspecified value that the caller replaces
 *   hc_prefetch(p), hc_prefetchw(p)  hint that p's cache line will be read (written) soon; no effect on results
 *   hc_vtranspose(v)       v[HC_VLEN]: a square of HC_VLEN x HC_VLEN floats, transposed in place (lane j of
 *                          v[i] becomes lane i of v[j]; register shuffles only, no arithmetic)
 *
 * hc_vhsum order (deterministic for a given target): a halving tree that repeatedly adds the upper half of
 * the lanes onto the lower half.  AVX-512: s_i = v_i + v_{i+8} (i < 8), then the AVX2 order on s, i.e.
 * ((((v0+v8)+(v4+v12)) + ((v2+v10)+(v6+v14))) + (((v1+v9)+(v5+v13)) + ((v3+v11)+(v7+v15)))).
 * AVX2: ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)).  NEON: (v0+v2) + (v1+v3).
 * Scalar: v.  Results therefore differ between targets but never between runs or thread counts.
 * Every other function is lane-wise IEEE single precision (one rounding per operation, FMA fused), so a lane's
 * result is the same on every target; only sums over lanes (hc_vhsum) and the grouping of work into vectors by
 * the generated code depend on HC_VLEN.
 *
 * hc_vmax/hc_vmin with a NaN operand follow the hardware (x86 AVX2 and AVX-512: returns b; NEON: NaN; scalar:
 * returns b); generated code must not rely on NaN propagation through them.  No function flushes denormals
 * (MXCSR is left as the C runtime set it: no FTZ/DAZ on any x86 target).
 *
 * HC_TARGET_NAME is a string naming the selected mapping ("avx512", "avx2", "neon", "scalar").
 */
#ifndef HC_SIMD_H
#define HC_SIMD_H

#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define hc_prefetch(p) __builtin_prefetch((p), 0, 3)
#define hc_prefetchw(p) __builtin_prefetch((p), 1, 3)
#else
#define hc_prefetch(p) ((void)(p))
#define hc_prefetchw(p) ((void)(p))
#endif

#if (defined(HC_TARGET_AVX512) + defined(HC_TARGET_AVX2) + defined(HC_TARGET_NEON)) > 1
#error "hc_simd.h: define at most one of HC_TARGET_AVX512, HC_TARGET_AVX2 and HC_TARGET_NEON"
#endif

#if defined(HC_TARGET_AVX512)
/* ------------------------------------------------------------------ x86-64 AVX-512 F/DQ/VL + FMA, 16 floats */
#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__) || !defined(__FMA__)
#error "hc_simd.h: HC_TARGET_AVX512 needs -mavx512f -mavx512dq -mavx512vl -mfma (or an -march that implies them)"
#endif
#include <immintrin.h>

#define HC_VLEN 16
#define HC_TARGET_NAME "avx512"
#define HC_SIMD_HAS_PARTIAL 1
typedef __m512 hc_vf;

static inline hc_vf hc_vld(const float *p) { return _mm512_loadu_ps(p); }
static inline void hc_vst(float *p, hc_vf v) { _mm512_storeu_ps(p, v); }
static inline hc_vf hc_vset1(float x) { return _mm512_set1_ps(x); }
static inline hc_vf hc_vzero(void) { return _mm512_setzero_ps(); }
static inline hc_vf hc_vadd(hc_vf a, hc_vf b) { return _mm512_add_ps(a, b); }
static inline hc_vf hc_vsub(hc_vf a, hc_vf b) { return _mm512_sub_ps(a, b); }
static inline hc_vf hc_vmul(hc_vf a, hc_vf b) { return _mm512_mul_ps(a, b); }
static inline hc_vf hc_vdiv(hc_vf a, hc_vf b) { return _mm512_div_ps(a, b); }
static inline hc_vf hc_vmax(hc_vf a, hc_vf b) { return _mm512_max_ps(a, b); }
static inline hc_vf hc_vmin(hc_vf a, hc_vf b) { return _mm512_min_ps(a, b); }
static inline hc_vf hc_vfma(hc_vf a, hc_vf b, hc_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline hc_vf hc_vfnma_(hc_vf a, hc_vf b, hc_vf c) { return _mm512_fnmadd_ps(a, b, c); }

/* Same lane-wise operations as the AVX2 section (so hc_vexp and the rest give the same bits per lane). */
static inline hc_vf hc_vsel_gt(hc_vf a, hc_vf b, hc_vf x, hc_vf y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x); /* mask bit set: x */
}
static inline hc_vf hc_vabs(hc_vf v) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), v); }
static inline hc_vf hc_vround_(hc_vf v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* vscalefps: one instruction instead of convert, shift and add; the same bits wherever p 2^k is a normal float. */
static inline hc_vf hc_vscale2_(hc_vf p, hc_vf k) { return _mm512_scalef_ps(p, k); }

static inline float hc_vhsum(hc_vf v)
{
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm512_extractf32x8_ps(v, 1);
    __m256 h = _mm256_add_ps(lo, hi);                     /* h_i = v_i + v_{i+8}        */
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); /* s_i = h_i + h_{i+4} */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));       /* t0 = s0 + s2, t1 = s1 + s3 */
    __m128 u = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));   /* t0 + t1                    */
    return _mm_cvtss_f32(u);
}

/* Tails with a lane mask: the masked-off lanes are neither read nor written (no fault past p[n-1]), loads give 0. */
static inline __mmask16 hc_vmask_(int n) { return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }
static inline hc_vf hc_vld_partial(const float *p, int n) { return _mm512_maskz_loadu_ps(hc_vmask_(n), p); }
static inline void hc_vst_partial(float *p, hc_vf v, int n) { _mm512_mask_storeu_ps(p, hc_vmask_(n), v); }

/* 16 x 16: 4 x 4 blocks within the 128-bit lanes (unpack ps, unpack pd), then the 128-bit blocks (two shuffles). */
static inline void hc_vtranspose(hc_vf v[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        v[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        v[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        v[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        v[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        v[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

#elif defined(HC_TARGET_AVX2)
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
static inline hc_vf hc_vfnma_(hc_vf a, hc_vf b, hc_vf c) { return _mm256_fnmadd_ps(a, b, c); }

/* a > b ? x : y per lane; |v|; the exp core: p * 2^k for p in [0.5, 2) and integral k in [-126, 128]. */
static inline hc_vf hc_vsel_gt(hc_vf a, hc_vf b, hc_vf x, hc_vf y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ)); }
static inline hc_vf hc_vabs(hc_vf v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
static inline hc_vf hc_vround_(hc_vf v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline hc_vf hc_vscale2_(hc_vf p, hc_vf k)
{
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_cvtps_epi32(k), 23)));
}

static inline float hc_vhsum(hc_vf v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);                       /* s_i = v_i + v_{i+4}        */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));       /* t0 = s0 + s2, t1 = s1 + s3 */
    __m128 u = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));   /* t0 + t1                    */
    return _mm_cvtss_f32(u);
}

/* 8 x 8: 4 x 4 blocks within the 128-bit halves (unpack, shuffle), then the halves. */
static inline void hc_vtranspose(hc_vf v[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
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
static inline hc_vf hc_vfnma_(hc_vf a, hc_vf b, hc_vf c) { return vfmsq_f32(c, a, b); }

static inline hc_vf hc_vsel_gt(hc_vf a, hc_vf b, hc_vf x, hc_vf y) { return vbslq_f32(vcgtq_f32(a, b), x, y); }
static inline hc_vf hc_vabs(hc_vf v) { return vabsq_f32(v); }
static inline hc_vf hc_vround_(hc_vf v) { return vrndnq_f32(v); }
static inline hc_vf hc_vscale2_(hc_vf p, hc_vf k)
{
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), vshlq_n_s32(vcvtnq_s32_f32(k), 23)));
}

static inline float hc_vhsum(hc_vf v)
{
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));   /* (v0 + v2, v1 + v3) */
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}

/* 4 x 4: 2 x 2 blocks (trn on 32-bit lanes), then the blocks (trn on 64-bit lanes). */
static inline void hc_vtranspose(hc_vf v[4])
{
    const float32x4_t t0 = vtrn1q_f32(v[0], v[1]), t1 = vtrn2q_f32(v[0], v[1]);
    const float32x4_t t2 = vtrn1q_f32(v[2], v[3]), t3 = vtrn2q_f32(v[2], v[3]);
    v[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    v[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    v[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    v[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
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
static inline hc_vf hc_vfnma_(hc_vf a, hc_vf b, hc_vf c) { return fmaf(-a, b, c); }
static inline float hc_vhsum(hc_vf v) { return v; }
static inline void hc_vtranspose(hc_vf v[1]) { (void)v; }
static inline hc_vf hc_vsel_gt(hc_vf a, hc_vf b, hc_vf x, hc_vf y) { return a > b ? x : y; }
static inline hc_vf hc_vabs(hc_vf v) { return fabsf(v); }
static inline hc_vf hc_vround_(hc_vf v) { return rintf(v); }
static inline hc_vf hc_vscale2_(hc_vf p, hc_vf k)
{
    unsigned int bits;
    k = k > 200.0f ? 200.0f : k < -200.0f ? -200.0f : k; /* lanes out of range are replaced by the caller; no UB */
    memcpy(&bits, &p, sizeof bits);
    bits += (unsigned int)(int)k << 23;
    memcpy(&p, &bits, sizeof p);
    return p;
}

#endif

#ifndef HC_SIMD_HAS_PARTIAL
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
#endif

/* ------------------------------------------------------------------ vector math, every target
 * hc_vexp(x)       e^x per lane.  Cody-Waite range reduction x = k ln2 + r, k = rint(x log2 e) by the 1.5 * 2^23
 *                  shifter in one FMA (|r| <= ln2/2 + a few ulp) (ln2 split in a 9-bit head
 *                  and a tail, so k ln2_hi is exact), e^r by a degree-6 polynomial fitted for minimax relative
 *                  error on [-ln2/2, ln2/2] (1.8e-8 with its float coefficients) in Horner form with FMAs, then k
 *                  added to the exponent bits.  Measured against
 *                  double exp over a sweep of [-87.3, 88.72] (CodegenTests.VectorMathTests): at most 2 ulp.
 *                  x < -87.3 gives +0 (the true value is below 1.04 FLT_MIN: no denormal is ever made or read),
 *                  x > 88.72283 (past ln FLT_MAX) gives +inf.  A NaN argument gives an unspecified value.
 * hc_vexp2_decay(x) 2^x for the scan's decays exp(dt A) = 2^(dt (A log2 e)), the kernel scaling A by log2 e once:
 *                  x clamped to [-126, 126] (so 2^-126 = FLT_MIN at most: no denormal is ever made), r = x - rint(x)
 *                  (exact) and 2^r by a degree-6 polynomial fitted for minimax relative error on [-1/2, 1/2]
 *                  (2.0e-9 in double) in Horner form with FMAs, then rint(x) added to the exponent.  Against double
 *                  2^x over [-126, 126]: at most 1 ulp (VectorMathTests).  Nine vector operations on AVX-512
 *                  (vrangeps clamps, vreduceps gives r, vscalefps scales), thirteen elsewhere; same bits on every
 *                  target.  (Scaling A first costs one more rounding of the argument than the interpreter's
 *                  exp(dt A), as large as that of dt A itself.)
 * hc_vexp2_scan(x) hc_vexp2_decay for the scan kernels' inner loop: the same bits for x in [-126, 126]; outside it
 *                  the AVX-512 version does not clamp (one vector operation less per state and step) but lets
 *                  vscalefps saturate: 2^x underflows to a denormal or 0 (0 under the runtime's flush-to-zero)
 *                  below -126 and overflows to +inf from 128 on, as expf(x ln 2) does; other targets clamp as
 *                  hc_vexp2_decay.
 * hc_vexp2_mul(a, b) 2^(a b) for the SS2D scan's decays (a = A log2 e, b = dt), the product not rounded first.  On
 *                  AVX-512 table-driven: m = a b + 1.5 * 2^19 by one FMA rounds a b to n/16 (n = rint(16 a b)) and
 *                  leaves n in m's low mantissa bits; nh = m - 1.5 * 2^19 = n/16 and r = a b - nh (one FMA, |r| <=
 *                  1/32); vpermps picks t = 2^((n mod 16)/16) from a 16-entry table by m's low four bits, 2^r =
 *                  1 + r q(r) with q a quadratic fitted for minimax relative error on [-1/32, 1/32] (1.6e-9), and
 *                  vscalefps(t + t r q, nh) multiplies by 2^floor(n/16).  Nine vector operations with the product
 *                  (hc_vexp2_scan(a * b): ten).  Against double 2^(a b): at most 1 ulp (0.98 measured over the
 *                  [-126, 126] sweep, 0.995 over 3e8 random products; the bound's budget is the table entries'
 *                  rounding, <= 0.452 ulp, the final rounding and ~0.05 for r q).  Below -126 it underflows as
 *                  hc_vexp2_scan (to 0 under flush-to-zero), from 128 on it overflows to +inf.  Domain: finite a b
 *                  with |a b| <= 2^60 (r stays small enough for the quadratic; the scan kernel clamps A log2 e to
 *                  [-2^40, 0] and dt to 2^20 for it); NaN gives NaN.  Other targets: hc_vexp2_scan(a * b), whose
 *                  bits differ (the only lane-wise function whose AVX-512 bits are not AVX2's): 2^x within 1 ulp of
 *                  the rounded product x = fl(a b), as the scan computed it before (that rounding alone is up to 44
 *                  ulp of 2^(a b) at |a b| near 126, and the interpreter's exp(dt A) rounds dt A the same way):
 *                  their table lookup (two vpermps + a blend on AVX2, tbl on NEON) and the exponent add without
 *                  vscalefps's saturation (a clamp) cost more than the six-FMA polynomial saves.
 * hc_vsoftplus(x)  PyTorch's softplus (beta 1, threshold 20) as max(x, 0) + log1p(e^-|x|), which equals x to the
 *                  last bit for x > 20; e^-|x| as hc_vexp but with the argument clamped at -87.3 (the log1p term is
 *                  then replaced by 0) instead of selecting both ends, and log1p(u), u in (0, 1], as
 *                  2 s (1 + z Q(z)), s = u / (2 + u), z = s^2 <= 1/9, Q a cubic fitted for minimax error in
 *                  atanh(s)/s (4.6e-9; one division).  At most 3 ulp against double over [-87, 60] (same test).
 *                  Two operations fewer than 0 - |x|, s + s, 2 s (1 + z Q) and max(x, 0) + l, with the same bits:
 *                  -|x| as x or the sign bit (-0 instead of +0 for x = +-0, lost in 1 + r p with r = +-0) and
 *                  l = s (1 + z Q) added as max(x, 0) + 2 l by one FMA (the doubling is exact).
 * hc_vsoftplus4(v) hc_vsoftplus of the four vectors v[0..3] in place, the same bits, evaluated statement by statement
 *                  in lockstep so that the four long dependency chains (the exp, the division, the log1p
 *                  polynomial) overlap in the vector units (the scan's dt pass).
 * hc_vsigmoid(x), hc_vsilu(x)   1 / (1 + e^-x) and x / (1 + e^-x) on hc_vexp's core (+inf for very negative x
 *                  gives 0 and -0; e^-x below 2^-24 vanishes in 1 + e^-x, so only the +inf end needs a select);
 *                  sigmoid at most 3 ulp over [-87, 60] (2.32 measured), SiLU 4 over [-15, 60] (1.97); relative
 *                  accuracy of SiLU for x < 0 as conditioned as in hc_math.h.  A true division: a reciprocal
 *                  estimate + Newton steps (vrcp14ps / vrcpps + 2 steps give the correctly rounded 1/d for every
 *                  float d in [1, 64) but six) measured slower than vdivps on this host's AVX-512 and AVX2 (the
 *                  divider runs beside the FMA ports, the 4-5 extra uops do not), and llvm-mca's Oryon model
 *                  gives fdiv .4s a reciprocal throughput of 1 cycle.
 * hc_verfc_pos_(a) erfc(a) for a >= 0 (the core of the two below): with t = 1 / (1 + a/2), erfc(a) = t Q(t) e^{-a^2},
 *                  Q a degree-10 polynomial in t on [0, 1] (t = 0 is a = inf) fitted for minimax relative error
 *                  (1.1e-8 in double, about 1 ulp with its float coefficients in Horner form with FMAs); e^{-a^2} is
 *                  e^{-hi} (1 - lo) with hi + lo = a^2 exactly (lo by an FMA), so the rounding of a^2 costs nothing.
 *                  a is clamped to 10 (erfc(10) < 2.1e-45 rounds to 0): a = +inf gives +0.
 * hc_verf(x)       erf(x): |x| <= 1: x P(x^2), P of degree 6 (minimax relative 1.2e-9); otherwise
 *                  sign(x) (1 - erfc(|x|)).  At most 2 ulp against double over [-6, 6] (VectorMathTests).
 * hc_vgelu(x)      exact GELU 0.5 x (1 + erf(x / sqrt 2)), as hc_geluf: g = 0.5 x erfc(|x| / sqrt 2), x - g for
 *                  x >= 0 and g for x < 0 (no cancellation on either side); x^2 / 2 goes to the exp exactly (as
 *                  hi + lo, from the exact x / 2), so unlike hc_geluf the rounding of x / sqrt 2 does not grow the
 *                  error with x^2.  x is clamped to [-13.2, 9] so that the exp core needs no range checks, and
 *                  below x = -13.146246 (the float where |g| falls under FLT_MIN) e^{-x^2/2} is replaced by 0: one
 *                  select in all, and no denormal is made for any x outside [-13.146246, -12.9].  Against double:
 *                  at most 4 ulp for x >= 0 (3.86 measured), 7.5 ulp over [-13.1, 0] (7.01 measured near x = -2.2,
 *                  mostly hc_vexp's 2 ulp and the products; 5.69 below -3; VectorMathTests, the same on every
 *                  target).  Results below FLT_MIN in magnitude (x < -13.146246, or denormal x) are -0 / +0;
 *                  +inf gives +inf.  46 instructions per vector on AVX-512 (was 57), 49 on AVX2 (56), 66 on NEON
 *                  (84); 0.56-0.58 ns per element on this host's AVX-512 (was 0.70-0.73), 0.87-0.88 on AVX2 (was
 *                  1.15-1.19), by Benchmarks/vmath_bench.c (gcc -O3, min of 301 runs).
 */
/* e^x for x in [-87.3, 88.72283] (no range checks): the core of hc_vexp. */
static inline hc_vf hc_vexp_core_(hc_vf x)
{
    /* k = rint(x log2 e) by the 1.5 * 2^23 shifter: an FMA and a subtraction (vroundps/vrndscaleps are two uops on
       Intel, plus the multiply); k may differ by one from rint of the rounded product, which keeps |r| <= ln2/2 +
       a few ulp, well inside the polynomial's accuracy. */
    const hc_vf k = hc_vsub(hc_vfma(x, hc_vset1(1.44269504088896341f), hc_vset1(12582912.0f)), hc_vset1(12582912.0f));
    hc_vf r = hc_vfma(k, hc_vset1(-0.693359375f), x);
    r = hc_vfma(k, hc_vset1(2.12194440e-4f), r);
    hc_vf p = hc_vset1(1.38368423e-3f);
    p = hc_vfma(p, r, hc_vset1(8.37481581e-3f));
    p = hc_vfma(p, r, hc_vset1(4.16682251e-2f));
    p = hc_vfma(p, r, hc_vset1(1.66664198e-1f));
    p = hc_vfma(p, r, hc_vset1(4.99999911e-1f));
    p = hc_vfma(p, r, hc_vset1(1.0f));
    p = hc_vfma(p, r, hc_vset1(1.0f));
    return hc_vscale2_(p, k);
}

static inline hc_vf hc_vexp(hc_vf x)
{
    /* No clamp of x: whatever the lanes outside [-87.3, 88.72283] compute is replaced by 0 or +inf at the end. */
    const hc_vf e = hc_vsel_gt(hc_vset1(-87.3f), x, hc_vzero(), hc_vexp_core_(x));
    return hc_vsel_gt(x, hc_vset1(88.72283f), hc_vset1(__builtin_inff()), e);
}

/* hc_vexp2_decay(x): 2^x, x clamped to [-126, 126]; r = x - rint(x) is exact, so every target gets the same r, p
 * and result bits (vreduceps with round-to-nearest gives exactly x - rint(x), and vscalefps the same bits as adding
 * k to the exponent for these normal results). */
static inline hc_vf hc_vexp2_decay(hc_vf x)
{
#if defined(HC_TARGET_AVX512)
    x = _mm512_range_ps(x, _mm512_set1_ps(126.0f), 0x02);       /* sign(x) min(|x|, 126) */
    const hc_vf r = _mm512_reduce_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const hc_vf k = hc_vsub(x, r);
#else
    x = hc_vmin(hc_vmax(x, hc_vset1(-126.0f)), hc_vset1(126.0f));
    const hc_vf k = hc_vround_(x);
    const hc_vf r = hc_vsub(x, k);
#endif
    hc_vf p = hc_vset1(1.53533416e-4f);
    p = hc_vfma(p, r, hc_vset1(1.33988727e-3f));
    p = hc_vfma(p, r, hc_vset1(9.61843785e-3f));
    p = hc_vfma(p, r, hc_vset1(5.55033237e-2f));
    p = hc_vfma(p, r, hc_vset1(2.40226477e-1f));
    p = hc_vfma(p, r, hc_vset1(6.93147182e-1f));
    p = hc_vfma(p, r, hc_vset1(1.0f));
#if defined(HC_TARGET_AVX512)
    return _mm512_scalef_ps(p, k);
#else
    return hc_vscale2_(p, k);
#endif
}

static inline hc_vf hc_vexp2_scan(hc_vf x)
{
#if defined(HC_TARGET_AVX512)
    const hc_vf r = _mm512_reduce_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const hc_vf k = hc_vsub(x, r);
    hc_vf p = hc_vset1(1.53533416e-4f);
    p = hc_vfma(p, r, hc_vset1(1.33988727e-3f));
    p = hc_vfma(p, r, hc_vset1(9.61843785e-3f));
    p = hc_vfma(p, r, hc_vset1(5.55033237e-2f));
    p = hc_vfma(p, r, hc_vset1(2.40226477e-1f));
    p = hc_vfma(p, r, hc_vset1(6.93147182e-1f));
    p = hc_vfma(p, r, hc_vset1(1.0f));
    return _mm512_scalef_ps(p, k);
#else
    return hc_vexp2_decay(x);
#endif
}

/* hc_vexp2_mul(a, b): see above.  2^(j/16) rounded to float (every entry within 0.452 ulp). */
static inline hc_vf hc_vexp2_mul(hc_vf a, hc_vf b)
{
#if defined(HC_TARGET_AVX512)
    static const float tab[16] = {
        0x1p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fep+0f, 0x1.3dea64p+0f, 0x1.4bfdaep+0f, 0x1.5ab07ep+0f,
        0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f, 0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f };
    const hc_vf shift = hc_vset1(786432.0f);                   /* 1.5 * 2^19: its ulp is 1/16 */
    const hc_vf m = hc_vfma(a, b, shift);
    const hc_vf nh = hc_vsub(m, shift);
    const hc_vf r = _mm512_fmsub_ps(a, b, nh);
    const hc_vf t = _mm512_permutexvar_ps(_mm512_castps_si512(m), _mm512_loadu_ps(tab));
    hc_vf q = hc_vfma(hc_vset1(5.55036888e-2f), r, hc_vset1(2.40234271e-1f));
    q = hc_vfma(q, r, hc_vset1(6.93147182e-1f));
    return _mm512_scalef_ps(hc_vfma(t, hc_vmul(r, q), t), nh);
#else
    return hc_vexp2_scan(hc_vmul(a, b));
#endif
}

/* -|x| in one operation where the target has a vector or (the sign bit set; -0 for +-0). */
static inline hc_vf hc_vnabs_(hc_vf x)
{
#if defined(HC_TARGET_AVX512)
    return _mm512_or_ps(x, _mm512_set1_ps(-0.0f));
#elif defined(HC_TARGET_AVX2)
    return _mm256_or_ps(x, _mm256_set1_ps(-0.0f));
#elif defined(HC_TARGET_NEON)
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u)));
#else
    return hc_vsub(hc_vzero(), hc_vabs(x));
#endif
}

static inline hc_vf hc_vsoftplus(hc_vf x)
{
    /* u = e^t, t = -|x| clamped at -87.3 (k >= -126 keeps p 2^k normal); k = rint(t log2 e) by the 1.5 * 2^23
       shifter, the Cody-Waite reduction and polynomial of hc_vexp. */
    const hc_vf t = hc_vnabs_(x);
    const hc_vf tc = hc_vmax(t, hc_vset1(-87.3f));
    const hc_vf k = hc_vsub(hc_vfma(tc, hc_vset1(1.44269504088896341f), hc_vset1(12582912.0f)), hc_vset1(12582912.0f));
    hc_vf r = hc_vfma(k, hc_vset1(-0.693359375f), tc);
    r = hc_vfma(k, hc_vset1(2.12194440e-4f), r);
    hc_vf p = hc_vset1(1.38368423e-3f);
    p = hc_vfma(p, r, hc_vset1(8.37481581e-3f));
    p = hc_vfma(p, r, hc_vset1(4.16682251e-2f));
    p = hc_vfma(p, r, hc_vset1(1.66664198e-1f));
    p = hc_vfma(p, r, hc_vset1(4.99999911e-1f));
    p = hc_vfma(p, r, hc_vset1(1.0f));
    p = hc_vfma(p, r, hc_vset1(1.0f));
#if defined(HC_TARGET_AVX512)
    const hc_vf u = _mm512_scalef_ps(p, k);
#else
    const hc_vf u = hc_vscale2_(p, k);
#endif
    /* log1p(u) = 2 atanh(s) = 2 s (1 + z Q(z)), s = u / (2 + u) in [0, 1/3], z = s^2: l = s (1 + z Q(z)) here and
       max(x, 0) + 2 l by one FMA (2 l is exact: the bits of max(x, 0) + (2 s + 2 s z Q)). */
    const hc_vf s = hc_vdiv(u, hc_vadd(hc_vset1(2.0f), u));
    const hc_vf z = hc_vmul(s, s);
    hc_vf q = hc_vset1(1.40121847e-1f);
    q = hc_vfma(q, z, hc_vset1(1.39995784e-1f));
    q = hc_vfma(q, z, hc_vset1(2.00108483e-1f));
    q = hc_vfma(q, z, hc_vset1(3.33332062e-1f));
    q = hc_vmul(q, z);
    const hc_vf l = hc_vsel_gt(hc_vset1(-87.3f), t, hc_vzero(), hc_vfma(s, q, s));
    return hc_vfma(l, hc_vset1(2.0f), hc_vmax(x, hc_vzero()));
}

/* The statements of hc_vsoftplus, each applied to v[0..3] before the next one. */
static inline void hc_vsoftplus4(hc_vf *v)
{
    hc_vf t[4], k[4], r[4], p[4], q[4];
    for (int i = 0; i < 4; i++) t[i] = hc_vnabs_(v[i]);
    for (int i = 0; i < 4; i++) {
        const hc_vf tc = hc_vmax(t[i], hc_vset1(-87.3f));
        k[i] = hc_vsub(hc_vfma(tc, hc_vset1(1.44269504088896341f), hc_vset1(12582912.0f)), hc_vset1(12582912.0f));
        r[i] = hc_vfma(k[i], hc_vset1(-0.693359375f), tc);
    }
    for (int i = 0; i < 4; i++) r[i] = hc_vfma(k[i], hc_vset1(2.12194440e-4f), r[i]);
    for (int i = 0; i < 4; i++) p[i] = hc_vfma(hc_vset1(1.38368423e-3f), r[i], hc_vset1(8.37481581e-3f));
    for (int i = 0; i < 4; i++) p[i] = hc_vfma(p[i], r[i], hc_vset1(4.16682251e-2f));
    for (int i = 0; i < 4; i++) p[i] = hc_vfma(p[i], r[i], hc_vset1(1.66664198e-1f));
    for (int i = 0; i < 4; i++) p[i] = hc_vfma(p[i], r[i], hc_vset1(4.99999911e-1f));
    for (int i = 0; i < 4; i++) p[i] = hc_vfma(p[i], r[i], hc_vset1(1.0f));
    for (int i = 0; i < 4; i++) p[i] = hc_vfma(p[i], r[i], hc_vset1(1.0f));
#if defined(HC_TARGET_AVX512)
    for (int i = 0; i < 4; i++) p[i] = _mm512_scalef_ps(p[i], k[i]);
#else
    for (int i = 0; i < 4; i++) p[i] = hc_vscale2_(p[i], k[i]);
#endif
    /* p is u = e^t now; r becomes s = u / (2 + u), k becomes z = s^2. */
    for (int i = 0; i < 4; i++) r[i] = hc_vdiv(p[i], hc_vadd(hc_vset1(2.0f), p[i]));
    for (int i = 0; i < 4; i++) k[i] = hc_vmul(r[i], r[i]);
    for (int i = 0; i < 4; i++) q[i] = hc_vfma(hc_vset1(1.40121847e-1f), k[i], hc_vset1(1.39995784e-1f));
    for (int i = 0; i < 4; i++) q[i] = hc_vfma(q[i], k[i], hc_vset1(2.00108483e-1f));
    for (int i = 0; i < 4; i++) q[i] = hc_vfma(q[i], k[i], hc_vset1(3.33332062e-1f));
    for (int i = 0; i < 4; i++) q[i] = hc_vmul(q[i], k[i]);
    for (int i = 0; i < 4; i++) {
        const hc_vf l = hc_vsel_gt(hc_vset1(-87.3f), t[i], hc_vzero(), hc_vfma(r[i], q[i], r[i]));
        v[i] = hc_vfma(l, hc_vset1(2.0f), hc_vmax(v[i], hc_vzero()));
    }
}

/* 1 + e^-x for hc_vsigmoid and hc_vsilu: -x is raised to -87.3 (e^-87.3 < 2^-24 vanishes in 1 + e exactly as the
 * 0 of hc_vexp would; the max keeps a NaN on every target) and +inf replaces e^-x above 88.72283, so the bits are those
 * of 1 + hc_vexp(-x) with one select fewer. */
static inline hc_vf hc_vsigden_(hc_vf x)
{
    const hc_vf nx = hc_vsub(hc_vzero(), x);
    const hc_vf e = hc_vexp_core_(hc_vmax(hc_vset1(-87.3f), nx));
    return hc_vadd(hc_vset1(1.0f), hc_vsel_gt(nx, hc_vset1(88.72283f), hc_vset1(__builtin_inff()), e));
}

static inline hc_vf hc_vsigmoid(hc_vf x) { return hc_vdiv(hc_vset1(1.0f), hc_vsigden_(x)); }

static inline hc_vf hc_vsilu(hc_vf x) { return hc_vdiv(x, hc_vsigden_(x)); }

/* t Q(t), t = 1 / (1 + a/2), the rational part of erfc(a) = t Q(t) e^{-a^2}; returns t Q(t). */
static inline hc_vf hc_verfc_tq_(hc_vf a)
{
    const hc_vf t = hc_vdiv(hc_vset1(1.0f), hc_vfma(a, hc_vset1(0.5f), hc_vset1(1.0f)));
    hc_vf q = hc_vset1(4.41950336e-2f);
    q = hc_vfma(q, t, hc_vset1(-2.39820063e-1f));
    q = hc_vfma(q, t, hc_vset1(5.04749775e-1f));
    q = hc_vfma(q, t, hc_vset1(-4.68367726e-1f));
    q = hc_vfma(q, t, hc_vset1(1.42080113e-1f));
    q = hc_vfma(q, t, hc_vset1(-6.38094395e-2f));
    q = hc_vfma(q, t, hc_vset1(9.47918147e-2f));
    q = hc_vfma(q, t, hc_vset1(1.75086766e-1f));
    q = hc_vfma(q, t, hc_vset1(2.46906087e-1f));
    q = hc_vfma(q, t, hc_vset1(2.82092839e-1f));
    q = hc_vfma(q, t, hc_vset1(2.82094806e-1f));
    return hc_vmul(t, q);
}

static inline hc_vf hc_verfc_core_(hc_vf a, hc_vf hi, hc_vf lo)
{
    const hc_vf e = hc_vexp(hc_vsub(hc_vzero(), hi));
    return hc_vmul(hc_verfc_tq_(a), hc_vfnma_(lo, e, e));
}

static inline hc_vf hc_verfc_pos_(hc_vf a)
{
    a = hc_vmin(a, hc_vset1(10.0f));
    const hc_vf hi = hc_vmul(a, a);
    return hc_verfc_core_(a, hi, hc_vfma(a, a, hc_vsub(hc_vzero(), hi)));
}

static inline hc_vf hc_verf(hc_vf x)
{
    const hc_vf ax = hc_vabs(x), u = hc_vmul(x, x);
    hc_vf p = hc_vset1(6.18492777e-5f);
    p = hc_vfma(p, u, hc_vset1(-7.46214646e-4f));
    p = hc_vfma(p, u, hc_vset1(5.11896564e-3f));
    p = hc_vfma(p, u, hc_vset1(-2.68115588e-2f));
    p = hc_vfma(p, u, hc_vset1(1.12823293e-1f));
    p = hc_vfma(p, u, hc_vset1(-3.76124650e-1f));
    p = hc_vfma(p, u, hc_vset1(1.12837911e+0f));
    const hc_vf big = hc_vsub(hc_vset1(1.0f), hc_verfc_pos_(ax));
    const hc_vf sbig = hc_vsel_gt(hc_vzero(), x, hc_vsub(hc_vzero(), big), big);
    return hc_vsel_gt(ax, hc_vset1(1.0f), sbig, hc_vmul(x, p));
}

static inline hc_vf hc_vgelu(hc_vf x)
{
    /* x clamped to [-13.2, 9]: above 9, x - g rounds to x whatever g <= 5e-19 is; below -13.2, e^{-x^2/2} would leave
       the normal range.  For x < -13.146246 (the largest float where |g| < FLT_MIN, found by an exhaustive scan)
       e^{-x^2/2} (1 - lo) is replaced by 0, so g = -0 without a denormal anywhere; no other range checks.
       a = |x| / sqrt 2 feeds only t; x^2 / 2 = hi + lo exactly (hx = x / 2 is exact), e^{-x^2/2} = e^{-hi} (1 - lo). */
    const hc_vf xc = hc_vmax(hc_vmin(x, hc_vset1(9.0f)), hc_vset1(-13.2f));
    const hc_vf hx = hc_vmul(hc_vset1(0.5f), xc);
    const hc_vf nhi = hc_vsub(hc_vzero(), hc_vmul(hx, xc));
    const hc_vf lo = hc_vfma(hx, xc, nhi);
    const hc_vf e = hc_vexp_core_(nhi);
    const hc_vf el = hc_vsel_gt(hc_vset1(-0x1.a4ae0cp+3f), x, hc_vzero(), hc_vfnma_(lo, e, e));
    const hc_vf g = hc_vmul(hx, hc_vmul(hc_verfc_tq_(hc_vmul(hc_vabs(xc), hc_vset1(0.70710678118654752440f))), el));
    return hc_vsel_gt(hc_vzero(), x, g, hc_vsub(x, g));
}

#endif /* HC_SIMD_H */
