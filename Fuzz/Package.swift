// swift-tools-version:6.1
// libFuzzer targets for Faultline's binary parsers. Not part of the main package: the sanitizer
// flags are passed on the command line by scripts/fuzz, never written into a manifest.
import Foundation
import PackageDescription

// A path dependency is identified by its folder name, which is whatever the clone was called.
let faultline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let parsers = ["NPY", "NPZ", "SafeTensors", "IDX", "CSV"]
/// Targets past the decoders: files loaded as models and detectors, tensors converted to matrices and labels.
let loaders = ["WeightFiles"]
/// ONNX files decoded, lowered to a GraphModel and run (FaultlineONNX, SwiftProtobuf).
let graphs = ["ONNX"]
/// The command line's option parsing and validation (FaultlineCLI), never running a command: whole
/// argument vectors (Options) and single option values through every checker (OptionValues).
let commandLine = ["Options", "OptionValues"]

let package = Package(
    name: "FaultlineFuzz",
    // Library targets: scripts/fuzz links each with libFuzzer's own main (SwiftPM executables bring
    // their own main, which would clash with it).
    products: (parsers + loaders + graphs + commandLine).map { .library(name: "Fuzz\($0)", targets: ["Fuzz\($0)"]) },
    dependencies: [.package(path: "..")],
    targets: parsers.map { name in
        .target(
            name: "Fuzz\(name)",
            dependencies: [.product(name: "FaultlineIO", package: faultline)],
            path: "Sources/Fuzz\(name)"
        )
    } + loaders.map { name in
        .target(
            name: "Fuzz\(name)",
            dependencies: [.product(name: "FaultlineIO", package: faultline), .product(name: "FaultlineNN", package: faultline),
                           .product(name: "FaultlineRobustness", package: faultline), .product(name: "FaultlineShift", package: faultline)],
            path: "Sources/Fuzz\(name)"
        )
    } + graphs.map { name in
        .target(name: "Fuzz\(name)", dependencies: [.product(name: "FaultlineONNX", package: faultline), .product(name: "FaultlineNN", package: faultline)],
                path: "Sources/Fuzz\(name)")
    } + commandLine.map { name in
        .target(name: "Fuzz\(name)", dependencies: [.product(name: "FaultlineCLI", package: faultline)], path: "Sources/Fuzz\(name)")
    }
)
