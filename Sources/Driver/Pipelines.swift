/// The named pass pipelines: plain lists, the only place where pass order lives.
import HybridIR
import Passes

public enum Pipelines {
    /// From the frontend's block-level graph to primitive ops the interpreter runs.
    public static let lower: [Pass.Type] = [InferShapes.self, ExpandBlocks.self, InferShapes.self]

    public static let named: [String: [Pass.Type]] = [
        "lower": lower,
        "default": lower,
    ]

    /// Passes from a comma-separated list of names; unknown names list the known ones.
    public static func parse(list: String) throws -> [Pass.Type] {
        try list.split(separator: ",").map { raw in
            let name = raw.trimmingCharacters(in: .whitespaces)
            guard let pass = PassRegistry.named(name) else {
                throw HybridError("unknown pass '\(name)'; known passes: \(PassRegistry.all.map { $0.name }.joined(separator: ", "))")
            }
            return pass
        }
    }
}

import Foundation
