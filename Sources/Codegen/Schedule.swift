/// The schedule record of a kernel (tiles, loop order, vector width, thread split) and the default scheduler
/// that picks it from the target description. Code generation reads only this record.
import HybridIR

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
}

public enum DefaultScheduler {
    /// The schedule of a kernel computing `op` on `target`.
    public static func schedule(_ op: Operation, operandShapes: [[Int]], target: Target) -> Schedule {
        let vw = target.vectorWidth
        // Pixel tiles sized so a tile of a few rows of floats stays in L1.
        let pixelTile = max(64, min(1024, target.l1dBytes / (4 * 16)))
        switch op.kind {
        case .conv2d:
            let w = operandShapes[1]
            let groups = (try? op.attributes.int("groups")) ?? 1
            if w[2] == 1 && w[3] == 1 && groups == 1 {
                // Pointwise: a GEMM over (co, pixels); register tile of 4 rows x 2 vectors.
                return Schedule(parallelOver: "co*p", tiles: ["co": 4, "p": pixelTile, "nr": 2 * vw],
                                loopOrder: ["co_tile", "p_tile", "ci", "co", "p"], vectorWidth: vw)
            }
            if groups == w[0] && w[1] == 1 {
                return Schedule(parallelOver: "channel", loopOrder: ["channel", "oy", "ky", "ox", "kx"], vectorWidth: vw)
            }
            // Dense or grouped: tiles of output rows of one output plane, so the tile stays in L1 while every
            // input channel and tap is added to it.
            return Schedule(parallelOver: "plane*oy", tiles: ["oy": 8], loopOrder: ["plane", "oy_tile", "ci", "ky", "kx", "oy", "ox"],
                            vectorWidth: vw)
        case .matmul where (try? op.attributes.bool("transpose_a", default: false)) == true:
            // Aᵀ·B writing rows of y (token-major outputs): tiles of rows accumulate in L1 while B streams once per tile.
            return Schedule(parallelOver: "m_tile", tiles: ["m": 16], loopOrder: ["m_tile", "k", "m", "n"], vectorWidth: vw)
        case .matmul:
            return Schedule(parallelOver: "batch*m", loopOrder: ["batch", "m", "k", "n"], vectorWidth: vw)
        case .layerNorm:
            return Schedule(parallelOver: "outer*inner", tiles: ["inner": 64], loopOrder: ["inner_tile", "channel", "inner"],
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
            // Tiles of channels, each running the four directions in the merge order: a step's pixel, dt_raw,
            // B and C are found once for the whole tile.
            return Schedule(parallelOver: "channel_tile", tiles: ["channels": max(1, vw), "chunk": chunk],
                            loopOrder: ["channel_tile", "direction", "chunk", "l", "channel", "state"], vectorWidth: 1)
        case .reduceMean:
            return Schedule(parallelOver: "output", loopOrder: ["output", "reduced"], vectorWidth: 1)
        case .fusedFeedForward:
            // Tiles of output rows of one image with a one-row halo; the GEMMs inside use the pointwise register tile.
            let rows = (try? op.attributes.int("row_tile")) ?? 8
            return Schedule(parallelOver: "image*row_tile", tiles: ["rows": rows, "co": 4, "nr": 2 * vw],
                            loopOrder: ["row_tile", "project_in", "channel", "row", "x", "project_out"], vectorWidth: vw)
        case .pixelShuffle, .pixelUnshuffle:
            return Schedule(parallelOver: "plane", loopOrder: ["plane", "y", "x"], vectorWidth: 1)
        case .fusedAttention:
            // Four kernels (FusedAttentionKernel.swift): GEMM tiles of (co, p) for qkv and out, fixed row tiles for
            // the Gram partials, heads for the softmax and M = W_out·blockdiag(attn).
            return Schedule(parallelOver: "co*p | row tiles | heads | co*p",
                            tiles: ["co": 4, "p": pixelTile, "rows": KernelEmitter.fusedAttentionRowsPerTile,
                                    "cols": KernelEmitter.fusedAttentionColumnsPerChunk],
                            loopOrder: ["qkv", "gram", "mix", "out"], vectorWidth: 1)
        default:
            // Elementwise and data movement: rows of the output, the last axis innermost.
            return Schedule(parallelOver: "rows", tiles: ["elements": 4096], loopOrder: ["row", "last"], vectorWidth: vw)
        }
    }
}
