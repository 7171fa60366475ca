/// The schedule record of a kernel (tiles, loop order, vector width, thread split) and the default scheduler
/// that picks it from the target's vector width and L1 size. `schedule-kernels` stores the record on each op as
/// its `schedule` attribute (the text of `description`, which `init(encoded:)` reads back); code generation reads
/// only this record, and runs the same scheduler for a graph that arrives without the attribute.

public struct Schedule: Equatable, CustomStringConvertible {
    /// The loop whose fixed-size tiles are divided among threads; results never depend on the thread count,
    /// because every output element is computed inside one tile in one fixed order.
    public var parallelOver: String
    /// Tile sizes by loop name (e.g. "co": 4, "p": 256).
    public var tiles: [String: Int]
    /// Loops from outermost to innermost.
    public var loopOrder: [String]
    /// Floats per vector in the innermost loop (1: scalar).
    public var vectorWidth: Int

    public init(parallelOver: String, tiles: [String: Int] = [:], loopOrder: [String], vectorWidth: Int) {
        self.parallelOver = parallelOver
        self.tiles = tiles
        self.loopOrder = loopOrder
        self.vectorWidth = vectorWidth
    }

    public func tile(_ name: String) -> Int { tiles[name] ?? 1 }

    public var description: String {
        let t = tiles.keys.sorted().map { "\($0)=\(tiles[$0]!)" }.joined(separator: ",")
        return "parallel over \(parallelOver) tiles; tiles {\(t)}; loops \(loopOrder.joined(separator: ">")); vector \(vectorWidth)"
    }

    /// Reads `description` back (the `schedule` attribute); nil when the text is not one.
    public init?(encoded text: String) {
        let parts = text.components(separatedBy: "; ")
        guard parts.count == 4, parts[0].hasPrefix("parallel over "), parts[0].hasSuffix(" tiles"),
              parts[1].hasPrefix("tiles {"), parts[1].hasSuffix("}"), parts[2].hasPrefix("loops "),
              parts[3].hasPrefix("vector "), let vector = Int(parts[3].dropFirst("vector ".count)) else { return nil }
        parallelOver = String(parts[0].dropFirst("parallel over ".count).dropLast(" tiles".count))
        tiles = [:]
        for item in parts[1].dropFirst("tiles {".count).dropLast().split(separator: ",") {
            let kv = item.split(separator: "=")
            guard kv.count == 2, let v = Int(kv[1]) else { return nil }
            tiles[String(kv[0])] = v
        }
        loopOrder = parts[2].dropFirst("loops ".count).split(separator: ">").map(String.init)
        vectorWidth = vector
    }

    /// The op's `schedule` attribute, if `schedule-kernels` set one.
    public static func annotated(_ op: Operation) -> Schedule? {
        guard case .string(let text)? = op.attributes["schedule"] else { return nil }
        return Schedule(encoded: text)
    }
}

/// Fixed tile sizes of the `fused_attention` kernels, shared by the scheduler, the scratch sizing and the kernels.
public enum FusedAttentionTiles {
    /// Rows of pixels per Gram partial (a fixed tile, so that the reduction order does not depend on threads).
    public static let rowsPerTile = 4
    /// Pixels per chunk of q and k inside an image row: the depthwise q/k of one head for a chunk are packed in
    /// the micro-kernel's operand layouts (q as [D/MR][chunk][MR], k as [D/NR][chunk][NR]) and the chunk is one
    /// K block of the Gram micro-kernel (2 × 48 × 64 floats of packed q/k stay in L1).
    public static let columnsPerChunk = 64
    /// Zero floats on each side of an image row of the qkv ring (at least one vector of any target), so that the
    /// vectorised depthwise 3x3 reads its left and right neighbours without tests.
    public static let ringPad = 16

    /// Floats between the channels of one ring row: the row rounded up to the pad, plus a pad each side.
    public static func ringStride(w: Int) -> Int { (w + ringPad - 1) / ringPad * ringPad + 2 * ringPad }

    /// Per-thread floats of the gram phase for C channels of rows of W pixels (FusedAttentionKernel.swift): the
    /// ring of three padded rows of the qkv output (3 × 3C × ringStride), a row's norm statistics (2W, with a
    /// folded norm), q and k of one head's chunk packed (DM·chunk + DN·chunk), the head's float Gram of the row
    /// (DM × DN), and the qkv GEMM's packing scratch; DM, DN are D rounded up to MR and NR.
    public static func gramThreadFloats(c: Int, d: Int, w: Int, norm: Bool, gemm: GemmTiles) -> Int {
        let dm = (d + gemm.mr - 1) / gemm.mr * gemm.mr, dn = (d + gemm.nr - 1) / gemm.nr * gemm.nr
        return 9 * c * ringStride(w: w) + (norm ? 2 * w : 0) + (dm + dn) * columnsPerChunk + dm * dn
            + gemm.packFloats(k: c, pixels: w)
    }
}

