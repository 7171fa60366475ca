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
    /// Columns per chunk of the depthwise q/k inside a row tile.
    public static let columnsPerChunk = 16
}

public enum DefaultScheduler {
    /// The schedule of a kernel computing `op` on a target with `vectorWidth` floats per vector register and an
    /// L1 data cache of `l1dBytes`.
    public static func schedule(_ op: Operation, operandShapes: [[Int]], vectorWidth: Int, l1dBytes: Int) -> Schedule {
        let vw = vectorWidth
        // Pixel tiles sized so a tile of a few rows of floats stays in L1.
        let pixelTile = max(64, min(1024, l1dBytes / (4 * 16)))
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
                // Depthwise: tiles of 8 output rows of one plane, vectorised along the rows.
                return Schedule(parallelOver: "plane*oy_tile", tiles: ["oy": 8], loopOrder: ["plane", "oy_tile", "oy", "ox", "ky", "kx"],
                                vectorWidth: vw)
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
            // Tiles of one vector of channels (lanes = channels), each running the four directions in the merge
            // order: a step's pixel, dt_raw, B and C are found once for the whole tile and broadcast to the lanes.
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
            // Three kernels (FusedAttentionKernel.swift): fixed row tiles for the qkv rows and the Gram partials,
            // heads for the softmax and M = W_out·blockdiag(attn), GEMM tiles of (co, p) for out.
            return Schedule(parallelOver: "row tiles | heads | co*p",
                            tiles: ["co": 4, "p": pixelTile, "rows": FusedAttentionTiles.rowsPerTile,
                                    "cols": FusedAttentionTiles.columnsPerChunk],
                            loopOrder: ["gram", "mix", "out"], vectorWidth: 1)
        default:
            // Elementwise and data movement: rows of the output, the last axis innermost.
            return Schedule(parallelOver: "rows", tiles: ["elements": 4096], loopOrder: ["row", "last"], vectorWidth: vw)
        }
    }
}
