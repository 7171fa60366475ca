/// The memory plan shared by `plan-memory` and code generation (one planner): which values are constants, views
/// or kernel results, their lifetimes in kernel steps, their offsets in one workspace arena, in-place elementwise
/// ops, and the scratch each kernel needs.
///
/// Steps: 0 copies the input into the arena, the kernel ops are steps 1...n in graph order, n+1 copies the output
/// out. Sizes are in floats at the size the graph was built for (the compiled maximum image size); a smaller image
/// at run time uses the front of each slot, so the offsets hold for every size up to the maximum.

/// Workspace a kernel needs besides its operands and result.
public struct ScratchNeed: Equatable {
    /// Floats of one block shared by the op's threads and phases, live during the op's step only (in the arena).
    public var shared: Int
    /// Floats per thread: each thread its own slot, in the per-thread region that follows the arena.
    public var perThread: Int

    public init(shared: Int = 0, perThread: Int = 0) {
        self.shared = shared
        self.perThread = perThread
    }
}

public enum ScratchNeeds {
    /// Lanes per pixel of the ss2d_scan recurrent form's thread scratch: the widest HC_VLEN of any target (AVX-512: 16).
    public static let ss2dScratchLanes = 16

    /// Floats of each of the mean and 1/σ buffers of a dense convolution with an unfolded norm: the input rows
    /// read by one panel of at most `nc` output pixels, min(H·W, (S + KH)·(S·(nc − 1) + W)). A panel spans output
    /// rows oy0..oy1 with oy1 − oy0 ≤ (nc − 1)/OW + 1, hence at most (oy1 − oy0)·S + KH input rows of W pixels,
    /// and W ≤ S·OW + KH; the bound grows with H and W, so the slot sized at the compiled maximum holds every
    /// smaller image. The generated kernel computes the same expression at run time (MicroKernel.swift).
    public static func convNormStatsFloats(h: Int, w: Int, kh: Int, stride s: Int, nc: Int) -> Int {
        min(h * w, (s + kh) * (s * (nc - 1) + w))
    }

    /// NC-pixel panels per item of a stride-1 dense convolution with an unfolded norm: the item's slab holds the
    /// input rows of its output rows plus KH − 1, so longer items normalise fewer rows twice.
    public static let convSlabPanels = 4

    /// Floats of one channel of that slab (and of each of its mean and 1/σ buffers): SR rows of W2 = W + 2·pad,
    /// SR = oy1 − oy0 + KH for output rows oy0..oy1 of an item of at most ip = convSlabPanels·nc pixels, so
    /// SR·W2 ≤ ((ip − 1)/OW + 1 + KH)·(OW + KW − 1) ≤ (ip − 1)·KW + (KH + 1)·W2, and SR ≤ H + 2·pad; both grow
    /// with H and W (a slot sized at the compiled maximum holds every smaller image). The kernel computes SR·W2.
    public static func convSlabFloats(h: Int, w: Int, kh: Int, kw: Int, padding p: Int, nc: Int) -> Int {
        let w2 = w + 2 * p, ip = convSlabPanels * nc
        return min((h + 2 * p) * w2, (ip - 1) * kw + (kh + 1) * w2)
    }