/// The register tile and cache blocks of the GEMM micro-kernel (Codegen/MicroKernel.swift) on one target, the
/// same for every GEMM-shaped kernel of a compile: 1x1 and dense convolutions (implicit GEMM), the projections of
/// `fused_feed_forward` and of `fused_attention` (qkv rows, Gram partials, out).
///
/// The rule, from the target's vector registers R and floats per vector V:
///  - the tile is MR output channels × NR = nv·V pixels, keeping MR·nv accumulators, nv pixel loads and one
///    weight broadcast live: the largest MR·nv with MR·nv + nv + 1 ≤ R (nv ≤ 4, MR ≤ 8), ties to the larger MR
///    (fewer weight blocks). AVX2 (16 registers): 6×16 (12 + 2 + 1). AVX-512 (32 zmm, 16 lanes): 8×48 (24 + 3 + 1).
///    NEON (32): 8×12 (24 + 3 + 1). Scalar: 6×2;
///  - KC (the K block): the MR×KC weight block and one KC×NR panel slice fill at most half of L1, a multiple of 8;
///  - NC (pixels per packed panel): the KC×NC panel fills at most half of L2, a multiple of NR, at most 256
///    (smaller blocks give the threads more items).
public struct GemmTiles: Equatable {
    public var mr: Int
    public var nv: Int
    public var vectorWidth: Int
    public var kc: Int
    public var nc: Int
    public var nr: Int { nv * vectorWidth }

    public static func choose(vectorWidth: Int, vectorRegisters: Int, l1dBytes: Int, l2Bytes: Int) -> GemmTiles {
        let vw = max(1, vectorWidth)
        var best = (mr: 1, nv: 1)
        for nv in 1...4 {
            let mr = min(8, (vectorRegisters - nv - 1) / nv)
            guard mr >= 1 else { continue }
            if mr * nv > best.mr * best.nv || (mr * nv == best.mr * best.nv && mr > best.mr) { best = (mr, nv) }
        }
        let nr = best.nv * vw
        let kc = max(8, (l1dBytes / 2) / (4 * (best.mr + nr)) / 8 * 8)
        let nc = max(nr, min(256, (l2Bytes / 2) / (4 * kc)) / nr * nr)
        return GemmTiles(mr: best.mr, nv: best.nv, vectorWidth: vw, kc: kc, nc: nc)
    }

    /// The tile as schedule entries.
    public var tiles: [String: Int] { ["mr": mr, "nr": nr, "kc": kc, "nc": nc] }

    /// The tile a schedule records, else the target rule at its vector width (16 registers, 32 KiB L1, 1 MiB L2).
    public static func of(_ schedule: Schedule) -> GemmTiles {
        GemmTiles(schedule) ?? choose(vectorWidth: schedule.vectorWidth, vectorRegisters: 16, l1dBytes: 32 * 1024, l2Bytes: 1024 * 1024)
    }

    /// Reads the tile back from a schedule that records one (nil without "mr").
    public init?(_ schedule: Schedule) {
        guard let mr = schedule.tiles["mr"], let nr = schedule.tiles["nr"], let kc = schedule.tiles["kc"],
              let nc = schedule.tiles["nc"] else { return nil }
        let vw = max(1, schedule.vectorWidth)
        self.init(mr: mr, nv: max(1, nr / vw), vectorWidth: vw, kc: kc, nc: nc)
    }

    public init(mr: Int, nv: Int, vectorWidth: Int, kc: Int, nc: Int) {
        self.mr = mr
        self.nv = nv
        self.vectorWidth = vectorWidth
        self.kc = kc
        self.nc = nc
    }

    /// Per-thread floats of packing scratch for a GEMM of depth `k` over `pixels` pixels: an MR×KC weight block
    /// (for weights that are not constants, packed at run time) and the KC×NC input panel, each no larger than
    /// the GEMM needs.
    public func packFloats(k: Int, pixels: Int) -> Int {
        let kb = (k + kc - 1) / max(1, kc), depth = kb > 0 ? (k + kb - 1) / kb : 0
        return depth * (mr + min(nc, (pixels + nr - 1) / nr * nr))
    }
}

