/// The C runtime that ships with every generated program, carried inside hybridc as resources.
import Foundation

public enum RuntimeSources {
    /// Files copied next to each generated model.
    public static let files = ["hc_runtime.h", "hc_runtime.c", "hc_simd.h", "hc_math.h", "hc_main.c", "hc_wrap_test.c"]

    /// The folder holding the runtime's C files.
    public static var directory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("c")
    }

    public static func contents(_ file: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
    }
}
