/// The work behind each `hybridc` subcommand; the executable only parses arguments and calls these.
import Foundation
import Frontend
import HybridIR

public enum Commands {
    /// `hybridc check`: validates the spec (and weights) and returns the report text plus warnings.
    public static func check(spec: String, weights: WeightSource?, input: InputSize?) throws -> (report: String, warnings: [String]) {
        let model = try ModelLoader.load(spec, weights: weights, input: input)
        var report = try CheckReport(model: model, source: spec).text
        if case .file(let path)? = weights {
            report += "\nweights: \(path) matches the model (\(model.weights.count) tensors)\n"
        }
        return (report, model.warnings)
    }

    /// `hybridc interpret`: runs the reference interpreter on a `.npy` image and writes the result.
    public static func interpret(spec: String, weights: WeightSource, input: String, output: String) throws -> [String] {
        let image = try Npy.read(path: input)
        guard image.rank == 3 || image.rank == 4 else {
            throw HybridError("the image must have shape (1, C, H, W) or (C, H, W), got \(image.shape)", at: input)
        }
        if image.rank == 4 && image.shape[0] != 1 {
            throw HybridError("the image must have batch size 1, got shape \(image.shape)", at: input)
        }
        let s = Array(image.shape.suffix(3))
        let model = try ModelLoader.load(spec, weights: weights,
                                         input: InputSize(channels: s[0], height: s[1], width: s[2]), inputSource: input)
        let result = try Interpret.run(model: model, image: image, source: input)
        try Npy.write(result, to: output)
        return model.warnings
    }

    /// `hybridc weights`: writes a model's seeded weights as safetensors (to feed other frameworks the same weights).
    public static func exportWeights(spec: String, seed: UInt64, output: String) throws -> (count: Int, warnings: [String]) {
        let model = try ModelLoader.load(spec, weights: .random(seed: seed), input: nil)
        try Safetensors.write(model.weights, metadata: ["generator": "hybridc --random-weights \(seed)"], to: output)
        return (model.weights.count, model.warnings)
    }

    /// `hybridc profile`: see Profile.swift.
    public static func profile(_ options: ProfileOptions, progress: (String) -> Void) throws -> (report: String, warnings: [String]) {
        try Profile.run(options, progress: progress)
    }
}