    /// The scratch of the kernel computing `op`, at the given operand and result shapes, under `schedule`.
    public static func of(_ op: Operation, operandShapes: [[Int]], resultShape: [Int], schedule: Schedule) -> ScratchNeed {
        switch op.kind {
        case .fusedAttention:
            // Shared: V (C·P, rounded up to even for the doubles after it), the Gram partials per row tile
            // (C·D + 2C doubles), the reduced attention (C·D doubles) and M packed for the micro-kernel
            // (C rounded up to MR, × C). Per thread, the larger of the gram phase's (the ring of three padded image
            // rows of the qkv output, norm statistics, packed q/k chunks, the row's Gram, GEMM packing:
            // FusedAttentionTiles.gramThreadFloats) and the out GEMM's packing scratch. See FusedAttentionKernel.swift.
            let x = operandShapes[0], heads = (try? op.attributes.int("heads")) ?? 1
            let (c, h, w) = (x[1], x[2], x[3])
            let d = c / heads, p = h * w
            let tiles = (h + FusedAttentionTiles.rowsPerTile - 1) / FusedAttentionTiles.rowsPerTile
            let gemm = GemmTiles.of(schedule)
            let gram = FusedAttentionTiles.gramThreadFloats(c: c, d: d, w: w, norm: op.attributes["norm"] != nil, gemm: gemm)
            return ScratchNeed(shared: (c * p + 1) / 2 * 2 + 2 * (tiles * (c * d + 2 * c) + c * d)
                                   + (c + gemm.mr - 1) / gemm.mr * gemm.mr * c,
                               perThread: max(gram, gemm.packFloats(k: c, pixels: p)))
        case .chunkedSelectiveScan:
            // The carry form keeps, per (batch, channel, chunk), the chunk's last local state and its exponent
            // sums (2·N floats); its second phase overwrites the states with the carry into the chunk.
            guard (try? op.attributes.string("form")) == "carry", let chunk = try? op.attributes.int("chunk"), chunk >= 1 else {
                return ScratchNeed()
            }
            let u = operandShapes[0], n = operandShapes[2][1]
            return ScratchNeed(shared: u[0] * u[1] * ((u[2] + chunk - 1) / chunk) * 2 * n)
        case .ss2dScan:
            // The carry form keeps the same slots per (direction, channel, chunk), K·E·NC·2N floats, and the
            // partial outputs of directions 2, 1 and 3 until its last phase merges them, 3·E·L floats.
            // The recurrent form keeps, per thread, its channel block's xs and y pixel-major: 2 × lanes × L floats
            // (lanes = ss2dScratchLanes, the widest HC_VLEN of any target; SS2DScanKernel.swift asserts it).
            let x = operandShapes[0], length = x[2] * x[3]
            guard (try? op.attributes.string("form")) == "carry", let chunk = try? op.attributes.int("chunk"), chunk >= 1 else {
                return ScratchNeed(perThread: 2 * ScratchNeeds.ss2dScratchLanes * length)
            }
            let n = operandShapes[3][1]
            return ScratchNeed(shared: 4 * x[1] * ((length + chunk - 1) / chunk) * 2 * n + 3 * x[1] * length)
        case .fusedFeedForward, .fusedPointwiseDepthwise:
            // Per thread: the tile's packed input panel, one hidden block's projection and gates, run-time weight
            // blocks and the folded norm's statistics (FeedForwardTiles.scratchFloats, the layout the kernel uses).
            let hidden = (try? op.attributes.int("hidden")) ?? 0
            guard let t = GemmTiles(schedule), operandShapes.first?.count == 4, resultShape.count == 4 else { return ScratchNeed() }
            let x = operandShapes[0]
            let hb = FeedForwardTiles.hiddenBlock(schedule, hidden: hidden, input: x)
            return ScratchNeed(perThread: FeedForwardTiles.scratchFloats(
                channels: x[1], outChannels: resultShape[1], height: resultShape[2], width: resultShape[3],
                rows: schedule.tile("rows"), hidden: hidden, hiddenBlock: hb, mr: t.mr, nr: t.nr, norm: op.attributes["norm"] != nil,
                gated: op.kind == .fusedFeedForward))
        case .conv2d:
            // GEMM convolutions (groups 1) pack their input panels per thread; with an unfolded norm (norm_affine)
            // the per-pixel mean and 1/σ of the input rows a panel reads come first (convNormStatsFloats each); a
            // gated norm (1x1) keeps its panel's statistics on the stack, as a folded one does.
            guard operandShapes.count >= 2, operandShapes[1].count == 4, let tiles = GemmTiles(schedule) else { return ScratchNeed() }
            let w = operandShapes[1], x = operandShapes[0]
            let pack = tiles.packFloats(k: w[1] * w[2] * w[3], pixels: resultShape.dropFirst(2).reduce(1, *))
            let norm = (try? FoldedNorm.of(op.attributes)) ?? nil
            guard norm?.affine == true, norm?.gated != true, x.count == 4 else { return ScratchNeed(perThread: pack) }
            if ((try? op.attributes.int("stride", default: 1)) ?? 1) == 1 {
                // Stride 1: the item's slab of every input channel, its mean and 1/σ, then the packing buffer.
                let slab = convSlabFloats(h: x[2], w: x[3], kh: w[2], kw: w[3],
                                          padding: (try? op.attributes.int("padding")) ?? 0, nc: tiles.nc)
                return ScratchNeed(perThread: (x[1] + 2) * slab + pack)
            }
            let stats = convNormStatsFloats(h: x[2], w: x[3], kh: w[2], stride: (try? op.attributes.int("stride", default: 1)) ?? 1,
                                            nc: tiles.nc)
            return ScratchNeed(perThread: 2 * stats + pack)
        case .matmul where (try? op.attributes.bool("transpose_a", default: false)) == true:
            // The packed block of A's columns and one B slice per thread (ProjectionGemmTiles).
            guard let tiles = GemmTiles(schedule), let k = operandShapes.first?.first else { return ScratchNeed() }
            return ScratchNeed(perThread: ProjectionGemmTiles.threadFloats(tiles, k: k))
        default:
            return ScratchNeed()
        }
    }
}

