/// From a lowered graph to what the C file needs: weight-only ops folded into constants, one kernel per
/// remaining op (reshapes become views), and every intermediate placed in one workspace arena.
import HybridIR

/// Where a kernel operand lives.
public enum Storage: Equatable {
    /// Offset in floats into the workspace.
    case workspace(Int)
    /// Offset in floats into the workspace that depends on the image size: `base` plus `shift` (e.g. 48·h8·w8).
    /// An operand of a free concatenation, written by its producer straight into the concat's slot: with a
    /// smaller image the concat uses the front of its slot, so its operands move with the run-time size.
    case workspaceView(base: Int, shift: Dim)
    /// Offset in bytes into the weights blob.
    case constant(Int)

    /// The offset in floats into the workspace at image size (h8, w8); nil for a constant.
    public func workspaceOffset(h8: Int, w8: Int) -> Int? {
        switch self {
        case .workspace(let off): return off
        case .workspaceView(let base, let shift): return base + shift.value(h8: h8, w8: w8)
        case .constant: return nil
        }
    }
}

public struct Kernel {
    public var index: Int
    /// C function name, after the ops it computes: `k12_conv2d`.
    public var name: String
    /// The IR ops it computes, e.g. ["conv2d"].
    public var ops: [String]
    public var op: Operation
    public var operands: [(storage: Storage, shape: SymbolicShape)]
    public var result: (storage: Storage, shape: SymbolicShape)
    public var schedule: Schedule
    /// Ops that run as several C kernels in sequence (`fused_attention`: phases with no barrier inside one kernel)
    /// give each kernel its phase; the phases of one op share a workspace scratch block (offset in floats).
    public var phase: String? = nil
    /// Workspace scratch (offset in floats) of this kernel: shared by the phase kernels of one op, or private
    /// to a kernel of several `phases` (the carry form of the chunked scan). Live during its op's step only.
    public var scratch: Int? = nil
    /// The op's position in the plan's schedule of ops (1-based; the phases of one op share it). Buffer
    /// lifetimes (`KernelPlan.buffers`) are counted in steps.
    public var step: Int = 0
    /// Parallel phases run one after another, each a separate pool run (so a barrier between them); one for most.
    public var phases: Int = 1

    /// The C function of each phase: the kernel's name, or `name_p1`, `name_p2`, ... when it has several.
    public var functionNames: [String] { phases == 1 ? [name] : (1...phases).map { "\(name)_p\($0)" } }
    /// Per-thread scratch this kernel needs, in floats at the maximum image size (0: none).
    public var scratchFloats: Int = 0
    /// Operands holding weights prepacked for the GEMM micro-kernel (MicroKernel.pack: [M/MR][K][MR]).
    public var packedOperands: Set<Int> = []
    /// `--gemm openblas`: this 1x1 convolution calls cblas_sgemm on plain weights.
    public var openBLAS = false

    /// Whether `op` is a 1x1 convolution that `--gemm openblas` routes through cblas_sgemm.
    public static func usesOpenBLAS(_ op: Operation, target: Target) -> Bool {
        guard target.openBLAS, op.kind == .conv2d, op.attributes["norm"] == nil,
              (try? op.attributes.int("groups")) == 1, (try? op.attributes.int("padding")) == 0,
              ((try? op.attributes.int("stride", default: 1)) ?? 1) == 1 else { return false }
        return true
    }
}

public struct KernelPlan {
    public var name: String
    /// Image mode: the input is (1, C, H, W) with H and W chosen at run time up to the compiled maximum.
    public var imageMode: Bool
    public var maxH8: Int
    public var maxW8: Int
    public var inputShape: SymbolicShape
    public var outputShape: SymbolicShape
    public var inputOffset: Int
    public var outputStorage: Storage
    public var kernels: [Kernel]
    /// Constants in blob order with their byte offsets.
    public var constants: [(name: String, tensor: Tensor, offset: Int)]
    public var blobBytes: Int
    /// Arena size in floats at the maximum image size, and the largest set of simultaneously live intermediates.
    public var workspaceFloats: Int
    public var lowerBoundFloats: Int
    /// Every workspace buffer: its offset and size in floats (at the maximum image size) and the kernels that
    /// write it first and read it last, as op steps (0 is the copy-in kernel, the last step the copy-out).
    public var buffers: [(offset: Int, floats: Int, first: Int, last: Int)]
    /// Per-thread scratch slot in floats (the largest any kernel asks for), placed after the arena: thread `tid`
    /// uses floats [tid·slot, (tid+1)·slot) of it. The workspace holds one slot per thread of the context.
    public var scratchFloatsPerThread: Int
    public var target: Target

    public static let blobHeaderBytes = 64

