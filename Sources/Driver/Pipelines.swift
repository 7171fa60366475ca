/// The named pass pipelines: plain lists, the only place where pass order lives.
import HybridIR
import Passes

public enum Pipelines {
    /// From the frontend's block-level graph to primitive ops the interpreter runs (also `-O0`).
    public static let lower: [Pass.Type] = [InferShapes.self, ExpandBlocks.self, InferShapes.self]

    /// The optimisation passes after lowering, in order.
    public static let optimize: [Pass.Type] = [
        Canonicalize.self,
        FoldConstants.self,
        FoldLayerNorm.self,
        FuseAttention.self,
        FuseFeedForward.self,
        ChunkSelectiveScan.self,
        FuseElementwise.self,
        EliminateDeadCode.self,
    ]

    /// What `hybridc compile` runs by default.
    public static var compile: [Pass.Type] { lower + optimize }

    public static var named: [String: [Pass.Type]] {
        ["lower": lower, "O0": lower, "default": compile]
    }

    /// The compile pipeline, or only the lowering with `optimize` false (`-O0`), without the `disabled` passes.
    public static func select(optimize: Bool, disabled: [String]) -> [Pass.Type] {
        (optimize ? compile : lower).filter { pass in !disabled.contains(pass.name) || lower.contains { $0 == pass } }
    }

    /// Passes from a comma-separated list of names; unknown names list the known ones.
    public static func parse(list: String) throws -> [Pass.Type] {
        try list.split(separator: ",").map { raw in
            let name = raw.trimmingCharacters(in: .whitespaces)
            guard let pass = PassRegistry.named(name) else {
                throw HybridError("unknown pass '\(name)'; known passes: \(PassRegistry.all.map { $0.name }.joined(separator: ", "))")
            }
            return pass
        }
    }
}

import Foundation