public struct MemoryPlan: Equatable {
    /// One slot of the arena: the values that share it one after another (a result and the in-place ops that
    /// overwrite it), or an op's shared scratch (key -step), with its offset, size and first and last step.
    public struct Buffer: Equatable {
        public var key: Int
        public var offset: Int
        public var floats: Int
        public var first: Int
        public var last: Int
        /// A slot inside another: an operand of a free concatenation lives in the concat's slot, `shift` floats
        /// (at the maximum size) from its start; `parent` is that slot's index. Its offset follows the parent's,
        /// it is not placed on its own and it does not count in the lower bound (the parent covers it).
        public var parent: Int? = nil
        public var shift: Int = 0
    }

    /// Where an operand of a free concatenation lives: inside the slot of `concat` (its result), at index `start`
    /// along `axis`. Every dimension before the axis is 1, so the operand is one contiguous range of the concat.
    public struct Placement: Equatable {
        public var concat: ValueID
        public var axis: Int
        public var start: Int
    }

    /// A slice that is a view (no kernel): the contiguous range of `source` from index `start` along `axis`
    /// (every dimension of `source` before the axis is 1). A reshape of such a slice is the same view.
    public struct SliceView: Equatable {
        public var source: ValueID
        public var axis: Int
        public var start: Int
    }

    /// The ops that run as kernels, in order (op i is step i + 1).
    public var kernelOps: [Operation]
    /// Free concatenations (no kernel: their operands' producers write straight into their slot), by result.
    public var freeConcats: Set<ValueID>
    /// Every value stored inside a free concatenation's slot (an operand and the in-place ops before it that
    /// share its slot) → where.
    public var placedIn: [ValueID: Placement]
    public var buffers: [Buffer]
    /// The arena offset of every workspace value (views and in-place results included).
    public var offsets: [ValueID: Int]
    /// Roots of views: a reshape of a value is the value's storage; so is a slice view (`sliceViews`), at a shift.
    public var viewRoot: [ValueID: ValueID]
    /// Slices that are views of their operand's slot (no kernel, no copy), and reshapes of them, by result.
    public var sliceViews: [ValueID: SliceView]
    /// Constants: weights and ops computed from weights alone (evaluated at compile time).
    public var constants: Set<ValueID>
    /// In-place ops: result → the index of the operand whose slot it overwrites.
    public var inPlace: [ValueID: Int]
    /// Shared scratch by step: offset and floats.
    public var scratch: [Int: [Int]]
    /// Per-thread scratch floats by step.
    public var threadScratch: [Int: Int]
    public var inputOffset: Int
    public var arenaFloats: Int
    /// The largest sum of slot sizes live at one step: no plan of these slots can be smaller.
    public var lowerBoundFloats: Int
    /// The per-thread scratch slot (the largest any kernel asks for, aligned); the workspace is
    /// arena + threads × slot.
    public var threadScratchFloats: Int
    /// False for the `-O0` plan: every slot its own range.
    public var reuse: Bool

    public func root(_ v: ValueID) -> ValueID { viewRoot[v] ?? v }
    public func isConstant(_ v: ValueID) -> Bool { constants.contains(root(v)) }
    /// Workspace floats for `threads` threads.
    public func workspaceFloats(threads: Int) -> Int { arenaFloats + threads * threadScratchFloats }
}

