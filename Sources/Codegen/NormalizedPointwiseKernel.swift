/// The per-pixel statistics of a folded channel LayerNorm (`fold-layer-norm`, HybridIR's FoldedNorm), in two
/// passes (the mean, then the variance around it). The projections that carry the norm (`conv2d` with a `norm`,
/// `fused_feed_forward`'s project_in, `fused_attention`'s qkv rows) run the GEMM micro-kernel (MicroKernel.swift),
/// whose packing prologue normalises what it packs (with_bias) or whose epilogue scales its sums by 1/σ (bias_free).
import HybridIR

extension KernelEmitter {
    /// `<prefix>_stats`, a static C function printed before the kernel that calls it.
    static func normalizedPointwiseHelpers(_ prefix: String, _ norm: FoldedNorm) -> String {
        return """
        /* \(prefix)_stats: for np pixels of K channels (channel stride xs), mean[p] and rstd[p] = 1/sqrt(var + eps),
           the variance taken around the mean in a second pass, so that a large common offset does not cancel. */
        HC_NOINLINE static void \(prefix)_stats(float *restrict mean, float *restrict rstd, const float *restrict x,
                                                long xs, long np, long K, float eps) {
            for (long p = 0; p < np; p++) { mean[p] = 0.0f; rstd[p] = 0.0f; }
            for (long q = 0; q < K; q++) {
                const float *xr = x + q * xs;
                for (long p = 0; p < np; p++) mean[p] += xr[p];
            }
            const float inv = 1.0f / (float)K;
            for (long p = 0; p < np; p++) mean[p] *= inv;
            for (long q = 0; q < K; q++) {
                const float *xr = x + q * xs;
                for (long p = 0; p < np; p++) { const float d = xr[p] - mean[p]; rstd[p] += d * d; }
            }
            for (long p = 0; p < np; p++) rstd[p] = 1.0f / sqrtf(rstd[p] * inv + eps);
        }


        """
    }
}
