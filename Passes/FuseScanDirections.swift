/// Fuses SS2D's four scan directions (ARCHITECTURES.md 2.1 steps 3-7) into one GEMM and one `ss2d_scan`, which
/// reads the sequence through the directions' index maps instead of flipped and transposed copies.
///
/// Name: `fuse-scan-directions`. Requires: a typed graph of primitive ops as `expand-blocks` writes SS2D (reshapes
/// may have been merged by `canonicalize`); run it before `chunk-selective-scan`. Produces: for every matched SS2D,
/// x_dbl = conv2d(xs, x_proj_weight viewed (K·(R+2N), E, 1, 1)) (the four directions' x_proj as ONE pointwise GEMM
/// in pixel order) and y = ss2d_scan(xs, x_dbl, dt_projs_weight, A, Ds, dt_projs_bias) {directions, x_dbl_layout,
/// chunk, form, fuses}; anything that does not match exactly is left alone.
///
/// Algorithm:
///  1. Count the live users of every value (graph outputs count as users; dead ops, such as the reshapes
///     `canonicalize` leaves behind, do not and are dropped with what they read); let src(v) follow reshapes back.
///  2. For every `add`, collect the tree of adds below it (inner adds used only by their parent) and classify its
///     leaves: a leaf is a chain slice → [flip of the last, length-L axis] → [transpose (0,1,3,2) from (1,E,W,H)]
///     through reshapes, where the slice takes the contiguous block k·E·L..(k+1)·E·L of one selective scan's result.
///     A root has four leaves, directions 0..3 of the same scan, direction k having a flip iff k ≥ 2 and a
///     transpose iff k is odd (the merge y0 + rev(y2) + T(y1) + T(rev(y3))).
///  3. Check the scan's inputs: softplus, D and delta bias, no z; u = the concat of xs, transpose(xs), flip(xs),
///     flip(transpose(xs)) in that order (xs of shape (1, E, H, W), through reshapes); delta = dt_projs_weight
///     (K, E, R) @ slice [0, R) of x_dbl; B, C = slices [R, R+N) and [R+N, R+2N) of x_dbl = x_proj_weight
///     (K, R+2N, E) @ the concat.
///  4. Every matched op other than the root must be used only by matched ops (so a flip with another user blocks
///     the fusion). Replace the root by the reshape of x_proj_weight, the GEMM and the `ss2d_scan` (same result
///     value, so users need no rewrite); drop the other matched ops.
///  5. chunk and form by the rules of `chunk-selective-scan`, with the channel count E (each work item of the
///     kernel runs all four directions of its channels). Record the blocks fused, the flip/transpose copies
///     removed, the forms, and the intermediate bytes no longer written; note each scan's scope and form with the
///     rule's numbers (`ChunkSelectiveScan.formReason`).
import HybridIR

public struct FuseScanDirections: Pass {
    public static let name = "fuse-scan-directions"
    public static let summary = "SS2D: x_proj of the 4 directions as one GEMM; one ss2d_scan through index maps (dt_proj, softplus, merge fused)"

    public init() {}

    struct Match {
        var root: Int
        var removed: Set<Int>
        var xs: ValueID
        var xProjWeight: ValueID
        var operands: [ValueID]  // dt_projs_weight, A, Ds, dt_projs_bias
        var e, h, w, r, n: Int
    }

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let types = graph.valueTypes()
        // Users among live ops only: canonicalize leaves dead reshapes that DCE removes later.
        var live = Set(graph.outputs)
        for op in graph.ops.reversed() where live.contains(op.result) { live.formUnion(op.operands) }
        let users = graph.readers(including: { live.contains($0.result) })
        let definer = graph.definers()