public enum MemoryPlanner {
    public static let alignFloats = 16
    /// The attributes `plan-memory` sets on ops; code generation leaves them out of kernel comments.
    public static let opAnnotationKeys: Set<String> = ["offset", "in_place", "scratch", "thread_scratch", "placed", "view"]

    /// A concatenation is free (`placed`: no kernel; each operand's producer writes straight into the concat's
    /// slot) when every dimension before its axis is 1 (so each operand is one contiguous range of the result,
    /// at run time too), at most two dimensions follow the axis (the offset start · H · W is one symbolic
    /// dimension), and each operand is a distinct value written by a kernel: not the graph's input or output,
    /// not a constant, a view or a free concatenation, and not the operand of an earlier free concatenation.
    static func freeConcats(_ graph: Graph, constants: Set<ValueID>) -> Set<ValueID> {
        let types = graph.valueTypes()
        var definer: [ValueID: Operation] = [:]
        var readers: [ValueID: Int] = [:]
        for op in graph.ops {
            definer[op.result] = op
            for v in op.operands { readers[v, default: 0] += 1 }
        }
        let outputs = Set(graph.outputs)
        var free = Set<ValueID>(), claimed = Set<ValueID>()
        for op in graph.ops where op.kind == .concat && !constants.contains(op.result) && !outputs.contains(op.result) {
            guard let shape = op.type?.shape, let axis = try? op.attributes.int("axis"), shape.indices.contains(axis),
                  shape[..<axis].allSatisfy({ $0 == 1 }), shape.count - axis - 1 <= 2, (readers[op.result] ?? 0) > 0,
                  Set(op.operands).count == op.operands.count else { continue }
            let ok = op.operands.allSatisfy { v in
                guard let d = definer[v], types[v] != nil, !constants.contains(v), !outputs.contains(v), !claimed.contains(v) else { return false }
                return d.kind != .weight && d.kind != .reshape && !free.contains(v)
            }
            guard ok else { continue }
            free.insert(op.result)
            claimed.formUnion(op.operands)
        }
        return free
    }

    /// A slice is a view (`view`: no kernel; its readers read the range of its operand's slot) when every
    /// dimension of the operand before the axis is 1 (the range is contiguous, at run time too), at most two
    /// dimensions follow the axis (the shift start · H · W is one symbolic dimension), it is not the graph's output
    /// or an operand of a free concatenation (whose producer must write into the concat's slot), and its operand
    /// is a workspace value whose storage is its own: not a constant, another slice view (or a reshape of one) or
    /// an operand of a free concatenation. Reshapes of a slice view are the same view.
    static func sliceViews(_ graph: Graph, constants: Set<ValueID>, freeConcats: Set<ValueID>) -> [ValueID: MemoryPlan.SliceView] {
        let types = graph.valueTypes()
        let outputs = Set(graph.outputs)
        var claimed = Set<ValueID>(), reshapeOf: [ValueID: ValueID] = [:]
        for op in graph.ops {
            if freeConcats.contains(op.result) { claimed.formUnion(op.operands) }
            if op.kind == .reshape, let x = op.operands.first { reshapeOf[op.result] = reshapeOf[x] ?? x }
        }
        var views: [ValueID: MemoryPlan.SliceView] = [:]
        for op in graph.ops where !constants.contains(op.result) {
            if op.kind == .reshape, let x = op.operands.first, let view = views[x] {
                views[op.result] = view
                continue
            }
            guard op.kind == .slice, !outputs.contains(op.result), !claimed.contains(op.result), let x = op.operands.first,
                  views[x] == nil, !constants.contains(x), !claimed.contains(x), !claimed.contains(reshapeOf[x] ?? x),
                  let shape = types[x]?.shape, let axis = try? op.attributes.int("axis"),
                  let start = try? op.attributes.int("start"), shape.indices.contains(axis),
                  shape[..<axis].allSatisfy({ $0 == 1 }), shape.count - axis - 1 <= 2 else { continue }
            views[op.result] = .init(source: x, axis: axis, start: start)
        }
        return views
    }

    /// The slice views an annotated graph records (`view = true`), with the reshapes of them.
    static func annotatedSliceViews(_ graph: Graph) throws -> [ValueID: MemoryPlan.SliceView] {
        var views: [ValueID: MemoryPlan.SliceView] = [:]
        for op in graph.ops {
            if op.kind == .reshape, let x = op.operands.first, let view = views[x] {
                views[op.result] = view
            } else if op.kind == .slice, (try? op.attributes.bool("view")) == true {
                views[op.result] = .init(source: op.operands[0], axis: try op.attributes.int("axis"), start: try op.attributes.int("start"))
            }
        }
        return views
    }

