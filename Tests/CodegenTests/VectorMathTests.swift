/// The vector math of hc_simd.h (hc_vexp, hc_vsoftplus, hc_vsigmoid, hc_vsilu, hc_verf, hc_vgelu) against double-precision libm over
/// dense sweeps, on this host (AVX2), on aarch64 under qemu (NEON) and in portable C: the maximum error in ulp of
/// the correctly rounded result is asserted, and the tails (underflow to +0 with no denormal, overflow to +inf).
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

    static float one(vfun f, float x)
    {
        float in[HC_VLEN], out[HC_VLEN];
        for (int j = 0; j < HC_VLEN; j++) in[j] = x;
        hc_vst(out, f(hc_vld(in)));
        return out[0];
    }

    int main(void)
    {
        const long n = 2000000;
        printf("exp %.3f\n", sweep(hc_vexp, d_exp, -87.3f, 88.72f, n));
        printf("exp_scan %.3f\n", sweep(hc_vexp, d_exp, -30.0f, 0.0f, n));
        printf("exp_decay %.3f\n", sweep(hc_vexp_decay, d_exp, -87.3f, 88.0f, n));
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
        /* hc_vexp_decay clamps instead: e^-87.3 (a normal float, at most FLT_MIN-sized) below, e^88 above. */
        const float lo = one(hc_vexp_decay, -1e30f), hi = one(hc_vexp_decay, 1e30f);
        if (!(lo >= FLT_MIN && lo < 1.3e-38f) || one(hc_vexp_decay, -200.0f) != lo || !(hi > 1.6e38f && hi < 1.7e38f)
            || one(hc_vexp_decay, 89.0f) != hi) {
            printf("tails exp_decay\n"); return 0;
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
        printf("tails ok\n");
        return 0;
    }
    """#

    /// Maximum ulp asserted per sweep.
    static let bounds: [String: Double] = ["exp": 2, "exp_scan": 2, "exp_decay": 2, "softplus": 3, "softplus_mid": 3, "sigmoid": 3,
                                           "silu": 4, "erf": 3, "erf_small": 3, "gelu_pos": 4, "gelu_neg": 7.5, "gelu_mid": 7.5]

    func check(_ target: Target) throws {
        guard GeneratedProgram.canRun(target) else {
            throw XCTSkip("\(target.name): the compiler or qemu is not installed (run scripts/setup.sh)")
        }
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let source = dir.appendingPathComponent("vmath.c"), program = dir.appendingPathComponent("vmath")
        try Self.program.write(to: source, atomically: true, encoding: .utf8)
        let runtime = GeneratedProgram.repoRoot.appendingPathComponent("Sources/Runtime/c").path
        let build = try Toolchain.run([target.compiler] + Toolchain.cflags(target) + (target.linkStatic ? ["-static"] : [])
                                      + ["-I", runtime, source.path, "-o", program.path, "-lm"])
        XCTAssertEqual(build.status, 0, build.output)
        guard build.status == 0 else { return }
        let r = try GeneratedProgram.run(program, [], target: target)
        XCTAssertEqual(r.status, 0, r.output)
        var seen = Set<String>()
        for line in r.output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "tails" {
                XCTAssertEqual(parts[1], "ok", "\(target.name)")
                seen.insert("tails")
            } else if let bound = Self.bounds[parts[0]], let err = Double(parts[1]) {
                print("\(target.name): \(parts[0]) max error \(err) ulp")
                XCTAssertLessThanOrEqual(err, bound, "\(target.name): \(parts[0])")
                seen.insert(parts[0])
            }
        }
        XCTAssertEqual(seen, Set(Self.bounds.keys).union(["tails"]), r.output)
    }

    func testOnHost() throws { try check(.host) }

    func testOnAArch64UnderQemu() throws { try check(.aarch64) }

    func testWithPortableC() throws { try check(.generic) }
}
