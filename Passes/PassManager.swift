/// Runs a list of passes in order, verifying after each and reporting what each did (IR dumps, timing, statistics).
import Foundation
import HybridIR

public struct PassManager {
    public struct Options {
        /// Run the verifier after every pass (always on in tests and debug builds).
        public var verifyEach = true
        public init(verifyEach: Bool = true) { self.verifyEach = verifyEach }
    }

    /// What one pass did.
    public struct Record {
        public var pass: String
        public var seconds: Double
        public var changed: Bool
        public var statistics: [(String, Int)]
        /// The pass's per-op lines (`PassContext.note`).
        public var notes: [String] = []
        public var graphAfter: Graph
    }

    public var passes: [Pass.Type]
    public var options: Options

    public init(_ passes: [Pass.Type], options: Options = Options()) {
        self.passes = passes
        self.options = options
    }

    /// Runs every pass; `after` sees each pass's record as soon as it finishes.
    @discardableResult
    public func run(_ graph: inout Graph, _ context: PassContext,
                    after: (Record) -> Void = { _ in }) throws -> [Record] {
        var records: [Record] = []
        for pass in passes {
            let before = graph
            context.statistics = []
            context.notes = []
            let start = DispatchTime.now()
            do {
                try pass.init().run(&graph, context)
            } catch let e as HybridError {
                throw HybridError("\(pass.name): \(e.message)", at: e.location)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            if options.verifyEach {
                do {
                    try Verifier.verify(graph, Verifier.Options(requireTypes: true, allowBlockOps: true))
                } catch let e as HybridError {
                    throw HybridError("the graph after \(pass.name) is invalid: \(e.message)", at: e.location)
                }
            }
            let record = Record(pass: pass.name, seconds: seconds, changed: graph != before,
                                statistics: context.statistics, notes: context.notes, graphAfter: graph)
            records.append(record)
            after(record)
        }
        return records
    }
}
