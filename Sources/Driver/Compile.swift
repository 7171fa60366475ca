/// `hybridc compile`: lowers a model, plans and prints its kernels as C, writes the sources and builds the program.
import Codegen
import Foundation
import Frontend
import HybridIR
import Passes
import Runtime

public struct CompileOptions {
    public var spec: String
    public var weights: WeightSource
    public var input: InputSize?
    public var target: Target
    public var output: String
    public var extraCFlags: [String] = []
    /// The passes to run (default: the compile pipeline; `-O0` runs only the lowering).
    public var passes: [Pass.Type] = Pipelines.compile

    public init(spec: String, weights: WeightSource, input: InputSize?, target: Target, output: String) {
        self.spec = spec
        self.weights = weights
        self.input = input
        self.target = target
        self.output = output
    }
}

public struct CompileResult {
    public var executable: URL
    public var sources: URL
    public var plan: KernelPlan
    public var warnings: [String]
}

public enum Compile {
    /// The kernel plan of a spec (image mode, sizes chosen at run time) or a `.hir` graph (fixed shapes).
    /// `passes` defaults to the compile pipeline; the graph is also built one step (8 pixels) taller and wider
    /// and run through the same passes, to find which dimensions follow the image size.
    public static func plan(spec path: String, weights: WeightSource, input: InputSize?, target: Target,
                            passes: [Pass.Type] = Pipelines.compile) throws -> (KernelPlan, [String]) {
        let model = try ModelLoader.load(path, weights: weights, input: input)
        let (optimized, packed) = try ModelLoader.optimize(model.graph, weights: model.weights, passes: passes, target: target)
        guard let spec = model.spec else {
            return (try KernelPlan(graph: optimized, shapes: SymbolicShapes.constant(optimized), weights: packed,
                                   imageMode: false, maxH8: 0, maxW8: 0, target: target), model.warnings)
        }
        let padded = model.input.padded
        let (h8, w8) = (padded.height / 8, padded.width / 8)
        func variant(_ height: Int, _ width: Int) throws -> Graph {
            let g = try UNetBuilder.build(spec, height: height, width: width)
            return try ModelLoader.optimize(g, weights: RandomWeights.generate(for: g, seed: 0), passes: passes, target: target).0
        }
        let shapes = try SymbolicShapes.derive(base: optimized, tallerByEight: try variant(padded.height + 8, padded.width),
                                               widerByEight: try variant(padded.height, padded.width + 8), h8: h8, w8: w8)
        let plan = try KernelPlan(graph: optimized, shapes: shapes, weights: packed, imageMode: true,
                                  maxH8: h8, maxW8: w8, target: target)
        return (plan, model.warnings)
    }

    /// `compile --stats`: the memory plan at the compiled maximum size.
    public static func statistics(_ plan: KernelPlan) -> String {
        func mb(_ floats: Int) -> String { String(format: "%.2f MB", Double(floats * 4) / 1e6) }
        let threads = plan.target.cores
        return """
            weights: \(String(format: "%.1f MB", Double(plan.blobBytes) / 1e6)) (\(plan.constants.count) constants)
            arena: \(mb(plan.workspaceFloats)) (\(plan.workspaceFloats * 4) bytes); lower bound \(mb(plan.lowerBoundFloats)) (\(plan.lowerBoundFloats * 4) bytes); ratio \(String(format: "%.3f", plan.lowerBoundFloats > 0 ? Double(plan.workspaceFloats) / Double(plan.lowerBoundFloats) : 1))
            scratch per thread bytes: \(plan.scratchFloatsPerThread * 4) (\(mb(plan.scratchFloatsPerThread))); workspace at \(threads) threads: \(mb(plan.workspaceFloats + threads * plan.scratchFloatsPerThread))
            kernels: \(plan.kernels.count); in place: \(plan.kernels.filter { k in k.operands.contains { $0.storage == k.result.storage } }.count)
            """
    }

    /// Builds a fixed-shape graph (tensor mode) into a program; used by kernel tests and `.hir` inputs.
    public static func build(graph: Graph, weights: WeightStore, target: Target, output: URL, foldConstants: Bool = true,
                             extraFlags: [String] = []) throws -> KernelPlan {
        let plan = try KernelPlan(graph: graph, shapes: SymbolicShapes.constant(graph), weights: weights, imageMode: false,
                                  maxH8: 0, maxW8: 0, target: target, foldConstants: foldConstants)
        let generated = try ModelEmitter.emit(plan, source: graph.name)
        let sources = URL(fileURLWithPath: output.path + ".src")
        try writeSources(generated, plan: plan, to: sources, target: target)
        try build(sources: sources, executable: output, target: target, extraFlags: extraFlags)
        return plan
    }

