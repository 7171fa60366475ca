/// From a lowered graph to what the C file needs: weight-only ops folded into constants, one kernel per
/// remaining op (reshapes become views), and every intermediate placed in one workspace arena.
import HybridIR

/// Where a kernel operand lives.
public enum Storage: Equatable {
    /// Offset in floats into the workspace.
    case workspace(Int)
    /// Offset in bytes into the weights blob.
    case constant(Int)
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
    static let alignFloats = 16

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

        // 1. Constants: weights, and ops computed from constants alone (evaluated now, once).
        var constantValues: [ValueID: Tensor] = [:]
        var constantNames: [ValueID: String] = [:]
        var constants: [(String, Tensor, Int)] = []
        var blob = KernelPlan.blobHeaderBytes
        func addConstant(_ id: ValueID, _ name: String, _ t: Tensor) {
            constantValues[id] = t
            if let existing = constants.first(where: { $0.0 == name }) {
                constantNames[id] = existing.0
                return
            }
            constantNames[id] = name
            constants.append((name, t, blob))
            blob += (t.count * 4 + 63) / 64 * 64
        }
        // 2. Views: a reshape of a workspace value shares its buffer.
        var root: [ValueID: ValueID] = [:]
        var kernelOps: [Operation] = []
        for op in graph.ops {
            if op.kind == .weight {
                let key = try op.attributes.string("name")
                guard let t = weights[key] else { throw HybridError("weight '\(key)' is not bound", at: op.label) }
                addConstant(op.result, key, t)
            } else if foldConstants && !op.operands.isEmpty && op.operands.allSatisfy({ constantValues[$0] != nil }) {
                let t = try Interpreter.evaluate(op, op.operands.map { constantValues[$0]! }, weights: weights)
                addConstant(op.result, "folded.\(op.scope.isEmpty ? "" : op.scope + ".")\(op.kind.name).\(op.result)", t)
            } else if op.kind == .reshape {
                root[op.result] = root[op.operands[0]] ?? op.operands[0]
            } else {
                kernelOps.append(op)
            }
        }
        let constantList = constants.map { (name: $0.0, tensor: $0.1, offset: $0.2) }
        self.constants = constantList
        blobBytes = blob

        // 3. Buffers and lifetimes, in kernel order (kernel 0 copies the input in; the last copies the output out).
        // A kernel's scratch is a buffer live during that kernel only, keyed by a negative id: -(kernel index).
        var defAt: [ValueID: Int] = [input: 0]
        var lastUse: [ValueID: Int] = [input: 0]
        var scratchFloats: [ValueID: Int] = [:]
        for (i, op) in kernelOps.enumerated() {
            defAt[op.result] = i + 1
            for v in op.operands { let r = root[v] ?? v; if constantValues[r] == nil { lastUse[r] = i + 1 } }
            let maxShapes = op.operands.map { shapes[$0]!.map { $0.value(h8: maxH8, w8: maxW8) } }
            let extra = KernelEmitter.scratchFloats(op, operandShapes: maxShapes)
            if extra > 0 {
                scratchFloats[-(i + 1)] = extra
                defAt[-(i + 1)] = i + 1
                lastUse[-(i + 1)] = i + 1
            }
        }
        let finalValue = root[graph.outputs[0]] ?? graph.outputs[0]
        guard constantValues[finalValue] == nil else { throw HybridError("the graph's output is a constant") }
        lastUse[finalValue] = kernelOps.count + 1
        // Scratch blocks of multi-kernel ops: pseudo-values -(step) that live only during their op's step.
        for (i, op) in kernelOps.enumerated() where op.kind == .fusedAttention {
            let x = shapes[op.operands[0]]!.map { $0.value(h8: maxH8, w8: maxW8) }
            scratchFloats[-(i + 1)] = KernelEmitter.fusedAttentionScratchFloats(x: x, heads: try op.attributes.int("heads"))
            defAt[-(i + 1)] = i + 1
            lastUse[-(i + 1)] = i + 1
        }
        func floats(_ v: ValueID) -> Int {
            if let n = scratchFloats[v] {
                return (n + KernelPlan.alignFloats - 1) / KernelPlan.alignFloats * KernelPlan.alignFloats
            }
            return (shapes[v]!.map { $0.value(h8: maxH8, w8: maxW8) }.reduce(1, *) + KernelPlan.alignFloats - 1)
                / KernelPlan.alignFloats * KernelPlan.alignFloats
        }
        // Greedy by size (largest first, each at the lowest offset free for its whole lifetime): big tensors
        // claim the arena first and small ones fill the gaps between them. Ties break by definition, then id.
        let bufferOrder = defAt.keys.sorted { a, b in
            floats(a) != floats(b) ? floats(a) > floats(b) : (defAt[a]!, a) < (defAt[b]!, b)
        }
        var placed: [(v: ValueID, offset: Int, size: Int, from: Int, to: Int)] = []
        for v in bufferOrder {
            let (from, to, size) = (defAt[v]!, lastUse[v] ?? defAt[v]!, floats(v))
            let live = placed.filter { $0.from <= to && from <= $0.to }.sorted { $0.offset < $1.offset }
            var offset = 0
            for p in live where offset + size > p.offset && p.offset + p.size > offset { offset = p.offset + p.size }
            // Moving past one block can collide with an earlier one: repeat until nothing overlaps.
            var moved = true
            while moved {
                moved = false
                for p in live where offset + size > p.offset && p.offset + p.size > offset {
                    offset = p.offset + p.size
                    moved = true
                }
            }
            placed.append((v, offset, size, from, to))
        }
        workspaceFloats = placed.map { $0.offset + $0.size }.max() ?? 0
        buffers = placed.map { (offset: $0.offset, floats: $0.size, first: $0.from, last: $0.to) }
        var peak = 0
        for step in 0...(kernelOps.count + 1) {
            peak = max(peak, placed.filter { $0.from <= step && step <= $0.to }.map(\.size).reduce(0, +))
        }
        lowerBoundFloats = peak
        let offsets = Dictionary(uniqueKeysWithValues: placed.map { ($0.v, $0.offset) })
        func storage(_ v: ValueID) -> Storage {
            let r = root[v] ?? v
            if let name = constantNames[r] ?? constantNames[v] {
                return .constant(constantList.first { $0.name == name }!.offset)
            }
            return .workspace(offsets[r]!)
        }
        inputOffset = offsets[input]!
        outputStorage = storage(graph.outputs[0])

