/// The workspace arena: an independent check that no two live tensors overlap, and its size against the lower
/// bound (the largest set of tensors live at once).
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import Passes
import XCTest

final class MemoryPlanTests: XCTestCase {
    /// Rebuilds every tensor's lifetime from the kernels alone (who writes an offset, who reads it last) and
    /// checks that tensors alive at the same time occupy disjoint ranges.
    /// One exception: an elementwise kernel (each output element from the operands' elements at its own index)
    /// may write its result exactly over an operand of the same shape whose last reader it is (in place).
    /// Views: a kernel may read a range that several live tensors tile exactly, one after another (a free
    /// concatenation: its operands were written into its slot); each of them is then read by that kernel, and an
    /// elementwise kernel may write in place over all of them at their last reader.
    /// Slice views: a kernel may also read a range inside one live tensor (a slice view of it: no kernel copied it).
    /// Offsets that depend on the image size are checked at the compiled maximum and at the smallest size.
    static func checkNoOverlap(_ plan: KernelPlan) -> [String] {
        let sizes = plan.imageMode ? [(plan.maxH8, plan.maxW8), (1, 1)] : [(plan.maxH8, plan.maxW8)]
        return sizes.flatMap { size in checkNoOverlap(plan, h8: size.0, w8: size.1).map { "at h8=\(size.0) w8=\(size.1): \($0)" } }
    }

    static func checkNoOverlap(_ plan: KernelPlan, h8: Int, w8: Int) -> [String] {
        struct Instance { var offset: Int; var floats: Int; var first: Int; var last: Int; var inPlaceOver: [Int] = [] }
        let elementwise: Set<String> = ["add", "sub", "mul", "div", "gelu", "silu", "sigmoid", "softplus", "relu", "exp", "neg"]
        func floats(_ shape: SymbolicShape) -> Int { shape.map { $0.value(h8: h8, w8: w8) }.reduce(1, *) }
        var instances: [Instance] = [Instance(offset: plan.inputOffset, floats: floats(plan.inputShape), first: 0, last: 0)]
        var current: [Int: Int] = [plan.inputOffset: 0]   // offset -> index of the live instance written there
        /// Marks the instances that tile [offset, offset + count) as read by kernel `k`; returns them, or a problem.
        /// Unless the operand is a value a kernel wrote (`direct`), a range inside one tensor written after every
        /// tile of the range (a slice view of it) reads that tensor.
        func read(_ offset: Int, _ count: Int, at k: Int, direct: Bool = false) -> ([Int], String?) {
            var at = offset, tiles: [Int] = [], problem: String?
            repeat {
                guard let i = current[at] else { problem = "kernel \(k) reads offset \(at) before anything is written there"; break }
                tiles.append(i)
                at += instances[i].floats
            } while at < offset + count
            if problem == nil, at != offset + count {
                problem = "kernel \(k) reads [\(offset), +\(count)), which the tensors written there do not tile"
            }
            let container = instances.indices.filter { instances[$0].offset <= offset && offset + count <= instances[$0].offset + instances[$0].floats }
                .max { instances[$0].first < instances[$1].first }
            if !direct, let c = container, problem != nil || tiles.allSatisfy({ instances[$0].first < instances[c].first }) {
                instances[c].last = max(instances[c].last, k)
                return ([c], nil)
            }
            if problem == nil { for i in tiles { instances[i].last = max(instances[i].last, k) } }
            return (tiles, problem)
        }
        var problems: [String] = []
        var instanceOf: [ValueID: Int] = [:]   // value written by a kernel -> its instance
        for kernel in plan.kernels {
            var tiles: [[Int]] = Array(repeating: [], count: kernel.operands.count)
            for (i, operand) in kernel.operands.enumerated() {
                guard let off = operand.storage.workspaceOffset(h8: h8, w8: w8) else { continue }
                // A value some kernel wrote must still be the one at its offset (nothing wrote over it since).
                if let mine = instanceOf[kernel.op.operands[i]], current[off] != mine {
                    problems.append("kernel \(kernel.index) reads %\(kernel.op.operands[i]) at offset \(off) after it was overwritten")
                }
                let (read, problem) = read(off, floats(operand.shape), at: kernel.index,
                                           direct: instanceOf[kernel.op.operands[i]] != nil)
                tiles[i] = read
                if let p = problem { problems.append(p) }
            }
            if let off = kernel.result.storage.workspaceOffset(h8: h8, w8: w8), instanceOf[kernel.op.result] == nil {
                var instance = Instance(offset: off, floats: floats(kernel.result.shape), first: kernel.index, last: kernel.index)
                if elementwise.contains(kernel.op.kind.name),
                   let j = kernel.operands.firstIndex(where: { $0.storage == kernel.result.storage && $0.shape == kernel.result.shape }) {
                    instance.inPlaceOver = tiles[j]
                }
                // A conv2d with a fused residual may overwrite that residual (and only it), element by element.
                if kernel.op.kind == .conv2d, let r = try? Epilogue.convResidual(kernel.op.attributes), r.residual {
                    let j = kernel.operands.count - (r.scaled ? 2 : 1)
                    if kernel.operands[j].storage == kernel.result.storage && kernel.operands[j].shape == kernel.result.shape {
                        instance.inPlaceOver = tiles[j]
                    }
                }
                instances.append(instance)
                current[off] = instances.count - 1
                instanceOf[kernel.op.result] = instances.count - 1
            }
        }
        if let off = plan.outputStorage.workspaceOffset(h8: h8, w8: w8), let p = read(off, floats(plan.outputShape), at: plan.kernels.count + 1).1 {
            problems.append(p)
        }
        for i in instances.indices {
            for j in instances.indices where j > i {
                let (a, b) = (instances[i], instances[j])
                // In place: b overwrote a (or the tensors tiling its operand, a among them) at a's last reader,
                // element by element, and nobody reads a after it.
                if b.inPlaceOver.contains(i) && a.last == b.first && a.offset >= b.offset && a.offset + a.floats <= b.offset + b.floats { continue }
                let liveTogether = a.first <= b.last && b.first <= a.last
                let overlap = a.offset < b.offset + b.floats && b.offset < a.offset + a.floats
                if liveTogether && overlap {
                    problems.append("tensors at [\(a.offset), +\(a.floats)) live \(a.first)-\(a.last) and [\(b.offset), +\(b.floats)) live \(b.first)-\(b.last) overlap")
                }
            }
            if instances[i].offset + instances[i].floats > plan.workspaceFloats { problems.append("a tensor runs past the arena") }
            if instances[i].offset < 0 { problems.append("a tensor starts before the arena") }
        }
        return problems
    }