public enum DefaultScheduler {
    /// The schedule of a kernel computing `op` on a target with `vectorWidth` floats per vector register and an
    /// L1 data cache of `l1dBytes`.
    public static func schedule(_ op: Operation, operandShapes: [[Int]], vectorWidth: Int, l1dBytes: Int,
                                vectorRegisters: Int = 16, l2Bytes: Int = 1024 * 1024) -> Schedule {
        let vw = vectorWidth
        let gemm = GemmTiles.choose(vectorWidth: vw, vectorRegisters: vectorRegisters, l1dBytes: l1dBytes, l2Bytes: l2Bytes)
        switch op.kind {
        case .conv2d:
            let w = operandShapes[1]
            let groups = (try? op.attributes.int("groups")) ?? 1
            if groups == 1 {
                // Pointwise or dense KxK: a GEMM (implicit for KxK) over (co, pixels) on the micro-kernel; items of
                // (image, NC-pixel panel, group of MR-channel blocks), the panel packed once per K block.
                let implicitK = w[2] != 1 || w[3] != 1 || ((try? op.attributes.int("padding")) ?? 0) != 0
                    || ((try? op.attributes.int("stride")) ?? 1) != 1
                    || (op.attributes["norm_affine"] != nil && op.attributes["norm_gate"] == nil)
                return Schedule(parallelOver: "image*p_panel*co_group", tiles: gemm.tiles,
                                loopOrder: ["p_panel", "k_block", implicitK ? "pack_im2col" : "pack", "co_block", "nr_slice", "k"],
                                vectorWidth: vw)
            }
            if groups == w[0] && w[1] == 1 {
                // Depthwise: tiles of 8 output rows of one plane, vectorised along the rows.
                return Schedule(parallelOver: "plane*oy_tile", tiles: ["oy": 8], loopOrder: ["plane", "oy_tile", "oy", "ox", "ky", "kx"],
                                vectorWidth: vw)
            }
            // Dense or grouped: tiles of output rows of one output plane, so the tile stays in L1 while every
            // input channel and tap is added to it.
            return Schedule(parallelOver: "plane*oy", tiles: ["oy": 8], loopOrder: ["plane", "oy_tile", "ci", "ky", "kx", "oy", "ox"],
                            vectorWidth: vw)
        case .matmul where (try? op.attributes.bool("transpose_a", default: false)) == true:
            // Aᵀ·B writing rows of y (token-major outputs) on the micro-kernel: items of (block of tokens, group of
            // NR-column slices); per K block the tokens' columns of A are packed, B is prepacked (ProjectionGemmTiles).
            return Schedule(parallelOver: "m_block*n_group", tiles: gemm.tiles,
                            loopOrder: ["m_block", "k_block", "pack", "n_slice", "m_tile", "k"], vectorWidth: vw)
        case .matmul:
            return Schedule(parallelOver: "batch*m", loopOrder: ["batch", "m", "k", "n"], vectorWidth: vw)
        case .layerNorm:
            // Tiles of inner positions as long as possible (up to 1024: contiguous runs per channel that the
            // prefetchers follow) while one tile of every channel fits in half of L2 for the second and third passes,
            // and short enough to give each of 4 threads a tile; a power of two, at least 64.
            let x = operandShapes.first ?? []
            let axis = (try? op.attributes.int("axis")) ?? 1
            let channels = x.indices.contains(axis) ? max(1, x[axis]) : 1
            let inner = x.indices.contains(axis) ? x[(axis + 1)...].reduce(1, *) : 1
            let outer = x.indices.contains(axis) ? x[..<axis].reduce(1, *) : 1
            var tile = 1024
            while tile > 64 && (channels * tile * 4 > l2Bytes / 2 || outer * ((inner + tile - 1) / tile) < 4) { tile /= 2 }
            return Schedule(parallelOver: "outer*inner", tiles: ["inner": tile], loopOrder: ["inner_tile", "channel", "inner"],
                            vectorWidth: vw)
        case .softmax, .l2Normalize:
            return Schedule(parallelOver: "outer*inner", loopOrder: ["row", "axis"], vectorWidth: 1)
        case .selectiveScan:
            return Schedule(parallelOver: "batch*channel", loopOrder: ["channel", "l", "state"], vectorWidth: 1)
        case .chunkedSelectiveScan:
            let chunk = (try? op.attributes.int("chunk")) ?? 64
            if (try? op.attributes.string("form")) == "carry" {
                // Three phases, each its own parallel loop: local chunk scans, the carries, the corrections.
                return Schedule(parallelOver: "batch*channel*chunk", tiles: ["chunk": chunk],
                                loopOrder: ["phase", "channel", "chunk", "l", "state"], vectorWidth: 1)
            }
            // Tiles of channels (one vector's worth) walk the sequence chunk by chunk, so a chunk of B and C
            // stays in L1 while every channel of the tile reads it.
            return Schedule(parallelOver: "batch*channel_tile", tiles: ["channels": max(1, vw), "chunk": chunk],
                            loopOrder: ["channel_tile", "chunk", "channel", "l", "state"], vectorWidth: 1)
        case .ss2dScan:
            let chunk = (try? op.attributes.int("chunk")) ?? 64
            if (try? op.attributes.string("form")) == "carry" {
                return Schedule(parallelOver: "direction*channel*chunk", tiles: ["chunk": chunk],
                                loopOrder: ["phase", "direction", "channel", "chunk", "l", "state"], vectorWidth: 1)
            }
            // Tiles of one vector of channels (lanes = channels), each running the four directions in the merge
            // order: a step's pixel, dt_raw, B and C are found once for the whole tile and broadcast to the lanes.
            return Schedule(parallelOver: "channel_tile", tiles: ["channels": max(1, vw), "chunk": chunk],
                            loopOrder: ["channel_tile", "direction", "chunk", "l", "channel", "state"], vectorWidth: 1)
        case .reduceMean:
            return Schedule(parallelOver: "output", loopOrder: ["output", "reduced"], vectorWidth: 1)
        case .fusedFeedForward, .fusedPointwiseDepthwise:
            // Tiles of output rows of one image with a one-row halo; the GEMMs inside use the pointwise register tile.
            // Inside a tile, blocks of hidden channels (FeedForwardTiles): project_in, depthwise+gate, and
            // project_out accumulating, the block's rows held in L2.
            // Row tiles: at most row_tile rows, fewer where the tile's working set would not fit L2.
            let rowTile = (try? op.attributes.int("row_tile")) ?? 8
            let x = operandShapes.first ?? []
            let hb = FeedForwardTiles.hiddenBlock(hidden: (try? op.attributes.int("hidden")) ?? 1, rows: rowTile,
                                                  height: x.count == 4 ? x[2] : 1, width: x.count == 4 ? x[3] : 1,
                                                  mr: gemm.mr, l2Bytes: l2Bytes)
            let c = x.count == 4 ? x[1] : 1
            let out = (try? ShapeRules.fusedFeedForwardRoles(op.attributes))?.firstIndex(of: "project_out")
            let co = out.flatMap { operandShapes.indices.contains($0) ? operandShapes[$0].first : nil } ?? c
            let rows = FeedForwardTiles.rows(rowTile: rowTile, channels: c, outChannels: co, width: x.count == 4 ? x[3] : 1,
                                             hiddenBlock: hb, l2Bytes: l2Bytes, gated: op.kind == .fusedFeedForward)
            // fused_pointwise_depthwise: the same walk without project_out (the depthwise rows go to the output).
            return Schedule(parallelOver: "image*row_tile", tiles: gemm.tiles.merging(["rows": rows, "hidden_block": hb]) { a, _ in a },
                            loopOrder: ["row_tile", "pack", "hidden_block", "project_in", "channel", "row", "x"]
                                + (op.kind == .fusedFeedForward ? ["project_out"] : []),
                            vectorWidth: vw)
        case .pixelShuffle, .pixelUnshuffle:
            return Schedule(parallelOver: "plane", loopOrder: ["plane", "y", "x"], vectorWidth: 1)
        case .fusedAttention:
            // Three kernels (FusedAttentionKernel.swift): fixed row tiles for the qkv rows (micro-kernel) and the
            // Gram partials (micro-kernel over packed q/k chunks), heads for the softmax and M = W_out·blockdiag(attn)
            // (written packed), (p_panel, co_group) items of the micro-kernel for out.
            return Schedule(parallelOver: "row tiles | heads | p_panel*co_group",
                            tiles: gemm.tiles.merging(["rows": FusedAttentionTiles.rowsPerTile,
                                                       "cols": FusedAttentionTiles.columnsPerChunk]) { a, _ in a },
                            loopOrder: ["gram", "mix", "out"], vectorWidth: vw)
        default:
            // Elementwise and data movement: rows of the output, the last axis innermost.
            return Schedule(parallelOver: "rows", tiles: ["elements": 4096], loopOrder: ["row", "last"], vectorWidth: vw)
        }
    }
}
