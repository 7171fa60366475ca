/// The vector math of hc_simd.h (hc_vexp, hc_vexp2_decay, hc_vexp2_mul, hc_vsoftplus, hc_vsigmoid, hc_vsilu, hc_verf, hc_vgelu) against
/// double-precision libm over dense sweeps, on x86 (AVX2, and AVX-512 where the CPU has it), on aarch64 under qemu
/// (NEON) and in portable C: the maximum error in ulp of the correctly rounded result is asserted, the tails
/// (underflow to +0 with no denormal, overflow to +inf) and the header's lane contract (partial loads/stores,
/// hc_vhsum's order, select, abs, round, scale).
import Codegen
import Driver
import Foundation
import XCTest

final class VectorMathTests: XCTestCase {
    /// Prints "name maxulp" per function and "tails ok" or the first failing tail check.
    static let program = #"""
    #include <math.h>
    #include <stdio.h>
    #include <float.h>
    #include <string.h>
    #include "hc_simd.h"

    /* Error of f against the double reference in units of the float ulp at the reference. */
    static double ulps(float f, double ref)
    {
        if (isinf(ref) || ref > FLT_MAX) return isinf(f) && f > 0 ? 0.0 : 1e30;
        double a = fabs(ref) < FLT_MIN ? FLT_MIN : fabs(ref);
        int e;
        frexp(a, &e);
        double ulp = ldexp(1.0, e - 24);
        return fabs((double)f - ref) / ulp;
    }

