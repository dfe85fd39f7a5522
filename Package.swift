// swift-tools-version:6.1
//
// Faultline: fast CPU kernels for finding out why machine-learning models fail.
// The layout is described in docs/ARCHITECTURE.md: dependencies only point down,
// CLI -> analysis/report -> kernels -> FaultlineLinalg -> CFaultline. No unsafeFlags anywhere,
// so the package stays usable as a dependency.
import PackageDescription

let package = Package(
    name: "Faultline",
    products: [
        .library(name: "Faultline", targets: ["Faultline"]),
        .library(name: "FaultlineLinalg", targets: ["FaultlineLinalg"]),
        .library(name: "FaultlineIO", targets: ["FaultlineIO"]),
        .library(name: "FaultlineNN", targets: ["FaultlineNN"]),
        .library(name: "FaultlineONNX", targets: ["FaultlineONNX"]),
        .library(name: "FaultlineRobustness", targets: ["FaultlineRobustness"]),
        .library(name: "FaultlineShift", targets: ["FaultlineShift"]),
        .library(name: "FaultlineStatistics", targets: ["FaultlineStatistics"]),
        .library(name: "FaultlineReliability", targets: ["FaultlineReliability"]),
        .library(name: "FaultlineInputs", targets: ["FaultlineInputs"]),
        .library(name: "FaultlineAnalysis", targets: ["FaultlineAnalysis"]),
        .library(name: "FaultlineReport", targets: ["FaultlineReport"]),
        .library(name: "FaultlineCLI", targets: ["FaultlineCLI"]),
        .executable(name: "faultline", targets: ["faultline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // ONNX files are protobuf: the runtime library only (the generated code is committed; the
        // protoc plugin is built by scripts/generate-onnx-proto by hand, never in CI).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // `swift package generate-documentation` (DocC catalogues in Sources/*/*.docc); a command
        // plugin only: nothing of it is linked into the products.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // C shim: loads OpenBLAS/LAPACKE with dlopen at run time after choosing a core type.
        .target(
            name: "CFaultline",
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]
        ),
        .target(name: "FaultlineLinalg", dependencies: ["CFaultline"]),
        .target(name: "FaultlineIO", dependencies: ["FaultlineLinalg", "CFaultline"], resources: [.copy("Datasets/Resources")]),
        .target(name: "FaultlineNN", dependencies: ["FaultlineLinalg", "FaultlineIO"]),
        // ONNX import (`torch.onnx.export` files) into FaultlineNN's GraphModel.
        .target(name: "FaultlineONNX", dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN",
                                                      .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // The input-validation layer: arrays, labels, scores, models (ONNX or state_dict) and option values,
        // checked with errors that name the option and the file.
        .target(name: "FaultlineInputs", dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN", "FaultlineONNX"]),
        // Distributions, Kolmogorov–Smirnov, binomial bounds, bootstrap: below reliability and robustness.
        .target(name: "FaultlineStatistics", dependencies: ["FaultlineLinalg"]),
        // Shift and out-of-distribution detection: Gaussian fits, Mahalanobis family, KNN, ViM, logit
        // scores, detection metrics, drift tests, MMD, label shift, detector files.
        .target(name: "FaultlineShift", dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineStatistics"]),
        .target(name: "FaultlineRobustness", dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN", "FaultlineStatistics"]),
        .target(name: "FaultlineReliability", dependencies: ["FaultlineLinalg", "FaultlineStatistics"]),
        // The failure analysis as a library: FailureReport.build, FailureAttribution, the studies.
        .target(name: "FaultlineAnalysis", dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN", "FaultlineStatistics", "FaultlineReliability",
                                                          "FaultlineShift", "FaultlineRobustness"]),
        // Rendering: JSON, text tables, SVG plots and the HTML/text report; reads only FailureReport.
        .target(name: "FaultlineReport", dependencies: ["FaultlineAnalysis", "FaultlineReliability", "FaultlineRobustness", "FaultlineLinalg"]),
        .target(name: "Faultline", dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN", "FaultlineInputs", "FaultlineStatistics", "FaultlineShift", "FaultlineRobustness",
                                                  "FaultlineReliability", "FaultlineAnalysis", "FaultlineReport"]),
        // Developer benchmarks (`faultline bench`): timing code kept out of the analysis commands.
        .target(
            name: "FaultlineBench",
            dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN", "FaultlineONNX", "FaultlineStatistics", "FaultlineShift", "FaultlineRobustness", "FaultlineReliability", "FaultlineReport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The command-line layer: option parsing and validation, input files, calling the library, output.
        // A library so that the option fuzz target (Fuzz/) can link it; `faultline` is its main.swift.
        .target(
            name: "FaultlineCLI",
            dependencies: ["FaultlineLinalg", "FaultlineIO", "FaultlineNN", "FaultlineONNX", "FaultlineInputs", "FaultlineStatistics", "FaultlineShift",
                           "FaultlineRobustness", "FaultlineReliability", "FaultlineAnalysis", "FaultlineReport", "FaultlineBench",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "faultline", dependencies: ["FaultlineCLI"]),
        .target(name: "_TestSupport", dependencies: ["FaultlineLinalg"], path: "Tests/_TestSupport"),
        .testTarget(name: "FaultlineLinalgTests", dependencies: ["FaultlineLinalg", "_TestSupport"]),
        .testTarget(name: "FaultlineIOTests", dependencies: ["FaultlineIO", "_TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineNNTests", dependencies: ["FaultlineNN", "FaultlineIO", "_TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineONNXTests", dependencies: ["FaultlineONNX", "FaultlineNN", "FaultlineIO", "FaultlineRobustness", "_TestSupport",
                                                         .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineStatisticsTests", dependencies: ["FaultlineStatistics", "FaultlineIO", "_TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineShiftTests", dependencies: ["FaultlineShift", "FaultlineStatistics", "FaultlineIO", "FaultlineLinalg", "_TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineRobustnessTests", dependencies: ["FaultlineRobustness", "FaultlineStatistics", "FaultlineNN", "FaultlineIO", "_TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineReliabilityTests", dependencies: ["FaultlineReliability", "FaultlineStatistics", "FaultlineIO", "_TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaultlineAnalysisTests", dependencies: ["FaultlineAnalysis", "FaultlineReport", "FaultlineNN", "FaultlineIO", "_TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "FaultlineCLITests", dependencies: ["faultline", "FaultlineCLI", "_TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
