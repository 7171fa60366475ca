/// Removes ops whose results nothing uses (the graph's outputs are the roots).
///
/// Name: `eliminate-dead-code`. Requires: any graph. Produces: the same graph without unused ops or weights.
///
/// Algorithm:
///  1. Mark the graph's outputs live.
///  2. Walk the ops backwards; an op is kept if its result is live, and then its operands become live.
///  3. Drop the ops that were not kept, keeping the order of the rest.
import HybridIR

public struct EliminateDeadCode: Pass {
    public static let name = "eliminate-dead-code"
    public static let summary = "remove ops and weights whose results are never used"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        var live = Set(graph.outputs)
        var keep = [Bool](repeating: false, count: graph.ops.count)
        for i in graph.ops.indices.reversed() where live.contains(graph.ops[i].result) {
            keep[i] = true
            live.formUnion(graph.ops[i].operands)
        }
        let before = graph.ops.count
        var bytes = 0
        for (op, kept) in zip(graph.ops, keep) where !kept && op.kind != .weight { bytes += op.type?.byteSize ?? 0 }
        graph.ops = zip(graph.ops, keep).filter { $0.1 }.map { $0.0 }
        context.record("ops removed", before - graph.ops.count)
        context.record("bytes removed", bytes)
    }
}