    /// Writes `OUT.src/` (model.c, model.h, model.weights, weights.S, the runtime, a Makefile) and builds `OUT`.
    public static func run(_ options: CompileOptions) throws -> CompileResult {
        let (plan, warnings) = try plan(spec: options.spec, weights: options.weights, input: options.input, target: options.target,
                                        passes: options.passes)
        let generated = try ModelEmitter.emit(plan, source: URL(fileURLWithPath: options.spec).lastPathComponent)
        let executable = URL(fileURLWithPath: options.output).standardizedFileURL
        let sources = URL(fileURLWithPath: executable.path + ".src")
        try writeSources(generated, plan: plan, to: sources, target: options.target)
        try build(sources: sources, executable: executable, target: options.target, extraFlags: options.extraCFlags)
        return CompileResult(executable: executable, sources: sources, plan: plan, warnings: warnings)
    }

    public static func writeSources(_ generated: GeneratedModel, plan: KernelPlan, to dir: URL, target: Target) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try generated.source.write(to: dir.appendingPathComponent("model.c"), atomically: true, encoding: .utf8)
            try generated.header.write(to: dir.appendingPathComponent("model.h"), atomically: true, encoding: .utf8)
            try generated.assembly.write(to: dir.appendingPathComponent("weights.S"), atomically: true, encoding: .utf8)
            try Data(generated.blob).write(to: dir.appendingPathComponent("model.weights"))
            for file in RuntimeSources.files {
                try RuntimeSources.contents(file).write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8)
            }
            try makefile(target).write(to: dir.appendingPathComponent("Makefile"), atomically: true, encoding: .utf8)
        } catch let e as HybridError {
            throw e
        } catch {
            throw HybridError("cannot write the generated sources: \(error.localizedDescription)", at: dir.path)
        }
    }

    static func makefile(_ target: Target) -> String {
        let flags = Toolchain.cflags(target).filter { !target.flags.contains($0) && !$0.hasPrefix("-DHC_TARGET") }
        return """
        # Builds the model generated by hybridc. `make` builds the program (model + PNG/NPY driver); `make lib`
        # builds libmodel.a (the model alone: C11 + pthreads, no stdio, libpng or BLAS) for an app to link.
        # Generated for target \(target.name); to build for another, override CC and TARGET_FLAGS, e.g. for aarch64:
        #   make CC=aarch64-linux-gnu-gcc TARGET_FLAGS="-march=armv8.2-a+fp16 -DHC_TARGET_NEON" LDFLAGS=-static
        CC ?= \(target.compiler)
        CFLAGS ?= \(flags.joined(separator: " "))
        TARGET_FLAGS ?= \((target.flags + (target.simdDefine.map { ["-D\($0)"] } ?? [])).joined(separator: " "))
        LDFLAGS ?= \(target.linkStatic ? "-static" : "")
        LDLIBS ?= -lpng -lz -lm -lpthread\(target.openBLAS ? " -lopenblas" : "")
        OUT ?= model

        all: $(OUT)

        $(OUT): hc_main.c hc_runtime.c model.c weights.S model.h hc_runtime.h hc_simd.h hc_math.h model.weights
        \t$(CC) $(CFLAGS) $(TARGET_FLAGS) -o $@ hc_main.c hc_runtime.c model.c weights.S $(LDFLAGS) $(LDLIBS)

        lib: libmodel.a

        libmodel.a: hc_runtime.c model.c weights.S model.h hc_runtime.h hc_simd.h hc_math.h model.weights
        \t$(CC) $(CFLAGS) $(TARGET_FLAGS) -c hc_runtime.c model.c weights.S
        \tar rcs $@ hc_runtime.o model.o weights.o

        clean:
        \trm -f $(OUT) libmodel.a *.o

        .PHONY: all lib clean

        """
    }

    /// Builds the program with the target's compiler; a failure shows the compiler's message and the sources.
    public static func build(sources: URL, executable: URL, target: Target, extraFlags: [String] = []) throws {
        guard Toolchain.available(target.compiler) else {
            throw HybridError("the C compiler '\(target.compiler)' for target \(target.name) is not installed"
                + (target.name == "aarch64" ? " (apt-get install gcc-aarch64-linux-gnu; see scripts/setup.sh)" : ""))
        }
        var command = [target.compiler] + Toolchain.cflags(target) + extraFlags
        command += ["-o", executable.path, "hc_main.c", "hc_runtime.c", "model.c", "weights.S"]
        if target.linkStatic { command.append("-static") }
        command += ["-lpng", "-lz", "-lm", "-lpthread"] + (target.openBLAS ? ["-lopenblas"] : [])
        let result = try Toolchain.run(command, in: sources)
        guard result.status == 0 else {
            throw HybridError("the C compiler failed on the generated sources in \(sources.path):\n\(result.output)")
        }
    }
}