    /// Ops whose kernel may write its result over an operand of the same shape that dies at it: each output
    /// element is computed from the operands' elements at the same index only.
    public static let elementwiseKinds: Set<OpKind> = [.add, .sub, .mul, .div, .gelu, .silu, .sigmoid, .softplus, .relu, .exp, .neg]

    static func aligned(_ n: Int) -> Int { (n + alignFloats - 1) / alignFloats * alignFloats }

    /// Constants: weights and, with `foldConstants`, ops with operands that are all constants (the rule both the
    /// memory plan and code generation's constant folding use).
    public static func constants(_ graph: Graph, foldConstants: Bool = true) -> Set<ValueID> {
        var constants = Set<ValueID>()
        for op in graph.ops {
            if op.kind == .weight || (foldConstants && !op.operands.isEmpty && op.operands.allSatisfy(constants.contains)) {
                constants.insert(op.result)
            }
        }
        return constants
    }

    /// A fresh plan. `floats` gives a value's size, `scratch` an op's scratch need; without `reuse` every slot
    /// gets its own range and no op runs in place.
    public static func plan(_ graph: Graph, floats: (ValueID) -> Int, scratch: (Operation) -> ScratchNeed,
                            reuse: Bool, foldConstants: Bool = true) throws -> MemoryPlan {
        try build(graph, floats: floats, foldConstants: foldConstants, annotated: false, reuse: reuse, scratch: scratch)
    }

    /// The plan `plan-memory` recorded on the graph, or nil when the graph has none or an op lacks its offset
    /// (a pass changed the graph after planning).
    public static func annotated(_ graph: Graph, floats: (ValueID) -> Int, foldConstants: Bool = true) throws -> MemoryPlan? {
        guard graph.attributes["arena_floats"] != nil else { return nil }
        let plan = try? build(graph, floats: floats, foldConstants: foldConstants, annotated: true,
                              reuse: (try? graph.attributes.bool("memory_reuse")) ?? true, scratch: { _ in ScratchNeed() })
        return plan
    }

    /// Writes `plan` onto the graph: ops get `offset` (result slot, floats), `in_place` (the operand index whose
    /// slot the result overwrites), `scratch` ([offset, floats] of the shared block) and `thread_scratch`
    /// (floats per thread); a free concatenation gets `placed = true` and its slot's offset (its operands'
    /// producers have their offsets inside it); the graph gets `arena_floats`, `lower_bound_floats`, `thread_scratch_floats`,
    /// `input_offset` and, for a plan without reuse, `memory_reuse = false`.
    public static func annotate(_ graph: inout Graph, _ plan: MemoryPlan) {
        let stepOf = Dictionary(uniqueKeysWithValues: plan.kernelOps.enumerated().map { ($1.result, $0 + 1) })
        for i in graph.ops.indices {
            for key in opAnnotationKeys { graph.ops[i].attributes[key] = nil }
            let op = graph.ops[i]
            guard let step = stepOf[op.result] else {
                if let off = plan.offsets[op.result], op.kind == .reshape { graph.ops[i].attributes["offset"] = .int(off) }
                if let off = plan.offsets[op.result], op.kind == .slice, plan.sliceViews[op.result] != nil {
                    graph.ops[i].attributes["offset"] = .int(off)
                    graph.ops[i].attributes["view"] = .bool(true)
                }
                if let off = plan.offsets[op.result], plan.freeConcats.contains(op.result) {
                    graph.ops[i].attributes["offset"] = .int(off)
                    graph.ops[i].attributes["placed"] = .bool(true)
                }
                continue
            }
            graph.ops[i].attributes["offset"] = .int(plan.offsets[op.result]!)
            if let j = plan.inPlace[op.result] { graph.ops[i].attributes["in_place"] = .int(j) }
            if let s = plan.scratch[step] { graph.ops[i].attributes["scratch"] = .ints(s) }
            if let t = plan.threadScratch[step] { graph.ops[i].attributes["thread_scratch"] = .int(t) }
        }
        graph.attributes["arena_floats"] = .int(plan.arenaFloats)
        graph.attributes["lower_bound_floats"] = .int(plan.lowerBoundFloats)
        graph.attributes["thread_scratch_floats"] = .int(plan.threadScratchFloats)
        graph.attributes["input_offset"] = .int(plan.inputOffset)
        graph.attributes["memory_reuse"] = plan.reuse ? nil : .bool(false)
    }

