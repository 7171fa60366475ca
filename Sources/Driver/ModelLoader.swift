/// Loads what every command starts from: a spec (or text IR), its weights, and the graph for one input size.
import Foundation
import Frontend
import HybridIR
import Passes
import Codegen

public struct LoadedModel {
    public var spec: ModelSpec?
    /// The frontend's graph (block ops), typed.
    public var graph: Graph
    public var weights: WeightStore
    public var warnings: [String]
    public var input: InputSize
}

public enum WeightSource: Equatable {
    case file(String)
    case random(seed: UInt64)
}

public enum ModelLoader {
    /// Reads `path` (a `.yml` spec or `.hir` text IR), builds the graph at `input` (default: the spec's
    /// inp_channels x 256 x 256, padded to multiples of 8) and binds the weights (none when `weights` is nil).
    /// `inputSource` names the image the size came from, for messages.
    public static func load(_ path: String, weights: WeightSource?, input: InputSize? = nil,
                            inputSource: String = "") throws -> LoadedModel {
        if path.hasSuffix(".hir") {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw HybridError("cannot read the IR file", at: path)
            }
            var graph = try Parser.parse(text, source: path)
            try PassManager([InferShapes.self]).run(&graph, PassContext())
            let store = try weights.map { try bind(graph, $0) } ?? [:]
            let t = graph.inputs.first?.type.shape ?? []
            let size = t.count == 4 ? InputSize(channels: t[1], height: t[2], width: t[3]) : InputSize(channels: 0, height: 0, width: 0)
            return LoadedModel(spec: nil, graph: graph, weights: store, warnings: [], input: size)
        }
        let (spec, warnings) = try ModelSpecReader.load(path: path)
        let size = input ?? InputSize(channels: spec.inpChannels, height: 256, width: 256)
        guard size.channels == spec.inpChannels else {
            throw HybridError("the input has \(size.channels) channels but the model takes inp_channels = \(spec.inpChannels)",
                              at: inputSource)
        }
        let padded = size.padded
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            .map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let graph = try UNetBuilder.build(spec, height: padded.height, width: padded.width, name: String(name))
        let store = try weights.map { try bind(graph, $0) } ?? [:]
        return LoadedModel(spec: spec, graph: graph, weights: store, warnings: warnings, input: size)
    }

    static func bind(_ graph: Graph, _ source: WeightSource) throws -> WeightStore {
        switch source {
        case .random(let seed):
            return RandomWeights.generate(for: graph, seed: seed)
        case .file(let path):
            let store = try Safetensors.read(path: path)
            return try WeightBinder.bind(graph, store, source: path)
        }
    }

    /// Runs `passes` on the graph; passes may transform weights (folding, packing), so both come back.
    /// `target` gives the passes that depend on the machine its threads, vector width and L1 size.
    public static func optimize(_ graph: Graph, weights: WeightStore, passes: [Pass.Type],
                                target: Target? = nil) throws -> (Graph, WeightStore) {
        var g = graph
        let context = PassContext(weights: weights)
        if let target {
            context.threads = target.cores
            context.vectorWidth = target.vectorWidth
            context.l1dBytes = target.l1dBytes
            context.vectorRegisters = target.vectorRegisters
            context.l2Bytes = target.l2Bytes
        }
        try PassManager(passes).run(&g, context)
        try Verifier.verify(g, Verifier.Options(requireTypes: true, allowBlockOps: false))
        return (g, context.weights)
    }

    /// The graph lowered to primitive ops (infer-shapes, expand-blocks, infer-shapes), verified after each pass.
    public static func lower(_ graph: Graph, weights: WeightStore) throws -> Graph {
        var g = graph
        try PassManager(Pipelines.lower).run(&g, PassContext(weights: weights))
        try Verifier.verify(g, Verifier.Options(requireTypes: true, allowBlockOps: false))
        return g
    }
}
