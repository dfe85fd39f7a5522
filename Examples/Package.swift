// swift-tools-version:6.1
// A separate package that uses Faultline the way another Swift analysis program would: through the
// public API of the library products only. `scripts/test` builds and runs it.
import PackageDescription

let package = Package(
    name: "FaultlineExamples",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "Faultline", path: "..")],
    targets: [
        .executableTarget(name: "FaultlineExamples", dependencies: [.product(name: "Faultline", package: "Faultline")]),
    ]
)
