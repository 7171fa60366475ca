// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "hybridc",
    products: [
        .executable(name: "hybridc", targets: ["hybridc"]),
        .library(name: "HybridIR", targets: ["HybridIR"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .target(name: "HybridIR", path: "Sources/HybridIR"),
        .target(name: "Passes", dependencies: ["HybridIR"], path: "Passes"),
        .target(name: "Frontend", dependencies: ["HybridIR", "Yams"], path: "Sources/Frontend"),
        .target(name: "Runtime", path: "Sources/Runtime", resources: [.copy("c")]),
        .target(name: "Codegen", dependencies: ["HybridIR", "Runtime"], path: "Sources/Codegen"),
        .target(name: "Driver", dependencies: ["HybridIR", "Passes", "Frontend", "Codegen", "Runtime"], path: "Sources/Driver"),
        .executableTarget(
            name: "hybridc",
            dependencies: ["Driver", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/hybridc"),
        .testTarget(name: "HybridIRTests", dependencies: ["HybridIR"], path: "Tests/HybridIRTests"),
        .testTarget(name: "FrontendTests", dependencies: ["Frontend", "HybridIR"], path: "Tests/FrontendTests"),
        .testTarget(name: "PassesTests", dependencies: ["Passes", "HybridIR", "Frontend", "Driver"], path: "Tests/PassesTests",
                    exclude: ["Inputs"]),
        .testTarget(name: "CodegenTests", dependencies: ["Codegen", "Driver", "Frontend", "HybridIR", "Passes", "hybridc"],
                    path: "Tests/CodegenTests", exclude: ["Golden"]),
        .testTarget(name: "CLITests", dependencies: ["Driver", "Frontend", "HybridIR", "hybridc"], path: "Tests/CLITests"),
    ]
)
