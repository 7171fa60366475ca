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
    static func checkNoOverlap(_ plan: KernelPlan) -> [String] {
        struct Instance { var offset: Int; var floats: Int; var first: Int; var last: Int; var inPlaceOver: Int? = nil }
        let elementwise: Set<String> = ["add", "sub", "mul", "div", "gelu", "silu", "sigmoid", "softplus", "relu", "exp", "neg"]
        func floats(_ shape: SymbolicShape) -> Int { shape.map { $0.value(h8: plan.maxH8, w8: plan.maxW8) }.reduce(1, *) }
        var instances: [Instance] = [Instance(offset: plan.inputOffset, floats: floats(plan.inputShape), first: 0, last: 0)]
        var current: [Int: Int] = [plan.inputOffset: 0]   // offset -> index of the live instance written there
        func read(_ offset: Int, at k: Int) -> String? {
            guard let i = current[offset] else { return "kernel \(k) reads offset \(offset) before anything is written there" }
            instances[i].last = max(instances[i].last, k)
            return nil
        }
        var problems: [String] = []
        var instanceOf: [ValueID: Int] = [:]   // value written by a kernel -> its instance
        for kernel in plan.kernels {
            for (i, operand) in kernel.operands.enumerated() {
                guard case .workspace(let off) = operand.storage else { continue }
                // A value some kernel wrote must still be the one at its offset (nothing wrote over it since).
                if let mine = instanceOf[kernel.op.operands[i]], current[off] != mine {
                    problems.append("kernel \(kernel.index) reads %\(kernel.op.operands[i]) at offset \(off) after it was overwritten")
                }
                if let p = read(off, at: kernel.index) { problems.append(p) }
            }
            if case .workspace(let off) = kernel.result.storage, instanceOf[kernel.op.result] == nil {
                var instance = Instance(offset: off, floats: floats(kernel.result.shape), first: kernel.index, last: kernel.index)
                if elementwise.contains(kernel.op.kind.name), let previous = current[off],
                   kernel.operands.contains(where: { $0.storage == kernel.result.storage && $0.shape == kernel.result.shape }) {
                    instance.inPlaceOver = previous
                }
                instances.append(instance)
                current[off] = instances.count - 1
                instanceOf[kernel.op.result] = instances.count - 1
            }
        }
        if case .workspace(let off) = plan.outputStorage, let p = read(off, at: plan.kernels.count + 1) { problems.append(p) }
        for i in instances.indices {
            for j in instances.indices where j > i {
                let (a, b) = (instances[i], instances[j])
                // In place: b overwrote a at a's last reader, element by element, and nobody reads a after it.
                if b.inPlaceOver == i && a.last == b.first && a.offset == b.offset && a.floats == b.floats { continue }
                let liveTogether = a.first <= b.last && b.first <= a.last
                let overlap = a.offset < b.offset + b.floats && b.offset < a.offset + a.floats
                if liveTogether && overlap {
                    problems.append("tensors at [\(a.offset), +\(a.floats)) live \(a.first)-\(a.last) and [\(b.offset), +\(b.floats)) live \(b.first)-\(b.last) overlap")
                }
            }
            if instances[i].offset + instances[i].floats > plan.workspaceFloats { problems.append("a tensor runs past the arena") }
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
