/// The pass protocol and the context passes share: the weights they may transform and the statistics they report.
import HybridIR

public protocol Pass {
    /// The kebab-case name used on the command line (`expand-blocks`).
    static var name: String { get }
    /// One line for `--list-passes`.
    static var summary: String { get }
    init()
    func run(_ graph: inout Graph, _ context: PassContext) throws
}

/// What a pass can read and change besides the graph.
public final class PassContext {
    /// Weights by key; passes that transform weights (fold-constants, later) add new keys here.
    public var weights: WeightStore
    /// Statistics of the pass being run, by name ("blocks expanded": 12); collected per pass by the manager.
    public var statistics: [(String, Int)] = []
    /// Per-op lines of the pass being run, for choices a count cannot show (which scan form ran where and why).
    public var notes: [String] = []
    /// The target's threads, floats per vector register and L1 data cache, for passes whose choices depend on the
    /// machine (`chunk-selective-scan`). The defaults describe the development host: 2 cores, AVX2, 32 KiB L1.
    public var threads = 2
    public var vectorWidth = 8
    public var l1dBytes = 32 * 1024
    /// Vector registers and L2 size, for the GEMM micro-kernel's tile (GemmTiles.choose).
    public var vectorRegisters = 16
    public var l2Bytes = 1024 * 1024

    public init(weights: WeightStore = [:]) { self.weights = weights }

    public func record(_ name: String, _ value: Int) {
        if let i = statistics.firstIndex(where: { $0.0 == name }) {
            statistics[i].1 += value
        } else {
            statistics.append((name, value))
        }
    }

    public func note(_ line: String) { notes.append(line) }
}
