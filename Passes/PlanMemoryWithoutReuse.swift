/// The `-O0` memory plan: every intermediate and scratch block in its own range of the arena, nothing reused and
/// nothing in place, so that a plan bug cannot hide and the optimised plan has a baseline to beat.
///
/// Name: `plan-memory-without-reuse`. Requires: a typed graph. Produces: the same annotations as `plan-memory`
/// (`offset`, `scratch`, `thread_scratch` on ops; `arena_floats`, `lower_bound_floats`, `thread_scratch_floats`,
/// `input_offset` on the graph) plus `memory_reuse = false`; no op has `in_place`.
///
/// Algorithm (`MemoryPlanner.plan` with reuse off):
///  1. Constants, views and kernel steps as in `plan-memory`; the same lifetimes and scratch needs.
///  2. Slots one after another in order of their first step: no two slots share a byte.
///  3. Report the arena against the lower bound (what `plan-memory` would approach).
import HybridIR

public struct PlanMemoryWithoutReuse: Pass {
    public static let name = "plan-memory-without-reuse"
    public static let summary = "give every intermediate its own arena range, no reuse and nothing in place (the -O0 plan)"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        try PlanMemory.plan(&graph, context, reuse: false)
    }
}