        // 4. Kernels with their schedules.
        let target = self.target
        var kernels: [Kernel] = []
        for (i, op) in kernelOps.enumerated() {
            let operandShapes = op.operands.map { types[$0]!.shape }
            let phases: [String?] = op.kind == .fusedAttention ? KernelEmitter.fusedAttentionPhases : [nil]
            for phase in phases {
                let index = kernels.count + 1
                var ops = [op.kind.name]
                if let fuses = try? op.attributes.string("fuses") { ops = fuses.split(whereSeparator: { $0 == "," || $0 == "+" }).map(String.init) }
                kernels.append(Kernel(index: index, name: "k\(index)_\(op.kind.name)" + (phase.map { "_\($0)" } ?? ""),
                                      ops: ops, op: op,
                                      operands: op.operands.map { (storage($0), shapes[$0]!) },
                                      result: (storage(op.result), shapes[op.result]!),
                                      schedule: DefaultScheduler.schedule(op, operandShapes: operandShapes, target: target),
                                      phase: phase, scratch: offsets[-(i + 1)], step: i + 1,
                                      phases: op.kind == .fusedAttention ? 1 : KernelEmitter.phases(of: op)))
                kernels[kernels.count - 1].scratchFloats = KernelPlan.scratchFloats(
                    op, schedule: kernels[kernels.count - 1].schedule,
                    shape: shapes[op.result]!.map { $0.value(h8: maxH8, w8: maxW8) })
            }
        }
        self.kernels = kernels
        scratchFloatsPerThread = ((kernels.map(\.scratchFloats).max() ?? 0) + KernelPlan.alignFloats - 1)
            / KernelPlan.alignFloats * KernelPlan.alignFloats
    }

    /// Per-thread scratch of a kernel in floats, given its result shape at the maximum size.
    static func scratchFloats(_ op: Operation, schedule: Schedule, shape: [Int]) -> Int {
        switch op.kind {
        case .fusedFeedForward:
            // The project_in tile with its halo, 2h × (rows + 2) × W, and two rows of W for the depthwise outputs.
            let hidden = (try? op.attributes.int("hidden")) ?? 0
            let (h, w) = (shape[2], shape[3])
            // A folded layer norm adds the tile's per-pixel mean and 1/σ, 2 × (rows + 2) × W.
            let norm = op.attributes["norm"] == nil ? 0 : 2 * (min(schedule.tile("rows"), h) + 2) * w
            return 2 * hidden * (min(schedule.tile("rows"), h) + 2) * w + 2 * w + norm
        default:
            return 0
        }
    }
}