    private static func build(_ graph: Graph, floats: (ValueID) -> Int, foldConstants: Bool, annotated: Bool, reuse: Bool,
                              scratch: (Operation) -> ScratchNeed) throws -> MemoryPlan {
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw HybridError("memory planning needs a graph with one input and one output, @\(graph.name) has \(graph.inputs.count) and \(graph.outputs.count)")
        }
        let input = graph.inputs[0].id
        let constants = constants(graph, foldConstants: foldConstants)
        // 1. Views and kernels: a reshape of a value shares its storage; weights and constants are no kernels; a
        //    free concatenation is no kernel either (its operands are written into its slot).
        let free = annotated ? Set(graph.ops.filter { $0.kind == .concat && (try? $0.attributes.bool("placed")) == true }.map(\.result))
            : reuse ? freeConcats(graph, constants: constants) : []
        //    A slice of a contiguous range is a view of its operand's slot at a shift (`sliceViews`).
        let sliceViews = annotated ? try annotatedSliceViews(graph)
            : reuse ? sliceViews(graph, constants: constants, freeConcats: free) : [:]
        var viewRoot: [ValueID: ValueID] = [:]
        var kernelOps: [Operation] = []
        var concatOps: [Operation] = []
        for op in graph.ops where op.kind != .weight && !constants.contains(op.result) {
            if op.kind == .reshape || (op.kind == .slice && sliceViews[op.result] != nil) {
                viewRoot[op.result] = viewRoot[op.operands[0]] ?? op.operands[0]
            } else if free.contains(op.result) {
                concatOps.append(op)
            } else {
                kernelOps.append(op)
            }
        }
        func root(_ v: ValueID) -> ValueID { viewRoot[v] ?? v }
        let types = graph.valueTypes()
        // Slots that slice views read: nothing writes over them in place (a view would see the new values, and
        // a result written over one could move into a concatenation's slot with the views inside).
        let viewed = Set(sliceViews.values.map { root($0.source) })
        // Each operand of a free concatenation → where it goes (the start along the axis).
        var placement: [ValueID: MemoryPlan.Placement] = [:]
        for op in concatOps {
            let axis = try op.attributes.int("axis")
            var start = 0
            for v in op.operands {
                placement[v] = .init(concat: op.result, axis: axis, start: start)
                start += types[v]?.shape[axis] ?? 0
            }
        }

        // 2. Lifetimes of the workspace values (by root), in steps.
        var lastUse: [ValueID: Int] = [input: 0]
        for (i, op) in kernelOps.enumerated() {
            lastUse[op.result] = i + 1
            for v in op.operands where !constants.contains(root(v)) { lastUse[root(v)] = i + 1 }
        }
        let final = root(graph.outputs[0])
        guard !constants.contains(final) else { throw HybridError("the graph's output is a constant") }
        lastUse[final] = kernelOps.count + 1
        // The readers of a free concatenation read its operands: they live as long as it does.
        for op in concatOps {
            for v in op.operands { lastUse[root(v)] = max(lastUse[root(v)] ?? 0, lastUse[op.result] ?? 0) }
        }

