/// Plans the workspace: the lifetime of every intermediate, then its offset in one arena, reusing slots of dead
/// tensors, running elementwise ops in place and writing the operands of a concatenation straight into its slot;
/// the kernels' scratch is placed by the same plan.
///
/// Name: `plan-memory`. Requires: a typed graph (after `schedule-kernels`, whose row tiles size the per-thread
/// scratch; without it the default schedules are used). Produces: the same graph with the plan recorded
/// (`MemoryPlanner.annotate`): each kernel op's `offset` (floats into the arena, at the size the graph was built
/// for: the compiled maximum), `in_place` (the operand whose slot it overwrites), `scratch` ([offset, floats] of
/// a block shared by the op's threads and phases), `thread_scratch` (floats per thread) and, on a free
/// concatenation, `placed = true` (no kernel; its offset is its slot's); the graph's
/// `arena_floats`, `lower_bound_floats`, `thread_scratch_floats` and `input_offset`. Semantics are unchanged.
///
/// Algorithm (`MemoryPlanner.plan`, HybridIR/MemoryPlan.swift, shared with code generation):
///  1. Constants (weights and weight-only ops) live in the weights blob; a reshape is a view of its operand's
///     slot; every other op is a kernel, numbered in graph order as steps 1...n (0 copies the input in, n+1
///     copies the output out).
///  2. Lifetimes: a slot lives from the step that writes it to the last step that reads it or any view of it;
///     the graph's output lives to the copy-out, so it is never overwritten.
///  3. In place: an elementwise op (add, mul, unary ...) writes into the slot of an operand of its own shape when
///     that operand's last use is this op; the slot then lives on as the result's. An operand still used later,
///     a broadcast operand or the graph's output is never overwritten.
///  4. Free concatenation (`MemoryPlanner.freeConcats`): a concat whose dimensions before its axis are all 1
///     (a channel concat of one image) and whose operands are distinct kernel results (not the input, the output,
///     constants, views or operands of another free concat) is no kernel: it gets `placed = true` and a slot that
///     lives from the first step of its first-written operand to its last reader, and each operand's slot (with
///     the in-place ops before it that share it) moves inside, at start · (floats per index of the axis); code
///     generation turns that into an offset that follows the run-time size (start · H · W). Nothing writes in
///     place over an operand placed so, and a result that goes into a concat never starts in the input's slot or
///     another concat's. The operands live as long as the concat's readers.
///  4b. Slice views (`MemoryPlanner.sliceViews`): a slice of a contiguous range of its operand (every dimension
///     before its axis is 1: e.g. a channel range of one image, the x and z halves of an S block's in_proj) is no
///     kernel: it gets `view = true` and the offset of its range inside its operand's slot, which lives as long
///     as the view's readers; nothing writes in place over a slot that views read. Not for the graph's output,
///     a free concatenation's operand, or an operand that is itself a view or placed in a concatenation.
///  5. Scratch: `ScratchNeeds.of` gives each kernel's shared block (a slot live during its step only) and its
///     per-thread slot (the largest one is reserved per thread after the arena, so it counts in the workspace).
///  6. Offsets, greedy by size: the largest slot first, each at the lowest offset free for its whole lifetime
///     (slots inside a concat's follow it).
///  7. Report the arena against the lower bound (the largest sum of slots live at one step; a concat's slot
///     counts from its first operand's first step).
import HybridIR

public struct PlanMemory: Pass {
    public static let name = "plan-memory"
    public static let summary = "place every intermediate and scratch block in one arena (lifetimes, reuse, in-place adds)"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        try PlanMemory.plan(&graph, context, reuse: true)
    }

    /// Plans and records; `reuse` false gives every slot its own range (the `-O0` plan).
    static func plan(_ graph: inout Graph, _ context: PassContext, reuse: Bool) throws {
        let types = graph.valueTypes()
        func floats(_ v: ValueID) -> Int { types[v]?.shape.reduce(1, *) ?? 0 }
        let plan = try MemoryPlanner.plan(graph, floats: floats, scratch: { op in
            let operandShapes = op.operands.map { types[$0]?.shape ?? [] }
            let schedule = Schedule.annotated(op) ?? DefaultScheduler.schedule(op, operandShapes: operandShapes,
                                                                               vectorWidth: context.vectorWidth, l1dBytes: context.l1dBytes,
                                                     vectorRegisters: context.vectorRegisters, l2Bytes: context.l2Bytes)
            return ScratchNeeds.of(op, operandShapes: operandShapes, resultShape: op.type?.shape ?? [], schedule: schedule)
        }, reuse: reuse)
        MemoryPlanner.annotate(&graph, plan)
        context.record("arena bytes", plan.arenaFloats * 4)
        context.record("lower bound bytes", plan.lowerBoundFloats * 4)
        context.record("scratch bytes per thread", plan.threadScratchFloats * 4)
        context.record("workspace bytes at \(context.threads) threads", plan.workspaceFloats(threads: context.threads) * 4)
        context.record("ops in place", plan.inPlace.count)
        context.record("concatenations free (no kernel)", plan.freeConcats.count)
        context.record("concatenation bytes not copied", plan.freeConcats.map { (types[$0]?.byteSize ?? 0) }.reduce(0, +))
        let slices = graph.ops.filter { $0.kind == .slice && plan.sliceViews[$0.result] != nil }
        context.record("slices viewed (no kernel)", slices.count)
        context.record("slice bytes not copied", slices.map { $0.type?.byteSize ?? 0 }.reduce(0, +))
    }
}
