/// Runs the C compiler (native or cross) and programs built for a target (directly or under qemu).
import Codegen
import Foundation
import HybridIR

public enum Toolchain {
    public struct Result {
        public var status: Int32
        public var output: String
    }

    /// Runs `command` (looked up on PATH) in `directory`, capturing stdout and stderr together.
    public static func run(_ command: [String], in directory: URL? = nil, environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        if let directory { process.currentDirectoryURL = directory }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            throw HybridError("cannot run \(command[0]): \(error.localizedDescription)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Whether `tool` is on PATH.
    public static func available(_ tool: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(tool)"]).status) == 0
    }

    /// Compiler flags every generated file is built with.
    public static func cflags(_ target: Target, optimize: Bool = true) -> [String] {
        var flags = [optimize ? "-O3" : "-O1", "-std=c11", "-Wall", "-Werror", "-D_POSIX_C_SOURCE=200809L"] + target.flags
        if let define = target.simdDefine { flags.append("-D\(define)") }
        return flags
    }

    /// Environment for running a program built for `target` here.
    public static func runEnvironment(_ target: Target) -> [String: String] {
        target.runner.first == "qemu-aarch64" ? ["QEMU_LD_PREFIX": "/usr/aarch64-linux-gnu"] : [:]
    }
}
