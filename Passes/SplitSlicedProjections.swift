/// Splits a 1x1 projection whose result is only read through channel slices (SS2D's in_proj, whose x and z halves
/// go their own ways) into one projection per slice, so that each half has its own slot and lives only as long as
/// its readers: the x half dies after the depthwise conv, and the z half is computed just before its reader
/// (out_proj), not kept alive through the scan.
///
/// Name: `split-sliced-projections`. Requires: a typed graph of primitive (and fused) ops with bound weights, after
/// `fold-layer-norm` (the folded weights are split) and after the block fusions (`fuse-feed-forward` reads
/// GDFN's project_in through its two slices and must see them). Produces: `conv2d`s with the rows of the weight
/// (and bias) a slice selected, as new weights `<W>.rows<start>_<size>`; no `slice` of a projection.
///
/// Algorithm:
///  1. Count the users of every value and the position of its last use (graph outputs count as users, last).
///  2. For each 1x1 `conv2d` (groups 1, padding 0, stride 1, no fused residual; a folded norm — the statistics
///     are per pixel — and an activation are per output channel, so they split with the rows) whose weight and
///     optional bias are bound weights and whose every user is a `slice` along axis 1 (two slices or more, or one
///     slice that drops channels):
///     - each slice becomes a conv with the slice's rows of W (and b), and the slice's result;
///     - it is placed just before the first reader of the slice when the conv's input is read there or later
///       anyway (so moving it extends no lifetime), else where the slice was.
///     Each output channel is the same sum in the same order as before: the results are bitwise unchanged.
///  3. Record the projections split, the convs made and the bytes of projection outputs that no longer live in
///     one slot.
import HybridIR

public struct SplitSlicedProjections: Pass {
    public static let name = "split-sliced-projections"
    public static let summary = "split a 1x1 conv read only through channel slices (SS2D's in_proj) into one conv per slice"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let users = graph.readers()
        // Position of each value's last reader; a graph output lives to the end.
        let lastUse = users.mapValues { r in r.contains(-1) ? graph.ops.count : r.max()! }
        let definer = graph.definers()
        func weight(_ v: ValueID) -> (key: String, tensor: Tensor)? {
            guard let i = definer[v], graph.ops[i].kind == .weight, let key = try? graph.ops[i].attributes.string("name"),
                  let t = context.weights[key] else { return nil }
            return (key, t)
        }

        var nextID = graph.maxValueID + 1
        var removed = Set<Int>()
        /// New ops to insert before the op at an index (in the order found).
        var before: [Int: [Operation]] = [:]
        var split = 0, made = 0, bytes = 0
        for (i, conv) in graph.ops.enumerated() where conv.kind == .conv2d {
            guard let type = conv.type, type.rank == 4, (try? conv.attributes.int("groups")) == 1,
                  (try? conv.attributes.int("padding")) == 0, (try? conv.attributes.int("stride", default: 1)) == 1,
                  conv.attributes["residual"] == nil, ((try? FoldedNorm.of(conv.attributes)) ?? nil)?.affine != true,
                  conv.operands.count <= 3, let w = weight(conv.operands[1]), w.tensor.shape.count == 4,
                  w.tensor.shape[2] == 1, w.tensor.shape[3] == 1, w.tensor.shape[0] == type.shape[1],
                  let convUsers = users[conv.result], !convUsers.isEmpty, !convUsers.contains(-1) else { continue }
            let bias = conv.operands.count > 2 ? weight(conv.operands[2]) : nil
            guard conv.operands.count == 2 || bias != nil else { continue }
            let slices = convUsers.filter { u in
                let s = graph.ops[u]
                return s.kind == .slice && s.operands == [conv.result] && (try? s.attributes.int("axis")) == 1
                    && s.attributes["view"] == nil && s.type != nil
            }
            guard slices.count == convUsers.count, Set(slices).count == slices.count,
                  slices.count > 1 || slices.first.map({ graph.ops[$0].type!.shape[1] < type.shape[1] }) == true else { continue }
            let (co, ci) = (w.tensor.shape[0], w.tensor.shape[1])
            let ranges = slices.map { u -> (start: Int, size: Int)? in
                guard let start = try? graph.ops[u].attributes.int("start"), let size = graph.ops[u].type?.shape[1],
                      start >= 0, size > 0, start + size <= co else { return nil }
                return (start, size)
            }
            guard ranges.allSatisfy({ $0 != nil }) else { continue }
            for (u, range) in zip(slices, ranges) {
                let slice = graph.ops[u]
                let (start, size) = range!
                var operands = [conv.operands[0]]
                var ops: [Operation] = []
                func add(_ t: Tensor, _ key: String) {
                    let name = uniqueName(key, t, context)
                    context.weights[name] = t
                    ops.append(Operation(kind: .weight, operands: [], attributes: ["name": .string(name)], result: nextID,
                                         type: TensorType(.f32, t.shape), scope: conv.scope))
                    operands.append(nextID)
                    nextID += 1
                }
                add(Tensor(shape: [size, ci, 1, 1], data: Array(w.tensor.data[(start * ci)..<((start + size) * ci)])),
                    "\(w.key).rows\(start)_\(size)")
                if let bias {
                    add(Tensor(shape: [size], data: Array(bias.tensor.data[start..<(start + size)])), "\(bias.key).rows\(start)_\(size)")
                }
                var part = conv
                part.operands = operands
                part.result = slice.result
                part.type = slice.type
                ops.append(part)
                // Just before the slice's first reader when the input is read there or later anyway.
                let first = users[slice.result]?.filter { $0 >= 0 }.min()
                let at = first.map { f in (lastUse[conv.operands[0]] ?? 0) >= f ? f : u } ?? u
                before[at, default: []] += ops
                removed.insert(u)
                made += 1
            }
            removed.insert(i)
            split += 1
            bytes += type.byteSize
        }

        var ops: [Operation] = []
        for (i, op) in graph.ops.enumerated() {
            ops += before[i] ?? []
            if !removed.contains(i) { ops.append(op) }
        }
        graph.ops = ops
        context.record("projections split", split)
        context.record("convs made", made)
        context.record("bytes no longer in one slot", bytes)
    }

    /// `key`, or `key2`, `key3`, ... when the context already holds a different tensor under it.
    func uniqueName(_ key: String, _ t: Tensor, _ context: PassContext) -> String {
        var name = key, n = 2
        while let existing = context.weights[name], existing != t {
            name = "\(key)\(n)"
            n += 1
        }
        return name
    }
}