    /// Builds the plan. `shapes` gives every value's symbolic shape. Without `foldConstants` even ops on weights
    /// alone become kernels (kernel tests use this to run every op in generated C).
    public init(graph: Graph, shapes: [ValueID: SymbolicShape], weights: WeightStore, imageMode: Bool,
                maxH8: Int, maxW8: Int, target: Target, foldConstants: Bool = true) throws {
        name = graph.name
        self.imageMode = imageMode
        self.maxH8 = maxH8
        self.maxW8 = maxW8
        self.target = target
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw HybridError("code generation needs a graph with one input and one output, @\(graph.name) has \(graph.inputs.count) and \(graph.outputs.count)")
        }
        let input = graph.inputs[0].id
        inputShape = shapes[input]!
        outputShape = shapes[graph.outputs[0]]!
        let types = graph.valueTypes()

        // 1. Constants (weights, and ops computed from constants alone: the rule of MemoryPlanner.constants),
        //    evaluated now, once, in blob order.
        let constantSet = MemoryPlanner.constants(graph, foldConstants: foldConstants)
        // Constant weights the GEMM micro-kernel reads: stored prepacked in its order (MR from the target's
        // GemmTiles); the plain copy too only when a kernel also reads it unpacked.
        let tiles = GemmTiles.choose(vectorWidth: target.vectorWidth, vectorRegisters: target.vectorRegisters,
                                     l1dBytes: target.l1dBytes, l2Bytes: target.l2Bytes)
        let mr = tiles.mr
        // B of `matmul {transpose_a}` is packed by columns instead ([N/NR][K][NR], ProjectionGemm.packColumns).
        var columnPacked = Set<ValueID>()
        var packedWanted = Set<ValueID>(), plainWanted = Set<ValueID>(graph.outputs)
        // Row groups packed separately (MicroKernel.packedGroups); a value wanted in two layouts stays plain.
        var packedGroups: [ValueID: Int] = [:], conflicting = Set<ValueID>()
        for op in graph.ops where !constantSet.contains(op.result) {
            // 1x1 convs on OpenBLAS (--gemm openblas) read plain weights: only [1, 1] kernels qualify.
            let blas = Kernel.usesOpenBLAS(op, target: target) && op.operands.count > 1
                && types[op.operands[1]].map { $0.shape.count == 4 && $0.shape[2] == 1 && $0.shape[3] == 1 } == true
            let slots = blas ? [] : MicroKernel.packedOperands(op)
            for (i, v) in op.operands.enumerated() where constantSet.contains(v) {
                if slots.contains(i) {
                    packedWanted.insert(v)
                    let g = MicroKernel.packedGroups(op, operand: i)
                    if let old = packedGroups[v], old != g { conflicting.insert(v) }
                    packedGroups[v] = g
                } else {
                    plainWanted.insert(v)
                }
                if slots.contains(i) && ProjectionGemm.packsColumns(op) { columnPacked.insert(v) }
            }
        }
        for v in conflicting { packedWanted.remove(v); plainWanted.insert(v) }
        var packedOffsets: [ValueID: Int] = [:]
        var constantValues: [ValueID: Tensor] = [:]
        var constantNames: [ValueID: String] = [:]
        var constants: [(String, Tensor, Int)] = []
        var blob = KernelPlan.blobHeaderBytes
        func addConstant(_ id: ValueID, _ name: String, _ t: Tensor) {
            constantValues[id] = t
            if packedWanted.contains(id) {
                let columns = columnPacked.contains(id)
                let groups = packedGroups[id] ?? 1
                let packedName = columns ? "\(name).packedcols\(tiles.nr)" : "\(name).packed\(mr)" + (groups > 1 ? "g\(groups)" : "")
                if let existing = constants.first(where: { $0.0 == packedName }) {
                    packedOffsets[id] = existing.2
                } else {
                    packedOffsets[id] = blob
                    let p = columns ? ProjectionGemm.packColumns(t, nr: tiles.nr) : MicroKernel.pack(t, mr: mr, groups: groups)
                    constants.append((packedName, p, blob))
                    blob += (p.count * 4 + 63) / 64 * 64
                }
                if !plainWanted.contains(id) { constantNames[id] = packedName; return }
            }
            if let existing = constants.first(where: { $0.0 == name }) {
                constantNames[id] = existing.0
                return
            }
            constantNames[id] = name
            constants.append((name, t, blob))
            blob += (t.count * 4 + 63) / 64 * 64
        }
        for op in graph.ops where constantSet.contains(op.result) {
            if op.kind == .weight {
                let key = try op.attributes.string("name")
                guard let t = weights[key] else { throw HybridError("weight '\(key)' is not bound", at: op.label) }
                addConstant(op.result, key, t)
            } else {
                let t = try Interpreter.evaluate(op, op.operands.map { constantValues[$0]! }, weights: weights)
                addConstant(op.result, "folded.\(op.scope.isEmpty ? "" : op.scope + ".")\(op.kind.name).\(op.result)", t)
            }
        }
        let constantList = constants.map { (name: $0.0, tensor: $0.1, offset: $0.2) }
        self.constants = constantList
        blobBytes = blob

        // 2. Schedules: the op's `schedule` attribute (schedule-kernels), else the default scheduler.
        func schedule(_ op: Operation) -> Schedule {
            Schedule.annotated(op) ?? DefaultScheduler.schedule(op, operandShapes: op.operands.map { types[$0]!.shape },
                                                                vectorWidth: target.vectorWidth, l1dBytes: target.l1dBytes,
                                                                vectorRegisters: target.vectorRegisters, l2Bytes: target.l2Bytes)
        }

