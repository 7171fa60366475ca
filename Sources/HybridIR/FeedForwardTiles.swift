/// The tiling of `fused_feed_forward` (GDFN), shared by the scheduler (which picks the hidden block and the rows), ScratchNeeds
/// (which sizes the per-thread scratch) and the C kernel (FusedFeedForwardKernel.swift, which lays the scratch out
/// with the same formulas in C).
///
/// One item is a tile of R output rows of one image. Its input pixels, rows r0-1 .. r0+R, each row between two zero
/// pixels (TP = (R+2)·(W+2) pixels; the projection of a zero pixel, set to 0, is the depthwise conv's padding), are
/// packed once, normalised, as the micro-kernel's panel [TP/NR][C][NR] — only rows r0+1 .. r0+R when the thread's
/// previous item was the tile above, whose last two projection rows it carried over; then the hidden channels are walked in
/// blocks of HB (a multiple of MR): project_in of the block's channels of both halves (2·HB rows of TP pixels),
/// the depthwise 3x3 and gate of those rows (HB rows of R·W gates), and project_out accumulating the block's HB
/// terms into the tile's output sums. The block's projection and gates, about 3·HB·TP floats, stay in L2 next to
/// the input panel (C·TP) and the output sums (CO·R·W), which every block reads again; each GEMM step itself
/// works from L1 (a kc×NR slice of the panel or an HB×NR slice of the gates, and an MR-row weight block).
public enum FeedForwardTiles {
    /// The hidden block: 4·MR channels (at most the hidden channels rounded up to MR). project_out's accumulators
    /// are loaded and stored once per block, so the block depth amortises them over 4·MR FMAs each; deeper blocks
    /// crowd the panel and the output sums out of L2. Measured on restormer at 3x256x256 (AVX-512, MR 8): 16 at
    /// W 256 was ~1.3x slower than 32 (the accumulators' traffic), 64 and 136 at W 64 and 32 ~1.2x slower than 32
    /// and 64 (L2). `rows`, `height`, `width` and `l2Bytes` are kept for a rule that would use them.
    public static func hiddenBlock(hidden: Int, rows: Int, height: Int, width: Int, mr: Int, l2Bytes: Int) -> Int {
        let m = max(1, mr)
        return max(m, min((max(1, hidden) + m - 1) / m * m, 4 * m))
    }

    /// The hidden block a schedule records, else the rule above (the emitter and ScratchNeeds agree).
    public static func hiddenBlock(_ schedule: Schedule, hidden: Int, input x: [Int]) -> Int {
        let mr = GemmTiles.of(schedule).mr
        let hb = schedule.tiles["hidden_block"]
            ?? hiddenBlock(hidden: hidden, rows: schedule.tile("rows"), height: x.count == 4 ? x[2] : 1,
                           width: x.count == 4 ? x[3] : 1, mr: mr, l2Bytes: 1 << 20)
        return max(mr, (hb + mr - 1) / mr * mr)
    }

    /// The row tile: the tallest R ≤ `rowTile` (the op's row_tile) whose working set fits in `fraction` of L2 — the
    /// panel of R+2 rows (C·(R+2)·W), one block's projection (2·HB·(R+2)·W) and gates (HB·R·W), the output sums
    /// (CO·R·W) and the block's carried rows (4·HB·W) — at least 1. A thread walks consecutive tiles of one image
    /// and carries the last two projection rows of each to the next, so a short tile costs no extra project_in;
    /// what a tall tile buys (fewer passes over the weights) is lost once its working set falls out of L2, where
    /// every hidden block re-reads the panel and the sums from the next level.
    ///
    /// Not `gated` (`fused_pointwise_depthwise`): one projection of HB rows, no gates and no sums; the tile's HB
    /// output rows (written once) and 2·HB carried rows instead.
    public static func rows(rowTile: Int, channels c: Int, outChannels co: Int, width w: Int, hiddenBlock hb: Int,
                            l2Bytes: Int, gated: Bool = true) -> Int {
        func bytes(_ r: Int) -> Int {
            gated ? 4 * (w + 2) * (c * (r + 2) + 2 * hb * (r + 2) + hb * r + co * r + 4 * hb)
                : 4 * (w + 2) * (c * (r + 2) + hb * (r + 2) + hb * r + 2 * hb)
        }
        var r = max(1, rowTile)
        while r > 1 && bytes(r) > l2Bytes * 3 / 4 { r -= 1 }
        return r
    }

    /// Per-thread scratch floats, in the kernel's order: the input panel ⌈TP/NR⌉·NR·C, the projection 2·HB·CS
    /// (row stride CS = TP + NR + 16: the micro-kernel writes whole NR slices past the tile's pixels, and the 16
    /// floats keep the rows of a block off the same L1 sets), the gates HB·GS (GS = ⌈R·W/NR⌉·NR + 16), the output
    /// rows' sums CO·GS (every block adds into them: in the image they would be H·W floats apart, all in one L1 and
    /// one L2 set, and thrash both; here GS apart, copied out once per tile), the carried projection rows
    /// 4·⌈hidden/MR⌉·MR·W (two rows of every channel of both halves, handed from one tile to the next), the weight
    /// blocks packed at run time when the weights are not constants, 2·HB·C + ⌈CO/MR⌉·MR·HB, and with a folded
    /// norm the tile's per-pixel mean and 1/σ, 2·TP. Not `gated` (`fused_pointwise_depthwise`, one projection
    /// written straight to the output rows): the projection HB·CS, no gates, sums or project_out weights, the carry
    /// 2·⌈hidden/MR⌉·MR·(W+2) and the weight block HB·C.
    public static func scratchFloats(channels c: Int, outChannels co: Int, height h: Int, width w: Int, rows: Int,
                                     hidden: Int, hiddenBlock hb: Int, mr: Int, nr: Int, norm: Bool, gated: Bool = true) -> Int {
        let r = min(rows, h), tp = (r + 2) * (w + 2), halves = gated ? 2 : 1
        let cs = tp + nr + 16, gs = (r * w + nr - 1) / nr * nr + 16
        let panel = (tp + nr - 1) / nr * nr * c
        let carry = 2 * halves * ((max(1, hidden) + mr - 1) / mr * mr) * (w + 2)
        let weights = halves * hb * c + (gated ? (co + mr - 1) / mr * mr * hb : 0)
        return panel + halves * hb * cs + (gated ? hb * gs + co * gs : 0) + carry + weights + (norm ? 2 * tp : 0)
    }
}
