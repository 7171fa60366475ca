/// The hybridc command line: parses arguments and hands the work to Driver.
import ArgumentParser
import Codegen
import Driver
import Foundation
import HybridIR
import Passes

struct Hybridc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hybridc",
        abstract: "Compile hybrid image-restoration networks (Restormer + MambaIR U-Nets) to scheduled C.",
        subcommands: [Compile.self, Opt.self, Check.self, Interpret.self, Weights.self, ProfileCommand.self])
}

/// Where the weights come from: a safetensors file or a seed.
struct WeightOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Weights as safetensors with PyTorch key names.", valueName: "file"))
    var weights: String?

    @Option(name: .customLong("random-weights"), help: ArgumentHelp("Seeded random weights instead of a file.", valueName: "seed"))
    var randomWeights: UInt64?

    func validate() throws {
        if weights != nil && randomWeights != nil {
            throw ValidationError("give either --weights or --random-weights, not both")
        }
    }

    var source: WeightSource? {
        if let weights { return .file(weights) }
        if let randomWeights { return .random(seed: randomWeights) }
        return nil
    }
}

/// Runs `body`, printing warnings and turning a HybridError into a message and exit status 1.
func report(_ body: () throws -> [String]) throws {
    do {
        for warning in try body() { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
    } catch let e as HybridError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode(1)
    }
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile a model to C and build a program that restores images (sources kept in OUT.src/).")

    @Argument(help: ArgumentHelp("Model spec (.yml) or text IR (.hir).", valueName: "spec"))
    var spec: String

    @OptionGroup var weightOptions: WeightOptions

    @Option(name: .long, help: ArgumentHelp("Largest input CxHxW the program takes (default: inp_channels x 256 x 256); larger images are tiled.", valueName: "CxHxW"))
    var input: String?

    @Option(name: .long, help: ArgumentHelp("Target: \(Target.names.joined(separator: ", ")).", valueName: "target"))
    var target: String = "host"

    @Option(name: .shortAndLong, help: ArgumentHelp("The program to write; its sources go to OUT.src/.", valueName: "OUT"))
    var output: String

    @Flag(name: .customLong("O0", withSingleDash: true), help: "Run only the passes code generation needs (expansion, shapes, default schedules, a memory plan without reuse); no optimisation.")
    var noOptimization = false

    @Flag(name: .long, help: "Print the memory plan: arena against its lower bound, per-thread scratch, workspace.")
    var stats = false

    @Option(name: .customLong("disable-pass"), help: ArgumentHelp("Leave a pass out of the pipeline (repeatable).", valueName: "name"))
    var disabledPasses: [String] = []

    @Option(name: .long, help: ArgumentHelp("GEMM backend of 1x1 convolutions: native (the generated micro-kernels) or openblas (cblas_sgemm plus bias/activation passes, links -lopenblas; a reference).", valueName: "native|openblas"))
    var gemm: String = "native"

    func validate() throws {
        if weightOptions.source == nil { throw ValidationError("give --weights FILE or --random-weights SEED") }
        if !["native", "openblas"].contains(gemm) { throw ValidationError("--gemm must be native or openblas, not '\(gemm)'") }
        for name in disabledPasses where PassRegistry.named(name) == nil {
            throw ValidationError("--disable-pass: unknown pass '\(name)'; known passes: \(PassRegistry.all.map { $0.name }.joined(separator: ", "))")
        }
        if Target.named(target) == nil {
            throw ValidationError("unknown target '\(target)'; known targets: \(Target.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        try report {
            let size = try input.map { try InputSize(parsing: $0) }
            var chosen = Target.named(target)!
            chosen.openBLAS = gemm == "openblas"
            var options = CompileOptions(spec: spec, weights: weightOptions.source!, input: size,
                                         target: chosen, output: output)
            options.passes = Pipelines.select(optimize: !noOptimization, disabled: disabledPasses)
            let result = try Driver.Compile.run(options)
            print("wrote \(result.executable.path) (\(result.plan.kernels.count) kernels, target \(result.plan.target.name)); sources in \(result.sources.path)")
            if stats { print(Driver.Compile.statistics(result.plan)) }
            return result.warnings
        }
    }
}

struct Opt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run passes on a model and inspect what each did (IR after each pass, timing, statistics, DOT, C).")

    @Argument(help: ArgumentHelp("Model spec (.yml) or text IR (.hir).", valueName: "spec-or-ir"))
    var input: String?

    @OptionGroup var weightOptions: WeightOptions

    @Option(name: .long, help: ArgumentHelp("Input size CxHxW (default: inp_channels x 256 x 256).", valueName: "CxHxW"))
    var size: String?

    @Option(name: .long, help: ArgumentHelp("A named pipeline (see --list-passes); default: the compile pipeline.", valueName: "name"))
    var pipeline: String?

    @Option(name: .long, help: ArgumentHelp("Comma-separated passes to run instead of a pipeline.", valueName: "a,b,c"))
    var passes: String?

    @Flag(name: .customLong("list-passes"), help: "List every pass with its summary, and the pipelines.")
    var listPasses = false

    @Flag(name: .customLong("print-ir-after-all"), help: "Print the IR after every pass, headed by the pass name.")
    var printAfterAll = false

    @Option(name: .customLong("print-ir-after"), help: ArgumentHelp("Print the IR after this pass (repeatable).", valueName: "pass"))
    var printAfter: [String] = []

    @Flag(name: .customLong("print-ir-after-change"), help: "Print the IR after each pass that changed it, \"(unchanged)\" otherwise.")
    var printAfterChange = false

    @Flag(name: .customLong("time-passes"), help: "Report the time each pass took.")
    var timePasses = false

    @Flag(name: .long, help: "Report each pass's statistics (ops fused, bytes removed, ...).")
    var stats = false

    @Option(name: .customLong("dump-dir"), help: ArgumentHelp("Write one numbered text-IR file per pass into this folder.", valueName: "dir"))
    var dumpDir: String?

    @Option(name: .long, help: ArgumentHelp("What to print at the end: ir, dot (Graphviz, one node per kernel) or c.", valueName: "ir|dot|c"))
    var emit = "ir"

    @Option(name: .long, help: ArgumentHelp("Target for --emit c.", valueName: "target"))
    var target = "host"

    func validate() throws {
        if !listPasses && input == nil { throw ValidationError("give a model spec or text IR file (or --list-passes)") }
        if pipeline != nil && passes != nil { throw ValidationError("give either --pipeline or --passes, not both") }
        if !["ir", "dot", "c"].contains(emit) { throw ValidationError("--emit must be ir, dot or c") }
        if Target.named(target) == nil {
            throw ValidationError("unknown target '\(target)'; known targets: \(Target.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        if listPasses {
            print(Driver.Opt.listPasses(), terminator: "")
            return
        }
        try report {
            var o = OptOptions(input: input!)
            o.weights = weightOptions.source
            o.size = try size.map { try InputSize(parsing: $0) }
            if let pipeline {
                guard let list = Pipelines.named[pipeline] else {
                    throw HybridError("unknown pipeline '\(pipeline)'; known pipelines: \(Pipelines.named.keys.sorted().joined(separator: ", "))")
                }
                o.passes = list
            } else if let passes {
                o.passes = try Pipelines.parse(list: passes)
            }
            o.printAfterAll = printAfterAll
            o.printAfter = Set(printAfter)
            o.printAfterChange = printAfterChange
            o.timePasses = timePasses
            o.stats = stats
            o.dumpDir = dumpDir
            o.emit = emit
            o.target = Target.named(target)!
            return try Driver.Opt.run(o) { print($0, terminator: "") }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a model spec (and weights) and count its parameters, GMAC and GFLOP per stage.")

    @Argument(help: ArgumentHelp("Model spec (.yml) or text IR (.hir).", valueName: "spec"))
    var spec: String

    @Option(name: .long, help: ArgumentHelp("Weights to validate against the spec (safetensors).", valueName: "file"))
    var weights: String?

    @Option(name: .long, help: ArgumentHelp("Input size CxHxW (default: inp_channels x 256 x 256).", valueName: "CxHxW"))
    var input: String?

    func run() throws {
        try report {
            let size = try input.map { try InputSize(parsing: $0) }
            let (text, warnings) = try Commands.check(spec: spec, weights: weights.map { .file($0) }, input: size)
            print(text, terminator: "")
            return warnings
        }
    }
}

struct Interpret: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the reference interpreter on a float32 .npy image of shape (1,C,H,W) or (C,H,W).")

    @Argument(help: ArgumentHelp("Model spec (.yml) or text IR (.hir).", valueName: "spec"))
    var spec: String

    @OptionGroup var weightOptions: WeightOptions

    @Argument(help: ArgumentHelp("Input image (.npy, float32).", valueName: "in.npy"))
    var input: String

    @Argument(help: ArgumentHelp("Output image (.npy), written with the input's rank.", valueName: "out.npy"))
    var output: String

    func validate() throws {
        if weightOptions.source == nil { throw ValidationError("give --weights FILE or --random-weights SEED") }
    }

    func run() throws {
        try report {
            try Commands.interpret(spec: spec, weights: weightOptions.source!, input: input, output: output)
        }
    }
}

struct Weights: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model's seeded random weights as safetensors (PyTorch key names).")

    @Argument(help: ArgumentHelp("Model spec (.yml).", valueName: "spec"))
    var spec: String

    @Option(name: .customLong("random-weights"), help: ArgumentHelp("Seed of the weights.", valueName: "seed"))
    var seed: UInt64 = 0

    @Option(name: .shortAndLong, help: ArgumentHelp("Output file.", valueName: "file.safetensors"))
    var output: String

    func run() throws {
        try report {
            let (count, warnings) = try Commands.exportWeights(spec: spec, seed: seed, output: output)
            print("wrote \(count) tensors to \(output)")
            return warnings
        }
    }
}

Hybridc.main()

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Compile, run with the profiler and report per kernel: time, GFLOP/s, GB/s, fraction of the roofline, compute- or memory-bound; and the time per T / S block.",
        discussion: """
            The peaks (vector-FMA GFLOP/s and copy GB/s) are measured once per machine and cached in ~/.cache/hybridc \
            (HC_CALIBRATION_DIR overrides; --recalibrate measures again). FLOPs per kernel come from the compiler's \
            cost model; bytes are operands + result + shared scratch, each once. With --target aarch64 the program is \
            cross-built but not run here; --mca then estimates each generated NEON loop on the Oryon core with llvm-mca-19.
            """)

    @Argument(help: ArgumentHelp("Model spec (.yml).", valueName: "spec"))
    var spec: String

    @OptionGroup var weightOptions: WeightOptions

    @Option(name: .long, help: ArgumentHelp("Image size CxHxW to compile for and run on (default: inp_channels x 256 x 256).", valueName: "CxHxW"))
    var input: String?

    @Option(name: .long, help: ArgumentHelp("Run on this .png or .npy image instead of a generated one.", valueName: "file"))
    var image: String?

    @Option(name: .long, help: ArgumentHelp("Threads (default: the machine's cores).", valueName: "N"))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: ArgumentHelp("Runs (the table sums them).", valueName: "N"))
    var `repeat`: Int = 1

    @Option(name: .long, help: ArgumentHelp("Write a Chrome trace (one slice per kernel per thread; opens in Perfetto).", valueName: "FILE.json"))
    var trace: String?

    @Option(name: .long, help: ArgumentHelp("Draw the roofline with every kernel as a point.", valueName: "FILE.svg"))
    var roofline: String?

    @Option(name: .long, help: ArgumentHelp("Write the per-kernel table as JSON.", valueName: "FILE.json"))
    var json: String?

    @Option(name: .long, help: ArgumentHelp("Target: \(Target.names.joined(separator: ", ")).", valueName: "target"))
    var target: String = "host"

    @Flag(name: .long, help: "With --target aarch64: llvm-mca-19 (-mcpu=oryon-1) cycles per iteration and fraction of the FMA peak of each hot NEON loop.")
    var mca = false

    @Flag(name: .long, help: "Measure the machine's peaks again instead of using the cached calibration.")
    var recalibrate = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Keep the program here (default: a temporary folder).", valueName: "OUT"))
    var output: String?

    func validate() throws {
        if weightOptions.source == nil { throw ValidationError("give --weights FILE or --random-weights SEED") }
        if Target.named(target) == nil {
            throw ValidationError("unknown target '\(target)'; known targets: \(Target.names.joined(separator: ", "))")
        }
        if threads < 1 || threads > 256 { throw ValidationError("--threads takes an integer from 1 to 256, not \(threads)") }
        if `repeat` < 1 { throw ValidationError("--repeat takes a positive integer, not \(`repeat`)") }
    }

    func run() throws {
        let tty = isatty(2) != 0
        var shown = false
        func progress(_ line: String) {
            // On a terminal one line rewritten in place; otherwise one short line per step.
            FileHandle.standardError.write(Data((tty ? "\r\u{1b}[K" + line : line + "\n").utf8))
            shown = true
        }
        defer { if tty && shown { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) } }
        try report {
            var options = ProfileOptions(spec: spec, weights: weightOptions.source!, input: try input.map { try InputSize(parsing: $0) },
                                         threads: threads, target: Target.named(target)!)
            options.image = image
            options.repeats = `repeat`
            options.trace = trace
            options.roofline = roofline
            options.json = json
            options.mca = mca
            options.output = output
            options.recalibrate = recalibrate
            let (text, warnings) = try Commands.profile(options, progress: progress)
            if tty && shown { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)); shown = false }
            print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            return warnings
        }
    }
}
