/// `hybridc profile`: compiles a model, runs the program with its profiler on a generated (or given) image, and
/// reports the per-kernel table (time, GFLOP/s, GB/s, fraction of the roofline, bound), the time per T / S block
/// and stage, and on request a Chrome trace, a roofline SVG and, for aarch64, llvm-mca's estimate of every hot
/// NEON loop on the Oryon core.
import Codegen
import Foundation
import Frontend
import HybridIR

public struct ProfileOptions {
    public var spec: String
    public var weights: WeightSource
    public var input: InputSize?
    /// An image to run on (.png or .npy) instead of a generated one.
    public var image: String?
    public var threads: Int
    public var repeats: Int = 1
    public var trace: String?
    public var roofline: String?
    public var json: String?
    public var target: Target
    public var mca = false
    /// Where to keep the program (default: a temporary folder, removed).
    public var output: String?
    public var recalibrate = false

    public init(spec: String, weights: WeightSource, input: InputSize?, threads: Int, target: Target) {
        self.spec = spec
        self.weights = weights
        self.input = input
        self.threads = threads
        self.target = target
    }
}

/// One row of the program's `--json` table.
public struct ProfileKernel: Equatable {
    public var index: Int
    public var name, ops, scope, bound: String
    public var calls: Int
    public var totalMs, flops, bytes, gflops, gbps, intensity, roofFraction: Double
}

public struct ProfilePeaks: Equatable {
    public var fmaGflops, copyGbps: Double
}

public enum Profile {
    public static let mcaTool = "llvm-mca-19"

    /// Checks the options before any work: --mca needs the aarch64 target and llvm-mca-19.
    public static func validate(_ o: ProfileOptions) throws {
        if o.threads < 1 || o.threads > 256 { throw HybridError("--threads takes an integer from 1 to 256, not \(o.threads)") }
        if o.repeats < 1 { throw HybridError("--repeat takes a positive integer, not \(o.repeats)") }
        if o.mca {
            guard o.target.isa == .neon else {
                throw HybridError("--mca estimates the generated NEON loops on the Oryon core: it needs --target aarch64 (got \(o.target.name))")
            }
            guard Toolchain.available(mcaTool) else {
                throw HybridError("--mca needs \(mcaTool), which is not installed (apt-get install llvm-19; see scripts/setup.sh)")
            }
        }
        for (flag, path, ext) in [("--trace", o.trace, ".json"), ("--json", o.json, ".json"), ("--roofline", o.roofline, ".svg")] {
            if let path, path.isEmpty || !path.lowercased().hasSuffix(ext) {
                throw HybridError("\(flag) takes a file name ending in \(ext), not '\(path)'")
            }
        }
        if let image = o.image {
            guard image.lowercased().hasSuffix(".png") || image.lowercased().hasSuffix(".npy") else {
                throw HybridError("--image must be a .png or .npy file, not '\(image)'")
            }
            guard FileManager.default.fileExists(atPath: image) else { throw HybridError("cannot read the image", at: image) }
        }
    }