    func testArenaOfEveryBundledModel() throws {
        let dir = GeneratedProgram.repoRoot.appendingPathComponent("Graphs/models")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".yml") }).sorted() {
            let (plan, _) = try Compile.plan(spec: dir.appendingPathComponent(name).path, weights: .random(seed: 0),
                                             input: try InputSize(parsing: "3x64x64"), target: .host)
            XCTAssertEqual(Self.checkNoOverlap(plan), [], name)
            let ratio = Double(plan.workspaceFloats) / Double(plan.lowerBoundFloats)
            print("\(name): arena \(plan.workspaceFloats * 4) bytes, lower bound \(plan.lowerBoundFloats * 4) bytes, ratio \(ratio)")
            XCTAssertLessThanOrEqual(ratio, 1.10, "\(name): arena \(plan.workspaceFloats) floats vs lower bound \(plan.lowerBoundFloats)")
        }
    }

    /// `-O0` plans without reuse: every slot (tensor or scratch block) has its own range, nothing runs in place,
    /// and the program still matches the checker. Prints the -O0 arena next to the default one.
    /// SS2D's in_proj split into its x and z halves (split-sliced-projections) and out_norm fused into out_proj
    /// (fuse-gated-norm): no slot holds both halves, the z half is written just before out_proj, and the gated
    /// tensor is never written, so the arena of the all-SSM U-Net shrinks by more than a quarter.
    func testSBlockHalvesLiveOnlyAsLongAsTheirReaders() throws {
        let spec = GeneratedProgram.repoRoot.appendingPathComponent("Graphs/models/mambairunet.yml").path
        let input = try InputSize(parsing: "3x64x64")
        let (split, _) = try Compile.plan(spec: spec, weights: .random(seed: 0), input: input, target: .host)
        let (whole, _) = try Compile.plan(spec: spec, weights: .random(seed: 0), input: input, target: .host,
                                          passes: Pipelines.compile.filter { $0 != SplitSlicedProjections.self })
        XCTAssertEqual(Self.checkNoOverlap(split), [])
        XCTAssertFalse(split.kernels.contains { $0.op.kind == .layerNorm }, "a gated out_norm is still written")
        print("mambairunet.yml at 3x64x64: arena \(whole.workspaceFloats * 4) bytes with in_proj whole, \(split.workspaceFloats * 4) split")
        XCTAssertLessThan(4 * split.workspaceFloats, 3 * whole.workspaceFloats)
    }

    func testO0PlanHasNoReuse() throws {
        let dir = GeneratedProgram.repoRoot.appendingPathComponent("Graphs/models")
        for name in ["restormer.yml", "mambairunet.yml"] {
            let spec = dir.appendingPathComponent(name).path
            let size = try InputSize(parsing: "3x64x64")
            let (o0, _) = try Compile.plan(spec: spec, weights: .random(seed: 0), input: size, target: .host, passes: Pipelines.O0)
            let (opt, _) = try Compile.plan(spec: spec, weights: .random(seed: 0), input: size, target: .host)
            XCTAssertEqual(Self.checkNoOverlap(o0), [], name)
            for (i, a) in o0.buffers.enumerated() {
                for b in o0.buffers[(i + 1)...] {
                    XCTAssertFalse(a.offset < b.offset + b.floats && b.offset < a.offset + a.floats, "\(name): -O0 slots share memory")
                }
            }
            XCTAssertEqual(o0.workspaceFloats, o0.buffers.map(\.floats).reduce(0, +), name)
            XCTAssertFalse(o0.kernels.contains { k in k.operands.contains { $0.storage == k.result.storage } }, "\(name): -O0 ran an op in place")
            XCTAssertTrue(opt.kernels.contains { k in k.operands.contains { $0.storage == k.result.storage } }, "\(name): no residual add in place")
            print("\(name) at 3x64x64: -O0 arena \(o0.workspaceFloats * 4) bytes, default arena \(opt.workspaceFloats * 4) bytes")
        }
    }

    /// An in-place add is legal only at its operand's last reader: the checker flags one whose operand is read later.
    func testCheckerFindsAnEarlyInPlaceWrite() throws {
        let g = try Parser.parse("""
            graph @g(%0: f32[1,4,2,2]) {
              %1 = exp(%0) : f32[1,4,2,2]
              %2 = neg(%0) : f32[1,4,2,2]
              %3 = add(%1, %2) : f32[1,4,2,2]
              %4 = add(%3, %1) : f32[1,4,2,2]
              return %4
            }
            """)
        let plan = try KernelPlan(graph: g, shapes: SymbolicShapes.constant(g), weights: [:], imageMode: false, maxH8: 0, maxW8: 0,
                                  target: .host)
        XCTAssertEqual(Self.checkNoOverlap(plan), [])
        // %3 may not overwrite %1, which %4 still reads.
        var broken = plan
        broken.kernels[2].result.storage = broken.kernels[0].result.storage
        broken.kernels[3].operands[0].storage = broken.kernels[0].result.storage
        XCTAssertFalse(Self.checkNoOverlap(broken).isEmpty)
    }

    /// Slice views: channel ranges of one image (of a kernel's result and of the graph's input) are read in place
    /// by their readers, no slice kernel copies them; a slice of a view and a non-contiguous slice are still
    /// kernels. The generated program matches the interpreter bit for bit at 1 and 3 threads, the checker accepts
    /// the plan, and a kernel writing over a slot that a view still reads is caught.
    func testSliceViewsRunLikeTheInterpreter() throws {
        let g = try Parser.parse("""
            graph @slice_views(%0: f32[1,9,5,7]) {
              %1 = neg(%0) : f32[1,9,5,7]
              %2 = slice(%1) {axis = 1, start = 0, size = 4} : f32[1,4,5,7]
              %3 = slice(%1) {axis = 1, start = 4, size = 5} : f32[1,5,5,7]
              %4 = slice(%3) {axis = 1, start = 1, size = 4} : f32[1,4,5,7]
              %5 = slice(%0) {axis = 1, start = 2, size = 4} : f32[1,4,5,7]
              %6 = mul(%2, %4) : f32[1,4,5,7]
              %7 = add(%6, %5) : f32[1,4,5,7]
              %8 = reshape(%7) {shape = [1,4,35]} : f32[1,4,35]
              %9 = slice(%8) {axis = 2, start = 3, size = 20} : f32[1,4,20]
              return %9
            }
            """)
        try GeneratedProgram.requireRunnable(.host)
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let program = dir.appendingPathComponent("views")
        let plan = try Compile.build(graph: g, weights: [:], target: .host, output: program)
        XCTAssertEqual(plan.kernels.map(\.op.kind.name), ["neg", "slice", "mul", "add", "slice"])
        XCTAssertEqual(Self.checkNoOverlap(plan), [])
        var rng = SplitMix64(seed: 11)
        let x = Tensor(shape: [1, 9, 5, 7], data: (0..<315).map { _ in Float(rng.nextUnit() * 2 - 1) })
        let expected = try Interpreter.run(g, inputs: [x], weights: [:])[0]
        let input = dir.appendingPathComponent("in.npy").path, output = dir.appendingPathComponent("out.npy").path
        try Npy.write(x, to: input)
        for threads in [1, 3] {
            let r = try GeneratedProgram.run(program, [input, output, "--threads", "\(threads)"], target: .host)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(try Npy.read(path: output).data, expected.data, "\(threads) threads")
        }
        // The slot of %1 lives until mul reads its view %2: a slice kernel writing there before is caught.
        var broken = plan
        broken.kernels[1].result.storage = broken.kernels[0].result.storage
        XCTAssertFalse(Self.checkNoOverlap(broken).isEmpty)
    }

    /// Concatenation is free in the default plan: no concat kernel, the producers of its operands write at
    /// size-dependent offsets inside its slot (views), and the checker, which sees only kernels, accepts that at
    /// the maximum and the smallest size; `-O0` still copies. Moving one operand inside the slot leaves a gap the
    /// readers of the concat would see: the checker flags it.
    func testConcatenationIsFree() throws {
        let spec = GeneratedProgram.repoRoot.appendingPathComponent("Graphs/models/restormer.yml").path
        let size = try InputSize(parsing: "3x64x64")
        let (opt, _) = try Compile.plan(spec: spec, weights: .random(seed: 0), input: size, target: .host)
        let (o0, _) = try Compile.plan(spec: spec, weights: .random(seed: 0), input: size, target: .host, passes: Pipelines.O0)
        XCTAssertFalse(opt.kernels.contains { $0.op.kind == .concat })
        XCTAssertEqual(o0.kernels.filter { $0.op.kind == .concat }.count, 3)
        let views = opt.kernels.filter { if case .workspaceView = $0.result.storage { return true } else { return false } }
        XCTAssertGreaterThanOrEqual(views.count, 3, "the second operand of each concat is written at base + C·h8·w8")
        XCTAssertEqual(Self.checkNoOverlap(opt), [])
        var broken = opt
        let k = views[0].index - 1
        guard case .workspaceView(let base, let shift) = broken.kernels[k].result.storage else { return XCTFail() }
        broken.kernels[k].result.storage = .workspaceView(base: base + 16, shift: shift)
        XCTAssertFalse(Self.checkNoOverlap(broken).isEmpty)
    }

    /// fused_attention writes only v and its output: its shared scratch is V (C·P) plus the Gram partials, the
    /// attention and M packed for the micro-kernel (small next to P), and q, k (and v before its depthwise) live in
    /// a per-thread ring of three padded image rows of the 1x1 qkv output (3 × 3C × WP), next to a row's norm
    /// statistics when a layer norm is folded in, the packed q/k chunks, the head's row Gram and GEMM packing.
    func testFusedAttentionScratchHoldsOnlyV() {
        let (c, h, w, heads) = (48, 64, 64, 2)
        let d = c / heads, tiles = (h + FusedAttentionTiles.rowsPerTile - 1) / FusedAttentionTiles.rowsPerTile
        var op = Operation(kind: .fusedAttention, operands: [], attributes: ["heads": .int(heads)], result: 0)
        let schedule = Schedule(parallelOver: "", loopOrder: [], vectorWidth: 8)
        let g = GemmTiles.of(schedule)
        let need = ScratchNeeds.of(op, operandShapes: [[1, c, h, w]], resultShape: [1, c, h, w], schedule: schedule)
        let mc = (c + g.mr - 1) / g.mr * g.mr
        XCTAssertEqual(need.shared, c * h * w + 2 * (tiles * (c * d + 2 * c) + c * d) + mc * c)
        // The ring: rows padded to a multiple of the pad plus a pad each side.
        let wp = (w + FusedAttentionTiles.ringPad - 1) / FusedAttentionTiles.ringPad * FusedAttentionTiles.ringPad
            + 2 * FusedAttentionTiles.ringPad
        let dm = (d + g.mr - 1) / g.mr * g.mr, dn = (d + g.nr - 1) / g.nr * g.nr
        let gram = 9 * c * wp + (dm + dn) * FusedAttentionTiles.columnsPerChunk + dm * dn + g.packFloats(k: c, pixels: w)
        XCTAssertEqual(need.perThread, max(gram, g.packFloats(k: c, pixels: h * w)))
        op.attributes["norm"] = .string("with_bias")
        XCTAssertEqual(ScratchNeeds.of(op, operandShapes: [[1, c, h, w]], resultShape: [1, c, h, w], schedule: schedule).perThread,
                       max(gram + 2 * w, g.packFloats(k: c, pixels: h * w)))
    }

    /// fused_feed_forward's per-thread scratch is the layout its kernel carves (FeedForwardTiles): with the AVX-512
    /// tile (MR 8, NR 48), C 96, hidden 255, 64x64, rows 8 (TP = 10·66 = 660 pixels: rows padded by a zero column
    /// on each side) and no recorded hidden block, the block is 32 (4·MR); the carried rows are 2·2·256·66.
    func testFusedFeedForwardScratchIsTheKernelsLayout() {
        let t = GemmTiles.choose(vectorWidth: 16, vectorRegisters: 32, l1dBytes: 48 * 1024, l2Bytes: 2 * 1024 * 1024)
        XCTAssertEqual([t.mr, t.nr, t.kc, t.nc], [8, 48, 104, 240])
        let (c, hidden, h, w) = (96, 255, 64, 64)
        let op = Operation(kind: .fusedFeedForward, operands: [], attributes: ["hidden": .int(hidden), "norm": .string("with_bias")], result: 0)
        let schedule = Schedule(parallelOver: "", tiles: t.tiles.merging(["rows": 8]) { a, _ in a }, loopOrder: [], vectorWidth: 16)
        XCTAssertEqual(FeedForwardTiles.hiddenBlock(schedule, hidden: hidden, input: [1, c, h, w]), 32)
        let need = ScratchNeeds.of(op, operandShapes: [[1, c, h, w]], resultShape: [1, c, h, w], schedule: schedule)
        let panel = 14 * 48 * c, proj = 2 * 32 * (660 + 48 + 16), gs = 11 * 48 + 16, carry = 4 * 256 * 66
        let gates = 32 * gs, sums = c * gs, weights = 2 * 32 * c + c * 32, stats = 2 * 660
        XCTAssertEqual(need.perThread, panel + proj + gates + sums + carry + weights + stats)
        // A recorded block sizes the scratch too.
        var recorded = schedule
        recorded.tiles["hidden_block"] = 64
        XCTAssertEqual(ScratchNeeds.of(op, operandShapes: [[1, c, h, w]], resultShape: [1, c, h, w], schedule: recorded).perThread,
                       panel + 2 * 64 * (660 + 48 + 16) + 64 * gs + sums + carry + 2 * 64 * c + c * 64 + stats)
        // The row tile: row_tile where the tile's working set fits in 3/4 of L2, shorter where it does not (C 96 at
        // width 256 with a 2 MiB L2: 3 rows).
        XCTAssertEqual(FeedForwardTiles.rows(rowTile: 8, channels: c, outChannels: c, width: w, hiddenBlock: 32, l2Bytes: 2 << 20), 8)
        XCTAssertEqual(FeedForwardTiles.rows(rowTile: 8, channels: c, outChannels: c, width: 256, hiddenBlock: 32, l2Bytes: 2 << 20), 3)
        XCTAssertEqual(FeedForwardTiles.rows(rowTile: 2, channels: c, outChannels: c, width: 256, hiddenBlock: 32, l2Bytes: 2 << 20), 2)
        XCTAssertEqual(FeedForwardTiles.rows(rowTile: 8, channels: 4096, outChannels: c, width: 256, hiddenBlock: 32, l2Bytes: 2 << 20), 1)
        XCTAssertEqual(FeedForwardTiles.hiddenBlock(hidden: hidden, rows: 8, height: h, width: w, mr: 8, l2Bytes: 2 * 1024 * 1024), 32)
        XCTAssertEqual(FeedForwardTiles.hiddenBlock(hidden: 5, rows: 8, height: h, width: w, mr: 8, l2Bytes: 2 * 1024 * 1024), 8)
    }

    /// The checker itself catches an overlap.
    func testCheckerFindsAnOverlap() throws {
        let (plan, _) = try Compile.plan(spec: GeneratedProgram.repoRoot.appendingPathComponent("Graphs/tests/tiny-t.yml").path,
                                         weights: .random(seed: 0), input: try InputSize(parsing: "3x16x16"), target: .host)
        XCTAssertEqual(Self.checkNoOverlap(plan), [])
        var broken = plan
        // Put the second kernel's output where the first kernel's output lives while it is still read.
        broken.kernels[1].result.storage = broken.kernels[0].result.storage
        XCTAssertFalse(Self.checkNoOverlap(broken).isEmpty)
    }
}
