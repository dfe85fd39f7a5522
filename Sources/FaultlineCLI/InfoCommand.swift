import ArgumentParser
import FaultlineLinalg
import FaultlineReport
import Foundation

/// `faultline info`: what runs where (backend, libraries, OpenBLAS core, threads, CPU).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the backend, BLAS/LAPACK libraries, OpenBLAS core type, threads and CPU features.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let report = SystemReport.current()
        if json {
            print(try JSONOutput.string(report))
        } else {
            print(report.table)
        }
    }
}

extension SystemReport {
    /// The rows of `faultline info`.
    var table: String {
        var rows: [(String, String)] = [
            ("backend", backend),
            ("BLAS library", blasLoaded ? blasLibrary : "not loaded"),
            ("LAPACKE library", lapackLoaded ? lapackLibrary : "not loaded"),
            ("OpenBLAS core", openblasCore),
            ("core type requested", "\(coretypeRequested) (source: \(coretypeSource))"),
            ("cpuid recommends", cpuidRecommendedCoretype),
            ("OpenBLAS config", openblasConfig),
            ("BLAS threads", String(blasThreads)),
            ("SIMD threads", String(simdThreads)),
            ("Swift", swiftVersion),
            ("CPU", "\(cpuBrand) (\(cpuVendor), family \(cpuFamily) model \(cpuModel))"),
            ("CPU features", cpuFeatures.joined(separator: " ")),
        ]
        if !loadError.isEmpty { rows.append(("load error", loadError)) }
        return TextTable.keyValue(rows)
    }

}