    /// Runs the whole profile; `progress` gets short status lines. Returns the report text.
    public static func run(_ o: ProfileOptions, progress: (String) -> Void) throws -> (report: String, warnings: [String]) {
        try validate(o)
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("hybridc-profile-\(UUID().uuidString)")
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: work) }
        let program = o.output ?? work.appendingPathComponent("model").path

        progress("compiling \(URL(fileURLWithPath: o.spec).lastPathComponent) for \(o.target.name)...")
        let compile = CompileOptions(spec: o.spec, weights: o.weights, input: o.input, target: o.target, output: program)
        let result = try Compile.run(compile)
        var report = ""
        let spec = try? ModelLoader.load(o.spec, weights: nil, input: o.input).spec

        if o.target.runner.isEmpty {
            // The image: given, or generated at the compiled size (a smooth seeded pattern in [0, 1]).
            let image: String
            if let given = o.image {
                image = given
            } else {
                guard result.plan.imageMode, result.plan.inputShape.count == 4 else {
                    throw HybridError("hybridc profile runs image models (.yml specs); \(o.spec) is a fixed-shape graph")
                }
                let c = result.plan.inputShape[1].coefficient
                let size = o.input ?? InputSize(channels: c, height: result.plan.maxH8 * 8, width: result.plan.maxW8 * 8)
                image = work.appendingPathComponent("input.npy").path
                try Npy.write(generatedImage(channels: c, height: size.height, width: size.width), to: image)
            }
            let json = work.appendingPathComponent("profile.json").path
            var args = [result.executable.path, image, work.appendingPathComponent("out.npy").path,
                        "--threads", "\(o.threads)", "--repeat", "\(o.repeats)", "--json", json]
            if let trace = o.trace { args += ["--trace", trace] }
            if o.recalibrate { args.append("--recalibrate") }
            progress("running \(URL(fileURLWithPath: image).lastPathComponent) \(o.repeats)x on \(o.threads) thread\(o.threads == 1 ? "" : "s")...")
            let run = try Toolchain.run(args)
            guard run.status == 0 else { throw HybridError("the profiled program failed:\n\(run.output)") }
            // The program's table (stdout and stderr are merged: keep the table and the run line).
            report += run.output.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("profile: calibrating") }.joined(separator: "\n")
            let (peaks, kernels) = try parse(json: json)
            if let spec { report += "\n" + blockSummary(kernels, spec: spec) }
            if let path = o.json {
                do {
                    if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
                    try fm.copyItem(atPath: json, toPath: path)
                } catch { throw HybridError("cannot write \(path): \(error.localizedDescription)") }
                report += "wrote \(path)\n"
            }
            if let trace = o.trace { report += "wrote \(trace) (Chrome trace: open in https://ui.perfetto.dev)\n" }
            if let svg = o.roofline {
                do {
                    try Roofline.svg(kernels, peaks: peaks, title: URL(fileURLWithPath: o.spec).lastPathComponent)
                        .write(toFile: svg, atomically: true, encoding: .utf8)
                } catch { throw HybridError("cannot write \(svg): \(error.localizedDescription)") }
                report += "wrote \(svg)\n"
            }
        } else {
            report += "the \(o.target.name) program is not run here: timings under \(o.target.runner.joined(separator: " ")) mean nothing. "
                + "On the device run: \(URL(fileURLWithPath: program).lastPathComponent) INPUT OUTPUT --profile --json profile.json\n"
            if o.trace != nil || o.roofline != nil || o.json != nil {
                report += "(--trace, --roofline and --json need a run: they are written only for a target that runs here)\n"
            }
        }
        if o.mca {
            progress("llvm-mca on the generated NEON loops...")
            report += "\n" + (try Mca.report(sources: result.sources, target: o.target))
        }
        if o.output != nil { report += "program kept at \(program)\n" }
        return (report, result.warnings)
    }

    /// A deterministic test image: smooth gradients and stripes in [0, 1], (1, C, H, W).
    public static func generatedImage(channels: Int, height: Int, width: Int) -> Tensor {
        var data = [Float](repeating: 0, count: channels * height * width)
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    let v = 0.5 + 0.25 * sin(Double(x) * 0.11 + Double(c)) * cos(Double(y) * 0.07) + 0.2 * Double((x / 8 + y / 8 + c) % 2) - 0.1
                    data[(c * height + y) * width + x] = Float(min(1, max(0, v)))
                }
            }
        }
        return Tensor(shape: [1, channels, height, width], data: data)
    }

    /// Reads the program's `--json` table.
    public static func parse(json path: String) throws -> (ProfilePeaks, [ProfileKernel]) {
        guard let data = fm(path), let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let peaks = root["peaks"] as? [String: Any], let list = root["kernels"] as? [[String: Any]] else {
            throw HybridError("the program's profile JSON is missing or malformed", at: path)
        }
        func num(_ d: [String: Any], _ k: String) -> Double { (d[k] as? NSNumber)?.doubleValue ?? 0 }
        let kernels = list.map { k in
            ProfileKernel(index: Int(num(k, "index")), name: k["name"] as? String ?? "", ops: k["ops"] as? String ?? "",
                          scope: k["scope"] as? String ?? "", bound: k["bound"] as? String ?? "", calls: Int(num(k, "calls")),
                          totalMs: num(k, "total_ms"), flops: num(k, "flops"), bytes: num(k, "bytes"), gflops: num(k, "gflops"),
                          gbps: num(k, "gbps"), intensity: num(k, "intensity"), roofFraction: num(k, "roof_fraction"))
        }
        return (ProfilePeaks(fmaGflops: num(peaks, "fma_gflops"), copyGbps: num(peaks, "copy_gbps")), kernels)
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    private static func fm(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Time per block (T or S, with its stage and U-Net level), from the kernels' IR scopes, and the mean T and S
    /// block per stage; everything outside blocks (embedding, resampling, output) is one line.
    public static func blockSummary(_ kernels: [ProfileKernel], spec: ModelSpec) -> String {
        struct Block { var stage: Stage; var index: Int; var kind: BlockKind; var ms = 0.0; var flops = 0.0 }
        var blocks: [String: Block] = [:]
        var order: [String] = []
        var other = 0.0, otherFlops = 0.0
        for k in kernels {
            var matched = false
            for stage in Stage.allCases where k.scope.hasPrefix(stage.moduleName + ".") {
                let rest = k.scope.dropFirst(stage.moduleName.count + 1)
                guard let i = Int(rest.prefix { $0.isNumber }), i < spec.layout[stage.rawValue].count else { continue }
                let key = "\(stage.moduleName).\(i)"
                if blocks[key] == nil {
                    blocks[key] = Block(stage: stage, index: i, kind: spec.layout[stage.rawValue][i])
                    order.append(key)
                }
                blocks[key]!.ms += k.totalMs
                blocks[key]!.flops += k.flops
                matched = true
                break
            }
            if !matched {
                other += k.totalMs
                otherFlops += k.flops
            }
        }
        let sorted = order.compactMap { blocks[$0] }.sorted { ($0.stage.rawValue, $0.index) < ($1.stage.rawValue, $1.index) }
        func rate(_ flops: Double, _ ms: Double) -> String { ms > 0 ? String(format: "%8.2f", flops / ms * 1e-6) : "       -" }
        var s = "by block (kind T = transformer, S = state-space; level 0 = full resolution):\n"
        s += "block                 kind  level     total ms   GFLOP/s\n"
        for b in sorted {
            s += pad("\(b.stage.moduleName).\(b.index)", 20) + "  " + pad(String(b.kind.rawValue), 4)
                + String(format: "  %5d  %11.3f  ", b.stage.level, b.ms) + rate(b.flops, b.ms) + "\n"
        }
        s += pad("outside blocks", 20) + "  " + pad("", 4) + "  " + pad("", 5) + String(format: "  %11.3f  ", other)
            + rate(otherFlops, other) + "\n"
        s += "mean block per stage:\n"
        for stage in Stage.allCases {
            var parts: [String] = []
            for kind in BlockKind.allCases {
                let bs = sorted.filter { $0.stage == stage && $0.kind == kind }
                guard !bs.isEmpty else { continue }
                let ms = bs.map(\.ms).reduce(0, +) / Double(bs.count)
                parts.append(String(format: "%@ %.3f ms (%d block%@)", String(kind.rawValue) as NSString, ms, bs.count,
                                    (bs.count == 1 ? "" : "s") as NSString))
            }
            if !parts.isEmpty { s += "  \(stage.moduleName) (level \(stage.level)): \(parts.joined(separator: ", "))\n" }
        }
        return s
    }
}