        // 3. Slots: the input, each result (or the slot of the operand it overwrites in place), shared scratch.
        var buffers: [MemoryPlan.Buffer] = [.init(key: input, offset: 0, floats: aligned(floats(input)), first: 0, last: lastUse[input]!)]
        var bufferOf: [ValueID: Int] = [input: 0]
        var inPlace: [ValueID: Int] = [:]
        var scratchBlocks: [Int: [Int]] = [:]
        var threadScratch: [Int: Int] = [:]
        for (i, op) in kernelOps.enumerated() {
            let step = i + 1
            var slot: Int?
            if annotated {
                guard case .int? = op.attributes["offset"] else { throw HybridError("no offset", at: op.label) }
                if let j = try? op.attributes.int("in_place") {
                    guard op.operands.indices.contains(j), let b = bufferOf[root(op.operands[j])] else {
                        throw HybridError("in_place names no workspace operand", at: op.label)
                    }
                    slot = b
                    inPlace[op.result] = j
                }
                if let s = try? op.attributes.ints("scratch"), s.count == 2 {
                    scratchBlocks[step] = s
                    buffers.append(.init(key: -step, offset: s[0], floats: s[1], first: step, last: step))
                }
                if let t = try? op.attributes.int("thread_scratch") { threadScratch[step] = t }
            } else {
                // A conv2d with a fused residual may overwrite the residual (each element is read just before its
                // own first write), unless the residual is also its input.
                var candidates = MemoryPlanner.elementwiseKinds.contains(op.kind) ? Array(op.operands.indices) : []
                if op.kind == .conv2d, let r = try? Epilogue.convResidual(op.attributes), r.residual {
                    let j = op.operands.count - (r.scaled ? 2 : 1)
                    // Nor when another operand the GEMM reads while writing (the input, a gated norm's z) shares
                    // its storage.
                    if op.operands.indices.allSatisfy({ $0 == j || root(op.operands[$0]) != root(op.operands[j]) }) { candidates = [j] }
                }
                if reuse, !candidates.isEmpty, let type = op.type {
                    for (j, v) in op.operands.enumerated() where candidates.contains(j) {
                        let r = root(v)
                        guard !constants.contains(r), lastUse[r] == step, r != final, types[v]?.shape == type.shape,
                              let b = bufferOf[r], buffers[b].floats == aligned(floats(op.result)),
                              // Nothing else in the slot lives on (a concat's slot holds its operands too); an
                              // operand placed in a concat is never overwritten; and a result that goes into a
                              // concat's slot does not start in the input's, a concat's or another operand's slot.
                              buffers[b].last <= step, placement[r] == nil, !viewed.contains(r),
                              placement[op.result] == nil || (b != 0 && buffers[b].parent == nil && !free.contains(buffers[b].key))
                        else { continue }
                        slot = b
                        inPlace[op.result] = j
                        break
                    }
                }
                let need = scratch(op)
                if need.shared > 0 {
                    scratchBlocks[step] = [0, aligned(need.shared)]
                    buffers.append(.init(key: -step, offset: 0, floats: aligned(need.shared), first: step, last: step))
                }
                if need.perThread > 0 { threadScratch[step] = need.perThread }
            }
            if let b = slot {
                buffers[b].last = max(buffers[b].last, lastUse[op.result]!)
                bufferOf[op.result] = b
            } else {
                buffers.append(.init(key: op.result, offset: 0, floats: aligned(floats(op.result)), first: step, last: lastUse[op.result]!))
                bufferOf[op.result] = buffers.count - 1
            }
            // A free concatenation whose operands are all written now gets its slot, live from its first operand's
            // first step; the operands' slots move inside it, each at its start times the floats of one index
            // along the axis.
            for concat in concatOps where bufferOf[concat.result] == nil && concat.operands.allSatisfy({ bufferOf[root($0)] != nil }) {
                let children = concat.operands.map { bufferOf[root($0)]! }
                guard Set(children).count == children.count, !children.contains(0),
                      children.allSatisfy({ buffers[$0].parent == nil && !free.contains(buffers[$0].key) }) else {
                    throw HybridError("the operands of a free concatenation cannot be placed in its slot", at: concat.label)
                }
                let axis = try concat.attributes.int("axis"), shape = types[concat.result]!.shape
                let inner = shape[(axis + 1)...].reduce(1, *)
                buffers.append(.init(key: concat.result, offset: 0, floats: aligned(floats(concat.result)),
                                     first: children.map { buffers[$0].first }.min()!,
                                     last: max(lastUse[concat.result] ?? step, children.map { buffers[$0].last }.max()!)))
                let parent = buffers.count - 1
                bufferOf[concat.result] = parent
                for (v, b) in zip(concat.operands, children) {
                    buffers[b].parent = parent
                    buffers[b].shift = placement[v]!.start * inner
                    buffers[b].floats = floats(v)
                }
            }
        }
        guard concatOps.allSatisfy({ bufferOf[$0.result] != nil }) else {
            throw HybridError("a free concatenation has an operand no kernel writes")
        }
        let scratchIndex = Dictionary(uniqueKeysWithValues: buffers.indices.filter { buffers[$0].key < 0 }.map { (-buffers[$0].key, $0) })

