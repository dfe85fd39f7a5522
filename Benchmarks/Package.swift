// swift-tools-version:6.1
// Faultline's package-benchmark suite. A separate package (so the library's dependency graph stays
// lean) that depends on the library by path. Run: scripts/bench --package
// (or: cd Benchmarks && swift package benchmark).
import Foundation
import PackageDescription

// A path dependency is identified by its folder name, which is whatever the clone was called.
let faultline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "FaultlineBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "LinalgBenchmarks",
            dependencies: [
                .product(name: "FaultlineLinalg", package: faultline),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/LinalgBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
