/// Targets as descriptions: ISA, vector width, registers, caches, cores, compiler and flags.
import Foundation

public struct Target: Equatable {
    public enum ISA: String { case neon, avx2, scalar }

    public var name: String
    public var isa: ISA
    /// Floats per vector register.
    public var vectorWidth: Int
    public var vectorRegisters: Int
    public var l1dBytes: Int
    public var l2Bytes: Int
    public var cores: Int
    /// The C compiler to build for this target, and its flags.
    public var compiler: String
    public var flags: [String]
    /// Preprocessor switch that selects the SIMD mapping in hc_simd.h.
    public var simdDefine: String?
    /// Link statically (so the program runs under qemu with nothing else set up).
    public var linkStatic: Bool
    /// How to run a program built for this target on this machine (empty: directly).
    public var runner: [String]
    /// `--gemm openblas`: 1x1 convolutions without a folded norm call cblas_sgemm (plus separate bias and
    /// activation passes) instead of the native micro-kernel, and the program links -lopenblas. A reference,
    /// not the default.
    public var openBLAS = false

    /// The phone target: armv8.2-a + fp16 with NEON, a Snapdragon 8 Elite class (Oryon) core.
    public static let aarch64 = Target(
        name: "aarch64", isa: .neon, vectorWidth: 4, vectorRegisters: 32,
        l1dBytes: 96 * 1024, l2Bytes: 12 * 1024 * 1024, cores: 8,
        compiler: "aarch64-linux-gnu-gcc", flags: ["-march=armv8.2-a+fp16"], simdDefine: "HC_TARGET_NEON",
        linkStatic: true, runner: Target.isHostAArch64 ? [] : ["qemu-aarch64"])

    /// This development host: x86-64 with AVX2 and FMA.
    public static let x86_64AVX2 = Target(
        name: "x86-64-avx2", isa: .avx2, vectorWidth: 8, vectorRegisters: 16,
        l1dBytes: 32 * 1024, l2Bytes: 1024 * 1024, cores: 2,
        compiler: "cc", flags: ["-mavx2", "-mfma"], simdDefine: "HC_TARGET_AVX2",
        linkStatic: false, runner: [])

    /// Portable C with no vector intrinsics.
    public static let generic = Target(
        name: "generic", isa: .scalar, vectorWidth: 1, vectorRegisters: 16,
        l1dBytes: 32 * 1024, l2Bytes: 512 * 1024, cores: 1,
        compiler: "cc", flags: [], simdDefine: nil, linkStatic: false, runner: [])

    public static let all = [aarch64, x86_64AVX2, generic]
    public static let names = ["host"] + all.map(\.name)

    /// `host` is whichever description fits this machine.
    public static func named(_ name: String) -> Target? {
        if name == "host" { return host }
        return all.first { $0.name == name }
    }

    public static var host: Target {
        if isHostAArch64 {
            var t = aarch64
            t.compiler = "cc"
            t.linkStatic = false
            return t
        }
        #if arch(x86_64)
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           cpuinfo.contains(" avx2"), cpuinfo.contains(" fma") {
            var t = x86_64AVX2
            t.cores = ProcessInfo.processInfo.activeProcessorCount
            return t
        }
        #endif
        return generic
    }

    static var isHostAArch64: Bool {
        #if arch(arm64)
        return true
        #else
        return false
        #endif
    }
}
