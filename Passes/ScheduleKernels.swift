/// Chooses each kernel's schedule (tile sizes, loop order, vector width, thread split) from the target and
/// records it on the op, where `--print-ir-after` shows it and code generation reads it.
///
/// Name: `schedule-kernels`. Requires: a typed graph of primitive or fused ops. Produces: the same graph where
/// every op that runs as a kernel (not a weight, not computed from weights alone, not a reshape view) has a
/// `schedule` attribute: the text of its `Schedule` record.
///
/// Algorithm:
///  1. Find the constants (weights and weight-only ops, `MemoryPlanner.constants`): they become compile-time data.
///  2. For every other op except reshapes, run the default scheduler (`DefaultScheduler`, HybridIR/Schedule.swift)
///     on the op and its operand shapes with the context's vector width and L1 data cache size: pointwise convs
///     get a (4 output channels × 2 vectors) register tile over pixel tiles sized for L1; dense convs tiles of 8
///     output rows; depthwise convs whole channels; scans tiles of channels walking chunks; the fused feed-forward
///     its row tile; elementwise ops chunks of 4096 elements; every kernel splits fixed tiles among threads.
///  3. Store the record's text as the op's `schedule` attribute (replacing an older one) and count the kernels.
import HybridIR

public struct ScheduleKernels: Pass {
    public static let name = "schedule-kernels"
    public static let summary = "choose tiles, loop order, vector width and thread split of every kernel from the target"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let constants = MemoryPlanner.constants(graph)
        let types = graph.valueTypes()
        var scheduled = 0
        for i in graph.ops.indices {
            let op = graph.ops[i]
            guard op.kind != .weight, op.kind != .reshape, !constants.contains(op.result) else { continue }
            let schedule = DefaultScheduler.schedule(op, operandShapes: op.operands.map { types[$0]?.shape ?? [] },
                                                     vectorWidth: context.vectorWidth, l1dBytes: context.l1dBytes,
                                                     vectorRegisters: context.vectorRegisters, l2Bytes: context.l2Bytes)
            graph.ops[i].attributes["schedule"] = .string(schedule.description)
            scheduled += 1
        }
        context.record("kernels scheduled", scheduled)
    }
}
