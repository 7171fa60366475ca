/// The workspace arena: an independent check that no two live tensors overlap, and its size against the lower
/// bound (the largest set of tensors live at once).
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import XCTest

final class MemoryPlanTests: XCTestCase {
    /// Rebuilds every tensor's lifetime from the kernels alone (who writes an offset, who reads it last) and
    /// checks that tensors alive at the same time occupy disjoint ranges.
    static func checkNoOverlap(_ plan: KernelPlan) -> [String] {
        struct Instance { var offset: Int; var floats: Int; var first: Int; var last: Int }
        func floats(_ shape: SymbolicShape) -> Int { shape.map { $0.value(h8: plan.maxH8, w8: plan.maxW8) }.reduce(1, *) }
        var instances: [Instance] = [Instance(offset: plan.inputOffset, floats: floats(plan.inputShape), first: 0, last: 0)]
        var current: [Int: Int] = [plan.inputOffset: 0]   // offset -> index of the live instance written there
        func read(_ offset: Int, at k: Int) -> String? {
            guard let i = current[offset] else { return "kernel \(k) reads offset \(offset) before anything is written there" }
            instances[i].last = max(instances[i].last, k)
            return nil
        }
        var problems: [String] = []
        for kernel in plan.kernels {
            for operand in kernel.operands {
                if case .workspace(let off) = operand.storage, let p = read(off, at: kernel.index) { problems.append(p) }
            }
            if case .workspace(let off) = kernel.result.storage {
                instances.append(Instance(offset: off, floats: floats(kernel.result.shape), first: kernel.index, last: kernel.index))
                current[off] = instances.count - 1
            }
        }
        if case .workspace(let off) = plan.outputStorage, let p = read(off, at: plan.kernels.count + 1) { problems.append(p) }
        for i in instances.indices {
            for j in instances.indices where j > i {
                let (a, b) = (instances[i], instances[j])
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