    typedef hc_vf (*vfun)(hc_vf);
    typedef double (*dfun)(double);
    static double d_exp(double x) { return exp(x); }
    static double d_exp2(double x) { return exp2(x); }
    static double d_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }
    static double d_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
    static double d_silu(double x) { return x / (1.0 + exp(-x)); }
    static double d_erf(double x) { return erf(x); }
    static double d_gelu(double x) { return x < 0.0 ? 0.5 * x * erfc(-x / sqrt(2.0)) : 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

    static double sweep(vfun f, dfun ref, float lo, float hi, long n)
    {
        double worst = 0.0;
        float in[HC_VLEN], out[HC_VLEN];
        for (long i = 0; i < n; i += HC_VLEN) {
            for (int j = 0; j < HC_VLEN; j++) in[j] = lo + (hi - lo) * (float)((double)(i + j) / (double)(n - 1));
            hc_vst(out, f(hc_vld(in)));
            for (int j = 0; j < HC_VLEN; j++) {
                double u = ulps(out[j], ref((double)in[j]));
                if (u > worst) worst = u;
            }
        }
        return worst;
    }

    /* hc_vexp2_mul(a, b) against exp2 of the product: a over [lo, hi] with b = 1, or (products) pseudo-random
       dt in [2^-12, 2^4) and a = A log2 e in (-2^7, -2^-6], skipping products below -126.  The product is exact on
       AVX-512 (one FMA) and rounded to float first elsewhere (hc_vexp2_scan(a * b), whose error against the exact
       product is that rounding's, up to 126 * 2^-24 in the exponent). */
    static double sweep_mul(float lo, float hi, long n, int products)
    {
        double worst = 0.0;
        float a[HC_VLEN], b[HC_VLEN], out[HC_VLEN];
        unsigned int seed = 2463534242u;
        for (long i = 0; i < n; i += HC_VLEN) {
            for (int j = 0; j < HC_VLEN; j++) {
                if (!products) {
                    a[j] = lo + (hi - lo) * (float)((double)(i + j) / (double)(n - 1));
                    b[j] = 1.0f;
                    continue;
                }
                seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5;
                b[j] = ldexpf(1.0f + (float)(seed >> 9) / 8388608.0f, (int)(seed % 16u) - 12);
                seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5;
                a[j] = -ldexpf(1.0f + (float)(seed >> 9) / 8388608.0f, (int)(seed % 13u) - 6);
            }
            hc_vst(out, hc_vexp2_mul(hc_vld(a), hc_vld(b)));
            for (int j = 0; j < HC_VLEN; j++) {
    #if defined(HC_TARGET_AVX512)
                const double x = (double)a[j] * (double)b[j];
    #else
                const double x = (double)(a[j] * b[j]);
    #endif
                if (x < -126.0) continue;
                double u = ulps(out[j], exp2(x));
                if (u > worst) worst = u;
            }
        }
        return worst;
    }

    static float one2(float a, float b)
    {
        float in[HC_VLEN], in2[HC_VLEN], out[HC_VLEN];
        for (int j = 0; j < HC_VLEN; j++) { in[j] = a; in2[j] = b; }
        hc_vst(out, hc_vexp2_mul(hc_vld(in), hc_vld(in2)));
        return out[0];
    }

    static float one(vfun f, float x)
    {
        float in[HC_VLEN], out[HC_VLEN];
        for (int j = 0; j < HC_VLEN; j++) in[j] = x;
        hc_vst(out, f(hc_vld(in)));
        return out[0];
    }

    /* The header's lane contract: tails, hc_vhsum's documented halving tree, select, abs, round, scale, transpose.
       "" when it holds. */
    static float tree_sum(const float *v)
    {
        float t[HC_VLEN];
        for (int i = 0; i < HC_VLEN; i++) t[i] = v[i];
        for (int w = HC_VLEN / 2; w >= 1; w /= 2)
            for (int i = 0; i < w; i++) t[i] = t[i] + t[i + w];
        return t[0];
    }

    static const char *contract(void)
    {
        float src[HC_VLEN + 4], dst[HC_VLEN + 4], out[HC_VLEN];
        for (int i = 0; i < HC_VLEN + 4; i++) src[i] = (float)(i + 1);
        for (int n = -1; n <= HC_VLEN + 1; n++) {
            hc_vst(out, hc_vld_partial(src, n));
            for (int i = 0; i < HC_VLEN; i++)
                if (out[i] != (i < n ? src[i] : 0.0f)) return "hc_vld_partial lanes";
            for (int i = 0; i < HC_VLEN + 4; i++) dst[i] = -7.0f;
            hc_vst_partial(dst, hc_vld(src), n);
            for (int i = 0; i < HC_VLEN + 4; i++)
                if (dst[i] != (i < n && i < HC_VLEN ? src[i] : -7.0f)) return "hc_vst_partial lanes";
        }
        unsigned int seed = 12345u;
        for (int trial = 0; trial < 100000; trial++) {
            float v[HC_VLEN];
            for (int i = 0; i < HC_VLEN; i++) {
                seed = seed * 1664525u + 1013904223u;
                v[i] = ldexpf((float)(int)(seed >> 8) / 8388608.0f - 1.0f, (int)(seed % 41u) - 20);
            }
            float a = hc_vhsum(hc_vld(v)), b = tree_sum(v);
            if (memcmp(&a, &b, sizeof a) != 0) return "hc_vhsum order";
        }
        float in[HC_VLEN], other[HC_VLEN];
        const float probe[] = { NAN, -0.0f, -INFINITY, 2.5f, 3.5f, -2.5f, 0.49999997f, -1.5f, 1e30f, -3.0f };
        for (int i = 0; i < HC_VLEN; i++) { in[i] = probe[i % 10]; other[i] = 1.0f; }
        hc_vst(out, hc_vsel_gt(hc_vld(in), hc_vzero(), hc_vset1(1.0f), hc_vset1(2.0f)));
        for (int i = 0; i < HC_VLEN; i++)
            if (out[i] != (in[i] > 0.0f ? 1.0f : 2.0f)) return "hc_vsel_gt (a NaN comparison must pick y)";
        hc_vst(out, hc_vabs(hc_vld(in)));
        for (int i = 0; i < HC_VLEN; i++) {
            float e = fabsf(in[i]);
            if (isnan(in[i]) ? !isnan(out[i]) || signbit(out[i]) : memcmp(&out[i], &e, sizeof e) != 0) return "hc_vabs";
        }
        hc_vst(out, hc_vround_(hc_vld(in)));
        for (int i = 0; i < HC_VLEN; i++) {
            float e = rintf(in[i]);
            if (!isnan(in[i]) && memcmp(&out[i], &e, sizeof e) != 0) return "hc_vround_ (nearest, ties to even)";
        }
        hc_vst(out, hc_vscale2_(hc_vld(other), hc_vset1(-126.0f)));
        for (int i = 0; i < HC_VLEN; i++)
            if (out[i] != FLT_MIN) return "hc_vscale2_";
        hc_vf sq[HC_VLEN];
        for (int i = 0; i < HC_VLEN; i++) {
            for (int j = 0; j < HC_VLEN; j++) out[j] = (float)(i * HC_VLEN + j);
            sq[i] = hc_vld(out);
        }
        hc_vtranspose(sq);
        for (int i = 0; i < HC_VLEN; i++) {
            hc_vst(out, sq[i]);
            for (int j = 0; j < HC_VLEN; j++)
                if (out[j] != (float)(j * HC_VLEN + i)) return "hc_vtranspose";
        }
        return "";
    }

    /* FNV-1a over the result bits of the vector math on a sweep: equal digests mean bitwise equal results. */
    static unsigned long long digest(void)
    {
        unsigned long long h = 1469598103934665603ull;
        vfun fs[] = { hc_vexp, hc_vexp2_decay, hc_vexp2_scan, hc_vsoftplus, hc_vsigmoid, hc_vsilu, hc_verf, hc_vgelu };
        float in[HC_VLEN], out[HC_VLEN];
        for (int f = 0; f < (int)(sizeof fs / sizeof fs[0]); f++)
            for (long i = 0; i < 320000; i += HC_VLEN) {
                for (int j = 0; j < HC_VLEN; j++) in[j] = -100.0f + 200.0f * (float)(i + j) / 320000.0f;
                hc_vst(out, fs[f](hc_vld(in)));
                for (int j = 0; j < HC_VLEN; j++) {
                    unsigned int bits;
                    memcpy(&bits, &out[j], sizeof bits);
                    h = (h ^ bits) * 1099511628211ull;
                }
            }
        return h;
    }

    int main(void)
    {
        const long n = 2000000;
        const char *c = contract();
        printf("contract %s\n", *c ? c : "ok");
        printf("digest %016llx\n", digest());
        printf("exp %.3f\n", sweep(hc_vexp, d_exp, -87.3f, 88.72f, n));
        printf("exp_scan %.3f\n", sweep(hc_vexp, d_exp, -30.0f, 0.0f, n));
        printf("exp2_decay %.3f\n", sweep(hc_vexp2_decay, d_exp2, -126.0f, 126.0f, n));
        printf("exp2_decay_unit %.3f\n", sweep(hc_vexp2_decay, d_exp2, -1.0f, 1.0f, n));
        printf("exp2_scan %.3f\n", sweep(hc_vexp2_scan, d_exp2, -126.0f, 126.0f, n));
        printf("exp2_mul %.3f\n", sweep_mul(-126.0f, 126.0f, n, 0));
        printf("exp2_mul_prod %.3f\n", sweep_mul(0.0f, 0.0f, n, 1));
        printf("softplus %.3f\n", sweep(hc_vsoftplus, d_softplus, -87.0f, 60.0f, n));
        printf("softplus_mid %.3f\n", sweep(hc_vsoftplus, d_softplus, -6.0f, 6.0f, n));
        printf("sigmoid %.3f\n", sweep(hc_vsigmoid, d_sigmoid, -87.0f, 60.0f, n));
        printf("silu %.3f\n", sweep(hc_vsilu, d_silu, -15.0f, 60.0f, n));
        printf("erf %.3f\n", sweep(hc_verf, d_erf, -6.0f, 6.0f, n));
        printf("erf_small %.3f\n", sweep(hc_verf, d_erf, -1.25f, 1.25f, n));
        printf("gelu_pos %.3f\n", sweep(hc_vgelu, d_gelu, 0.0f, 60.0f, n));
        printf("gelu_neg %.3f\n", sweep(hc_vgelu, d_gelu, -13.1f, 0.0f, n));
        printf("gelu_mid %.3f\n", sweep(hc_vgelu, d_gelu, -3.0f, 3.0f, n));
        /* Tails: no denormal ever comes out; +0 below the range, +inf above it. */
        for (long i = 0; i < n; i++) {
            float x = -1000.0f + 1000.0f * (float)i / (float)n, y = one(hc_vexp, x);
            if (y != 0.0f && fabsf(y) < FLT_MIN) { printf("tails denormal at %g\n", x); return 0; }
            if (x < -87.3f && y != 0.0f) { printf("tails nonzero at %g\n", x); return 0; }
        }
        const float big[] = { -1e30f, -INFINITY, -200.0f, -87.31f };
        for (int i = 0; i < 4; i++)
            if (one(hc_vexp, big[i]) != 0.0f) { printf("tails exp(%g) != 0\n", big[i]); return 0; }
        if (!isinf(one(hc_vexp, 89.0f)) || !isinf(one(hc_vexp, 1e30f)) || !isinf(one(hc_vexp, INFINITY))) {
            printf("tails overflow\n"); return 0;
        }
        /* hc_vexp2_decay clamps instead: 2^-126 = FLT_MIN (normal) below, 2^126 above; integers are exact. */
        if (one(hc_vexp2_decay, -1e30f) != FLT_MIN || one(hc_vexp2_decay, -126.5f) != FLT_MIN
            || one(hc_vexp2_decay, 1e30f) != 0x1p126f || one(hc_vexp2_decay, 127.0f) != 0x1p126f
            || one(hc_vexp2_decay, 0.0f) != 1.0f || one(hc_vexp2_decay, -3.0f) != 0.125f) {
            printf("tails exp2_decay\n"); return 0;
        }
        /* hc_vexp2_scan: hc_vexp2_decay's bits on [-126, 126] (the sweep and the digest); outside, FLT_MIN or below
           (down to 0) and 2^126 or above (up to +inf), whichever the target gives. */
        for (long i = 0; i < n; i += 97) {
            float x = -126.0f + 252.0f * (float)i / (float)n, a = one(hc_vexp2_scan, x), b = one(hc_vexp2_decay, x);
            if (memcmp(&a, &b, sizeof a) != 0) { printf("tails exp2_scan differs from exp2_decay at %g\n", x); return 0; }
        }
        if (one(hc_vexp2_scan, -1e30f) > FLT_MIN || one(hc_vexp2_scan, -126.5f) > FLT_MIN || one(hc_vexp2_scan, -126.5f) < 0.0f
            || one(hc_vexp2_scan, 1e30f) < 0x1p126f || one(hc_vexp2_scan, 127.0f) < 0x1p126f) {
            printf("tails exp2_scan\n"); return 0;
        }
        /* hc_vexp2_mul: exact powers of two, FLT_MIN or below (down to 0) below -126 over its whole domain (|a b| <=
           2^60, inexact products included), 2^126 or above (up to +inf) from 127 on; on AVX-512 NaN for NaN (the
           other targets clamp as hc_vexp2_decay). */
        if (one2(0.0f, 1.0f) != 1.0f || one2(-3.0f, 1.0f) != 0.125f || one2(-0.5f, 6.0f) != 0.125f || one2(-1e-3f, 0.0f) != 1.0f
            || one2(-126.5f, 1.0f) > FLT_MIN || one2(-126.5f, 1.0f) < 0.0f || one2(-0x1p40f, 0x1p20f) > FLT_MIN
            || one2(-0x1p40f, 0x1p20f) < 0.0f || one2(-0x1.fffffep39f, 0x1.fffffep19f) > FLT_MIN
            || one2(-0x1.fffffep39f, 0x1.fffffep19f) < 0.0f || one2(-0x1.234567p30f, 0x1.abcdefp3f) > FLT_MIN
            || one2(-0x1.234567p30f, 0x1.abcdefp3f) < 0.0f || one2(127.0f, 1.0f) < 0x1p126f
    #if defined(HC_TARGET_AVX512)
            || !isnan(one2(NAN, 1.0f))
    #endif
            ) {
            printf("tails exp2_mul\n"); return 0;
        }
        for (long i = 0; i < n; i += 89) {
            const float x = -1000.0f + 2000.0f * (float)i / (float)n, y = one2(x, 0.75f);
            if (!(y >= 0.0f) || (x < -200.0f && y > FLT_MIN)) { printf("tails exp2_mul at %g\n", x); return 0; }
        }
        /* hc_vsoftplus4 gives hc_vsoftplus's bits. */
        for (long i = 0; i < n; i += 4 * HC_VLEN) {
            float in[4][HC_VLEN], out[HC_VLEN], ref[HC_VLEN];
            hc_vf v[4];
            for (int m = 0; m < 4; m++) {
                for (int j = 0; j < HC_VLEN; j++) in[m][j] = -100.0f + 200.0f * (float)(i + m * HC_VLEN + j) / (float)n;
                v[m] = hc_vld(in[m]);
            }
            hc_vsoftplus4(v);
            for (int m = 0; m < 4; m++) {
                hc_vst(out, v[m]);
                hc_vst(ref, hc_vsoftplus(hc_vld(in[m])));
                if (memcmp(out, ref, sizeof out) != 0) { printf("tails softplus4 differs from softplus near %g\n", in[m][0]); return 0; }
            }
        }
        if (one(hc_vsoftplus, 25.5f) != 25.5f || one(hc_vsoftplus, -200.0f) != 0.0f || one(hc_vsigmoid, -200.0f) != 0.0f
            || one(hc_vsilu, 200.0f) != 200.0f) {
            printf("tails softplus/sigmoid/silu\n"); return 0;
        }
        if (one(hc_vgelu, INFINITY) != INFINITY || one(hc_vgelu, 30.0f) != 30.0f || one(hc_vgelu, -INFINITY) != 0.0f
            || one(hc_vgelu, -14.0f) != 0.0f || one(hc_verf, INFINITY) != 1.0f || one(hc_verf, -INFINITY) != -1.0f
            || one(hc_verf, 0.0f) != 0.0f || one(hc_vgelu, 0.0f) != 0.0f) {
            printf("tails erf/gelu\n"); return 0;
        }
        for (long i = 0; i < n; i++) {
            float x = -1000.0f + 1000.0f * (float)i / (float)n, y = one(hc_vgelu, x);
            if (y != 0.0f && fabsf(y) < FLT_MIN) { printf("tails gelu denormal at %g\n", x); return 0; }
        }
        /* Every float around hc_vgelu's underflow threshold: -0 exactly below -0x1.a4ae0cp+3, normal from there on;
           and around its upper clamp (9): x itself. */
        for (float x = -13.3f; x <= -12.5f; x = nextafterf(x, 0.0f)) {
            float y = one(hc_vgelu, x);
            if (x < -0x1.a4ae0cp+3f ? (y != 0.0f || !signbit(y)) : !(y < 0.0f && fabsf(y) >= FLT_MIN)) {
                printf("tails gelu threshold at %a (%g)\n", x, y); return 0;
            }
        }
        for (float x = 8.5f; x <= 9.5f; x = nextafterf(x, 10.0f))
            if (one(hc_vgelu, x) != x) { printf("tails gelu clamp at %a\n", x); return 0; }
        printf("tails ok\n");
        return 0;
    }
    """#

    /// Maximum ulp asserted per sweep.
    static let bounds: [String: Double] = ["exp": 2, "exp_scan": 2, "exp2_decay": 1, "exp2_decay_unit": 1, "exp2_scan": 1, "exp2_mul": 1, "exp2_mul_prod": 1, "softplus": 3, "softplus_mid": 3, "sigmoid": 3,
                                           "silu": 4, "erf": 3, "erf_small": 3, "gelu_pos": 4, "gelu_neg": 7.5, "gelu_mid": 7.5]

    /// Builds and runs the program for `target`, asserts the bounds and the lane contract; returns the digest of
    /// the results' bits (nil when the build failed).
    @discardableResult
    func check(_ target: Target) throws -> String? {
        try GeneratedProgram.requireRunnable(target)
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let source = dir.appendingPathComponent("vmath.c"), program = dir.appendingPathComponent("vmath")
        try Self.program.write(to: source, atomically: true, encoding: .utf8)
        let runtime = GeneratedProgram.repoRoot.appendingPathComponent("Sources/Runtime/c").path
        let build = try Toolchain.run([target.compiler] + Toolchain.cflags(target) + (target.linkStatic ? ["-static"] : [])
                                      + ["-I", runtime, source.path, "-o", program.path, "-lm"])
        XCTAssertEqual(build.status, 0, build.output)
        guard build.status == 0 else { return nil }
        let r = try GeneratedProgram.run(program, [], target: target)
        XCTAssertEqual(r.status, 0, r.output)
        var seen = Set<String>()
        var digest: String?
        for line in r.output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "tails" || parts[0] == "contract" {
                XCTAssertEqual(parts[1], "ok", "\(target.name): \(parts[0])")
                seen.insert(parts[0])
            } else if parts[0] == "digest" {
                digest = parts[1]
            } else if let bound = Self.bounds[parts[0]], let err = Double(parts[1]) {
                print("\(target.name): \(parts[0]) max error \(err) ulp")
                XCTAssertLessThanOrEqual(err, bound, "\(target.name): \(parts[0])")
                seen.insert(parts[0])
            }
        }
        XCTAssertEqual(seen, Set(Self.bounds.keys).union(["tails", "contract"]), r.output)
        XCTAssertNotNil(digest, r.output)
        return digest
    }

    func testOnHost() throws { try check(.host) }

    func testOnX86AVX2() throws { try check(.x86_64AVX2) }

    func testOnX86AVX512() throws { try check(.x86_64AVX512) }

    /// Every vector math function is lane-wise with the same operations on both x86 targets: AVX-512 gives the
    /// very bits AVX2 gives (the digest leaves out hc_vexp2_mul, table-driven on AVX-512 only).
    func testAVX512MatchesAVX2Bitwise() throws {
        let avx2 = try check(.x86_64AVX2), avx512 = try check(.x86_64AVX512)
        XCTAssertNotNil(avx2)
        XCTAssertEqual(avx2, avx512, "hc_vexp/softplus/sigmoid/silu differ between x86-64-avx2 and x86-64-avx512")
    }

    func testOnAArch64UnderQemu() throws { try check(.aarch64) }

    func testWithPortableC() throws { try check(.generic) }
}
