/// Targets as descriptions: ISA, vector width, registers, caches, cores, compiler and flags.
import Foundation

public struct Target: Equatable {
    public enum ISA: String { case neon, avx2, avx512, scalar }

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

    /// x86-64 with AVX2 and FMA (Haswell / Zen and later): 8 floats per ymm register, 16 of them.
    public static let x86_64AVX2 = Target(
        name: "x86-64-avx2", isa: .avx2, vectorWidth: 8, vectorRegisters: 16,
        l1dBytes: 32 * 1024, l2Bytes: 1024 * 1024, cores: 2,
        compiler: "cc", flags: ["-mavx2", "-mfma"], simdDefine: "HC_TARGET_AVX2",
        linkStatic: false, runner: [])

    /// x86-64 with AVX-512 (F, DQ, VL) and FMA: 16 floats per zmm register, 32 of them. Caches of a Sapphire
    /// Rapids class server core (48 KiB L1d, 2 MiB L2), the kind this development host is.
    public static let x86_64AVX512 = Target(
        name: "x86-64-avx512", isa: .avx512, vectorWidth: 16, vectorRegisters: 32,
        l1dBytes: 48 * 1024, l2Bytes: 2 * 1024 * 1024, cores: 2,
        compiler: "cc", flags: ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma"], simdDefine: "HC_TARGET_AVX512",
        linkStatic: false, runner: [])

    /// Portable C with no vector intrinsics.
    public static let generic = Target(
        name: "generic", isa: .scalar, vectorWidth: 1, vectorRegisters: 16,
        l1dBytes: 32 * 1024, l2Bytes: 512 * 1024, cores: 1,
        compiler: "cc", flags: [], simdDefine: nil, linkStatic: false, runner: [])

    public static let all = [aarch64, x86_64AVX2, x86_64AVX512, generic]
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
        let flags = cpuFlags()
        if let t = [x86_64AVX512, x86_64AVX2].first(where: { $0.isa.requiredCPUFlags.isSubset(of: flags) }) {
            var t = t
            t.cores = ProcessInfo.processInfo.activeProcessorCount
            return t
        }
        #endif
        return generic
    }

    /// Whether this machine can run code built for `self` natively (an x86 target on a CPU with all its
    /// extensions, aarch64 on an aarch64 host, the portable target anywhere); false for code that needs a runner.
    public var runsNatively: Bool {
        switch isa {
        case .scalar: return true
        case .neon: return Target.isHostAArch64
        case .avx2, .avx512:
            #if arch(x86_64)
            return isa.requiredCPUFlags.isSubset(of: Target.cpuFlags())
            #else
            return false
            #endif
        }
    }

    /// The feature flags of the first CPU in /proc/cpuinfo (empty where there is none).
    public static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return cpuFlags(parsing: text)
    }

    /// The words after "flags :" on the first such line of a /proc/cpuinfo text.
    public static func cpuFlags(parsing cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "flags" else { continue }
            return Set(parts[1].split(separator: " ").map(String.init))
        }
        return []
    }

    static var isHostAArch64: Bool {
        #if arch(arm64)
        return true
        #else
        return false
        #endif
    }
}

extension Target.ISA {
    /// The /proc/cpuinfo flags a CPU needs to run code built for this ISA (empty for the portable and NEON ones,
    /// which the host's architecture decides).
    public var requiredCPUFlags: Set<String> {
        switch self {
        case .avx2: return ["avx2", "fma"]
        case .avx512: return ["avx512f", "avx512dq", "avx512vl", "avx2", "fma"]
        case .neon, .scalar: return []
        }
    }
}
