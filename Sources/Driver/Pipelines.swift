/// The named pass pipelines: plain lists, the only place where pass order lives.
import HybridIR
import Passes

public enum Pipelines {
    /// From the frontend's block-level graph to primitive ops the interpreter runs (also `-O0`).
    public static let lower: [Pass.Type] = [InferShapes.self, ExpandBlocks.self, InferShapes.self]

    /// The optimisation passes after lowering, in order.
    public static let optimize: [Pass.Type] = [
        Canonicalize.self,
        FuseScanDirections.self,
        ChooseLayouts.self,
        FoldConstants.self,
        FoldLayerNorm.self,
        FuseGatedNorm.self,
        FuseAttention.self,
        FuseFeedForward.self,
        ChunkSelectiveScan.self,
        SplitSlicedProjections.self,
        FuseElementwise.self,
        FusePointwiseDepthwise.self,
        EliminateDeadCode.self,
    ]

    /// What code generation needs after the optimisations: schedules, then the memory plan (whose scratch
    /// depends on the schedules).
    public static let plan: [Pass.Type] = [ScheduleKernels.self, PlanMemory.self]

    /// `-O0`: only what code generation cannot do without: the lowering, default schedules and a memory plan
    /// without reuse.
    public static let O0: [Pass.Type] = lower + [ScheduleKernels.self, PlanMemoryWithoutReuse.self]

    /// What `hybridc compile` runs by default.
    public static var compile: [Pass.Type] { lower + optimize + plan }

    public static var named: [String: [Pass.Type]] {
        ["lower": lower, "O0": O0, "default": compile]
    }

    /// The compile pipeline, or the `-O0` one with `optimize` false, without the `disabled` passes (the lowering,
    /// the schedules and a memory plan cannot be disabled: code generation needs them).
    public static func select(optimize: Bool, disabled: [String]) -> [Pass.Type] {
        (optimize ? compile : O0).filter { pass in
            !disabled.contains(pass.name) || lower.contains { $0 == pass } || ObjectIdentifier(pass) == ObjectIdentifier(ScheduleKernels.self)
        }
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