        // 3. The memory plan recorded by plan-memory, else the same planner run now (views, lifetimes, in-place
        //    ops, scratch, offsets at the maximum size).
        func maxShape(_ v: ValueID) -> [Int] { shapes[v]!.map { $0.value(h8: maxH8, w8: maxW8) } }
        func floats(_ v: ValueID) -> Int { maxShape(v).reduce(1, *) }
        let memory = try MemoryPlanner.annotated(graph, floats: floats, foldConstants: foldConstants)
            ?? MemoryPlanner.plan(graph, floats: floats, scratch: { op in
                ScratchNeeds.of(op, operandShapes: op.operands.map(maxShape), resultShape: maxShape(op.result), schedule: schedule(op))
            }, reuse: true, foldConstants: foldConstants)
        workspaceFloats = memory.arenaFloats
        lowerBoundFloats = memory.lowerBoundFloats
        // Slots inside a free concatenation's slot are covered by it (their lifetimes are within its own).
        buffers = memory.buffers.filter { $0.parent == nil }.map { (offset: $0.offset, floats: $0.floats, first: $0.first, last: $0.last) }
        scratchFloatsPerThread = memory.threadScratchFloats
        func storage(_ v: ValueID) throws -> Storage {
            let r = memory.root(v)
            if let name = constantNames[r] ?? constantNames[v] {
                return .constant(constantList.first { $0.name == name }!.offset)
            }
            if let view = memory.sliceViews[v] {
                // A slice view: its source's storage plus start · (the dims after the axis), symbolic; every dim
                // before the axis must be 1 at every size for the range to be contiguous.
                let source = shapes[view.source]!
                guard source.prefix(view.axis).allSatisfy({ $0 == Dim(1) }),
                      let inner = Dim.product(source.suffix(from: view.axis + 1)) else {
                    throw HybridError("the slice %\(v) of %\(view.source) is not one contiguous range at every image size")
                }
                let shift = Dim(view.start * inner.coefficient, h: inner.timesH, w: inner.timesW)
                guard case .workspace(let base) = try storage(view.source) else {
                    throw HybridError("the slice %\(v) views %\(view.source), which has no slot of its own")
                }
                return shift.isConstant ? .workspace(base + shift.coefficient) : .workspaceView(base: base, shift: shift)
            }
            if let place = memory.placedIn[v] ?? memory.placedIn[r] {
                // Inside a free concatenation: the concat's slot plus start · (the dims after the axis), symbolic.
                let base = memory.offsets[place.concat]!
                guard let inner = Dim.product(shapes[place.concat]!.suffix(from: place.axis + 1)) else {
                    throw HybridError("the offset of %\(v) inside the concatenation %\(place.concat) is not one dimension of the image size")
                }
                let shift = Dim(place.start * inner.coefficient, h: inner.timesH, w: inner.timesW)
                return shift.isConstant ? .workspace(base + shift.coefficient) : .workspaceView(base: base, shift: shift)
            }
            return .workspace(memory.offsets[v] ?? memory.offsets[r]!)
        }
        inputOffset = memory.inputOffset
        outputStorage = try storage(graph.outputs[0])

        // 4. Kernels with their schedules and scratch.
        var kernels: [Kernel] = []
        for (i, op) in memory.kernelOps.enumerated() {
            let step = i + 1
            let phases: [String?] = op.kind == .fusedAttention ? KernelEmitter.fusedAttentionPhases : [nil]
            for phase in phases {
                let index = kernels.count + 1
                var ops = [op.kind.name]
                if let fuses = try? op.attributes.string("fuses") { ops = fuses.split(whereSeparator: { $0 == "," || $0 == "+" }).map(String.init) }
                var kernel = Kernel(index: index, name: "k\(index)_\(op.kind.name)" + (phase.map { "_\($0)" } ?? ""),
                                    ops: ops, op: op,
                                    operands: try op.operands.map { (try storage($0), shapes[$0]!) },
                                    result: (try storage(op.result), shapes[op.result]!),
                                    schedule: schedule(op),
                                    phase: phase, scratch: memory.scratch[step]?[0], step: step,
                                    phases: op.kind == .fusedAttention ? 1 : KernelEmitter.phases(of: op))
                kernel.scratchFloats = memory.threadScratch[step] ?? 0
                let w = kernel.operands.count > 1 ? kernel.operands[1].shape.map(\.coefficient) : []
                kernel.openBLAS = Kernel.usesOpenBLAS(op, target: target) && w.count == 4 && w[2] == 1 && w[3] == 1
                for i in MicroKernel.packedOperands(op) where i < op.operands.count && !kernel.openBLAS {
                    if let offset = packedOffsets[memory.root(op.operands[i])] ?? packedOffsets[op.operands[i]] {
                        kernel.operands[i].storage = .constant(offset)
                        kernel.packedOperands.insert(i)
                    }
                }
                kernels.append(kernel)
            }
        }
        self.kernels = kernels
    }
}