        // 4. Offsets.
        if annotated {
            buffers[0].offset = try graph.attributes.int("input_offset")
            for op in kernelOps + concatOps where inPlace[op.result] == nil { buffers[bufferOf[op.result]!].offset = try op.attributes.int("offset") }
        } else if !reuse {
            // Without reuse: slots one after another in order of first use.
            var next = 0
            for b in buffers.indices.filter({ buffers[$0].parent == nil }).sorted(by: { (buffers[$0].first, buffers[$0].key) < (buffers[$1].first, buffers[$1].key) }) {
                buffers[b].offset = next
                next += buffers[b].floats
            }
        } else {
            // Greedy by size (largest first, each at the lowest offset free for its whole lifetime): big slots
            // claim the arena first and small ones fill the gaps between them. Ties break by first step, then key.
            let order = buffers.indices.filter { buffers[$0].parent == nil }.sorted { a, b in
                let (x, y) = (buffers[a], buffers[b])
                return x.floats != y.floats ? x.floats > y.floats : (x.first, x.key) < (y.first, y.key)
            }
            var placed: [Int] = []
            for b in order {
                let me = buffers[b]
                let live = placed.map { buffers[$0] }.filter { $0.first <= me.last && me.first <= $0.last }.sorted { $0.offset < $1.offset }
                var offset = 0
                // Moving past one slot can collide with an earlier one: repeat until nothing overlaps.
                var moved = true
                while moved {
                    moved = false
                    for p in live where offset + me.floats > p.offset && p.offset + p.floats > offset {
                        offset = p.offset + p.floats
                        moved = true
                    }
                }
                buffers[b].offset = offset
                placed.append(b)
            }
        }
        for b in buffers.indices { if let p = buffers[b].parent { buffers[b].offset = buffers[p].offset + buffers[b].shift } }
        for (step, b) in scratchIndex { scratchBlocks[step] = [buffers[b].offset, buffers[b].floats] }

        // 5. Offsets of every workspace value, the arena and its lower bound.
        var offsets: [ValueID: Int] = [:]
        for (v, b) in bufferOf { offsets[v] = buffers[b].offset }
        for (v, r) in viewRoot where offsets[r] != nil { offsets[v] = offsets[r] }
        // A slice view sits `start` indices along its axis into its source (whose storage is its root's).
        for (v, view) in sliceViews where offsets[root(view.source)] != nil {
            let inner = types[view.source]?.shape[(view.axis + 1)...].reduce(1, *) ?? 0
            offsets[v] = offsets[root(view.source)]! + view.start * inner
        }
        var peak = 0
        for step in 0...(kernelOps.count + 1) {
            peak = max(peak, buffers.filter { $0.parent == nil && $0.first <= step && step <= $0.last }.map(\.floats).reduce(0, +))
        }
        let arena = max(buffers.map { $0.offset + $0.floats }.max() ?? 0,
                        annotated ? ((try? graph.attributes.int("arena_floats")) ?? 0) : 0)
        var placedIn: [ValueID: MemoryPlan.Placement] = [:]
        for op in concatOps {
            for v in op.operands {
                let b = bufferOf[root(v)]!
                for (w, c) in bufferOf where c == b { placedIn[w] = placement[v]! }
            }
        }
        for (v, r) in viewRoot where sliceViews[v] == nil { if let p = placedIn[r] { placedIn[v] = p } }
        guard sliceViews.values.allSatisfy({ placedIn[root($0.source)] == nil }) else {
            throw HybridError("a slice view's operand was placed inside a free concatenation")
        }
        return MemoryPlan(kernelOps: kernelOps, freeConcats: Set(concatOps.map(\.result)), placedIn: placedIn, buffers: buffers, offsets: offsets, viewRoot: viewRoot,
                          sliceViews: sliceViews, constants: constants,
                          inPlace: inPlace, scratch: scratchBlocks, threadScratch: threadScratch, inputOffset: buffers[0].offset,
                          arenaFloats: arena, lowerBoundFloats: peak,
                          threadScratchFloats: aligned(threadScratch.values.max() ?? 0), reuse: reuse)
    }
}
