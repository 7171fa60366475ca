/// Every pass hybridc has, by command-line name. A test fails if a pass file exists that is not listed here.
public enum PassRegistry {
    public static let all: [Pass.Type] = [
        InferShapes.self,
        ExpandBlocks.self,
        Canonicalize.self,
        FoldConstants.self,
        EliminateDeadCode.self,
        FoldLayerNorm.self,
        FuseGatedNorm.self,
        SplitSlicedProjections.self,
        FuseElementwise.self,
        FuseAttention.self,
        ChunkSelectiveScan.self,
        FuseScanDirections.self,
        ChooseLayouts.self,
        FuseFeedForward.self,
        FusePointwiseDepthwise.self,
        ScheduleKernels.self,
        PlanMemory.self,
        PlanMemoryWithoutReuse.self,
    ]

    public static func named(_ name: String) -> Pass.Type? { all.first { $0.name == name } }
}