        var matches: [Int: Match] = [:]
        var claimed = Set<Int>()
        for i in graph.ops.indices where graph.ops[i].kind == .add && !claimed.contains(i) {
            guard let m = Matcher(graph: graph, types: types, users: users, definer: definer).match(root: i),
                  m.removed.isDisjoint(with: claimed) else { continue }
            matches[i] = m
            claimed.formUnion(m.removed)
            claimed.insert(i)
        }
        var fused = 0, copies = 0, recurrent = 0, carry = 0, bytes = 0
        var next = graph.maxValueID + 1
        var ops: [Operation] = []
        var dropped = Set<ValueID>()
        for (i, op) in graph.ops.enumerated() {
            if claimed.contains(i) && matches[i] == nil || !live.contains(op.result) && op.operands.contains(where: dropped.contains) {
                // A matched op, or a dead op reading one.
                dropped.insert(op.result)
            } else if let m = matches[i] {
                let k = 4, features = k * (m.r + 2 * m.n), l = m.h * m.w
                let scope = op.scope, gemmScope = op.scope.isEmpty ? "x_proj" : op.scope + ".x_proj"
                let wAll = Operation(kind: .reshape, operands: [m.xProjWeight], attributes: ["shape": .ints([features, m.e, 1, 1])],
                                     result: next, type: TensorType(.f32, [features, m.e, 1, 1]), scope: gemmScope)
                let gemm = Operation(kind: .conv2d, operands: [m.xs, next], attributes: ["groups": .int(1), "padding": .int(0)],
                                     result: next + 1, type: TensorType(.f32, [1, features, m.h, m.w]), scope: gemmScope)
                next += 2
                let chunk = ChunkSelectiveScan.chunk(stateSize: m.n, l1Bytes: context.l1dBytes)
                let form = ChunkSelectiveScan.form(channels: m.e, length: l, chunk: chunk,
                                                   threads: context.threads, vectorWidth: context.vectorWidth)
                let fuses = m.removed.sorted().map { graph.ops[$0].kind.name } + [op.kind.name]
                let scan = Operation(kind: .ss2dScan, operands: [m.xs, gemm.result] + m.operands,
                                     attributes: ["directions": .int(k), "x_dbl_layout": .string("planar"),
                                                  "chunk": .int(chunk), "form": .string(form),
                                                  "fuses": .string(fuses.joined(separator: ","))],
                                     result: op.result, type: op.type, scope: scope)
                ops += [wAll, gemm, scan]
                fused += 1
                copies += m.removed.filter { [.flip, .transpose].contains(graph.ops[$0].kind) }.count
                if form == "recurrent" { recurrent += 1 } else { carry += 1 }
                context.note(ChunkSelectiveScan.formNote(scan, ChunkSelectiveScan.formReason(
                    channels: m.e, length: l, chunk: chunk, threads: context.threads, vectorWidth: context.vectorWidth)))
                bytes += m.removed.filter { graph.ops[$0].kind != .reshape }.map { types[graph.ops[$0].result]!.byteSize }
                    .reduce(0, +) - gemm.type!.byteSize
            } else {
                ops.append(op)
            }
        }
        graph.ops = ops
        context.record("SS2D scans fused", fused)
        context.record("flip/transpose copies removed", copies)
        context.record("recurrent form", recurrent)
        context.record("carry form", carry)
        context.record("intermediate bytes not written", bytes)
    }

    /// Recognises one SS2D (steps 2-4) without changing anything.
    struct Matcher {
        let graph: Graph
        let types: [ValueID: TensorType]
        let users: [ValueID: [Int]]
        let definer: [ValueID: Int]
        var ops: [Operation] { graph.ops }

        func shape(_ v: ValueID) -> [Int]? { types[v]?.shape }
        func def(_ v: ValueID) -> Int? { definer[v] }
        func int(_ op: Operation, _ key: String) -> Int? { try? op.attributes.int(key) }

        /// `v` with reshapes followed back, and the reshapes passed.
        func source(_ v: ValueID, _ passed: inout Set<Int>) -> ValueID {
            var v = v
            while let d = def(v), ops[d].kind == .reshape {
                passed.insert(d)
                v = ops[d].operands[0]
            }
            return v
        }

        /// A flip that reverses a sequence of length `l`: its axis is the last, of size l.
        func isSequenceFlip(_ op: Operation, length l: Int) -> Bool {
            guard op.kind == .flip, let s = shape(op.operands[0]), let axis = int(op, "axis") else { return false }
            return axis == s.count - 1 && s.last == l
        }

        func isHWTranspose(_ op: Operation) -> Bool {
            op.kind == .transpose && (try? op.attributes.ints("perm")) == [0, 1, 3, 2]
        }

        /// Leaf of the merge: (scan op index, direction, ops of the chain), if `v` is one.
        func leaf(_ v: ValueID) -> (scan: Int, direction: Int, ops: Set<Int>)? {
            guard let out = shape(v), out.count == 4, out[0] == 1 else { return nil }
            let (e, h, w) = (out[1], out[2], out[3])
            let l = h * w
            var chain = Set<Int>()
            var cur = source(v, &chain)
            var transposed = false, reversed = false
            if let d = def(cur), isHWTranspose(ops[d]), shape(ops[d].operands[0]) == [1, e, w, h] {
                transposed = true
                chain.insert(d)
                cur = source(ops[d].operands[0], &chain)
            }
            if let d = def(cur), isSequenceFlip(ops[d], length: l), shape(ops[d].operands[0])!.reduce(1, *) == e * l {
                reversed = true
                chain.insert(d)
                cur = source(ops[d].operands[0], &chain)
            }
            guard let d = def(cur), ops[d].kind == .slice, let axis = int(ops[d], "axis"),
                  let start = int(ops[d], "start"), let size = int(ops[d], "size"),
                  let from = shape(ops[d].operands[0]), from[..<axis].allSatisfy({ $0 == 1 }) else { return nil }
            chain.insert(d)
            let inner = from[(axis + 1)...].reduce(1, *)
            guard size * inner == e * l, (start * inner) % (e * l) == 0 else { return nil }
            let k = start * inner / (e * l)
            guard let s = def(source(ops[d].operands[0], &chain)), ops[s].kind == .selectiveScan,
                  shape(ops[s].result) == [1, 4 * e, l], reversed == (k >= 2), transposed == (k % 2 == 1) else { return nil }
            return (s, k, chain)
        }

        func match(root: Int) -> Match? {
            // Step 2: the add tree and its four leaves.
            var adds: Set<Int> = [root]
            var leaves: [(scan: Int, direction: Int, ops: Set<Int>)] = []
            var stack = [root]
            while let a = stack.popLast() {
                for v in ops[a].operands {
                    if let found = leaf(v) {
                        leaves.append(found)
                    } else if let d = def(v), ops[d].kind == .add, users[v] == [a] {
                        adds.insert(d)
                        stack.append(d)
                    } else {
                        return nil
                    }
                }
            }
            guard leaves.count == 4, Set(leaves.map(\.direction)) == [0, 1, 2, 3],
                  Set(leaves.map(\.scan)).count == 1 else { return nil }
            let s = leaves[0].scan, scan = ops[s]
            var removed = adds.subtracting([root]).union([s])
            for leaf in leaves { removed.formUnion(leaf.ops) }

            // Step 3: the scan's inputs.
            let a = scan.attributes
            guard (try? a.bool("has_D")) == true, (try? a.bool("has_delta_bias")) == true, (try? a.bool("has_z")) == false,
                  (try? a.bool("delta_softplus")) == true, scan.operands.count == 7,
                  let out = shape(ops[root].result) else { return nil }
            let (e, h, w) = (out[1], out[2], out[3])
            let l = h * w
            // u: the concat of the four orders.
            guard let c = def(source(scan.operands[0], &removed)), ops[c].kind == .concat, ops[c].operands.count == 4,
                  let axis = int(ops[c], "axis"), let cs = shape(ops[c].result), cs[..<axis].allSatisfy({ $0 == 1 }),
                  ops[c].operands.allSatisfy({ shape($0)?.reduce(1, *) == e * l }) else { return nil }
            removed.insert(c)
            let parts = ops[c].operands.map { source($0, &removed) }
            let xs = parts[0]
            guard shape(xs) == [1, e, h, w] else { return nil }
            /// The op index of transpose(xs), if `v` is one.
            func transposeOfXs(_ v: ValueID) -> Int? {
                guard let d = def(v), isHWTranspose(ops[d]) else { return nil }
                var passed = Set<Int>()
                guard source(ops[d].operands[0], &passed) == xs, passed.isEmpty else { return nil }
                return d
            }
            /// The op index of flip(v') and the source of v', if `v` is a sequence flip.
            func flipped(_ v: ValueID) -> (Int, ValueID)? {
                guard let d = def(v), isSequenceFlip(ops[d], length: l) else { return nil }
                var passed = Set<Int>()
                let inner = source(ops[d].operands[0], &passed)
                removed.formUnion(passed)
                return (d, inner)
            }
            guard let t1 = transposeOfXs(parts[1]), let (f2, x2) = flipped(parts[2]), x2 == xs,
                  let (f3, x3) = flipped(parts[3]), let t3 = transposeOfXs(x3) else { return nil }
            removed.formUnion([t1, f2, f3, t3])

            // x_dbl = x_proj_weight @ stacked, and its slices dt_raw, B, C.
            guard let dtDef = def(source(scan.operands[1], &removed)), ops[dtDef].kind == .matmul,
                  let wdt = shape(ops[dtDef].operands[0]), wdt.count == 3, wdt[0] == 4, wdt[1] == e,
                  let nShape = shape(scan.operands[2]), nShape.count == 2, nShape[0] == 4 * e else { return nil }
            let r = wdt[2], n = nShape[1], rows = r + 2 * n
            removed.insert(dtDef)
            /// The op index of the slice [start, start + size) of x_dbl's rows, and x_dbl's definer.
            func rowSlice(_ v: ValueID, _ start: Int, _ size: Int) -> (Int, Int)? {
                guard let d = def(source(v, &removed)), ops[d].kind == .slice, int(ops[d], "axis") == 2,
                      int(ops[d], "start") == start, int(ops[d], "size") == size,
                      let x = def(ops[d].operands[0]), ops[x].kind == .matmul, shape(ops[x].result) == [1, 4, rows, l]
                else { return nil }
                return (d, x)
            }
            guard let (sdt, x0) = rowSlice(ops[dtDef].operands[1], 0, r), let (sb, x1) = rowSlice(scan.operands[3], r, n),
                  let (sc, x2) = rowSlice(scan.operands[4], r + n, n), x0 == x1, x1 == x2 else { return nil }
            let xProj = ops[x0]
            var passed = Set<Int>()
            guard shape(xProj.operands[0]) == [4, rows, e], source(xProj.operands[1], &passed) == ops[c].result,
                  shape(xProj.operands[1]) == [1, 4, e, l],
                  shape(scan.operands[5]) == [4 * e], shape(scan.operands[6]) == [4 * e] else { return nil }
            removed.formUnion(passed)
            removed.formUnion([sdt, sb, sc, x0])

            // Step 4: nothing outside the match reads what it removes.
            for i in removed {
                guard let u = users[ops[i].result], u.allSatisfy({ $0 >= 0 && ($0 == root || removed.contains($0)) })
                else { return nil }
            }
            return Match(root: root, removed: removed, xs: xs, xProjWeight: xProj.operands[0],
                         operands: [ops[dtDef].operands[0], scan.operands[2], scan.operands[5], scan.operands[6]],
                         e: e, h: h, w: w, r: r, n: n)
        }
    }
}
