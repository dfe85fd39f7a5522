import ArgumentParser
import FaultlineLinalg
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

/// Everything `faultline info` reports; also printed first by every benchmark.
struct SystemReport: Codable {
    var backend: String
    var blasLoaded: Bool
    var lapackLoaded: Bool
    var blasLibrary: String
    var lapackLibrary: String
    var openblasCore: String
    var openblasConfig: String
    var coretypeRequested: String
    var coretypeSource: String
    var cpuidRecommendedCoretype: String
    var blasThreads: Int
    var simdThreads: Int
    var loadError: String
    var swiftVersion: String
    var cpuVendor: String
    var cpuBrand: String
    var cpuFamily: Int
    var cpuModel: Int
    var cpuFeatures: [String]

    static func current() -> SystemReport {
        let status = NativeBLAS.status
        let cpu = NativeBLAS.cpu
        return SystemReport(
            backend: Backend.default.rawValue,
            blasLoaded: status.blasLoaded, lapackLoaded: status.lapackLoaded,
            blasLibrary: status.blasPath, lapackLibrary: status.lapackPath,
            openblasCore: NativeBLAS.coreName ?? "-", openblasConfig: NativeBLAS.config ?? "-",
            coretypeRequested: status.coretypeRequested.isEmpty ? "-" : status.coretypeRequested,
            coretypeSource: status.coretypeSource,
            cpuidRecommendedCoretype: NativeBLAS.recommendedCoretype.isEmpty ? "(leave to OpenBLAS)" : NativeBLAS.recommendedCoretype,
            blasThreads: NativeBLAS.threads, simdThreads: Linalg.simdThreads,
            loadError: status.error, swiftVersion: compilerVersion,
            cpuVendor: cpu.vendor, cpuBrand: cpu.brand, cpuFamily: cpu.family, cpuModel: cpu.model,
            cpuFeatures: cpu.flags)
    }

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

    /// One line for benchmark headers.
    var headline: String {
        "backend=\(backend) core=\(openblasCore) (requested \(coretypeRequested), \(coretypeSource)) "
            + "blas_threads=\(blasThreads) simd_threads=\(simdThreads) cpu=\"\(cpuBrand)\""
    }
}

private var compilerVersion: String {
    #if compiler(>=6.4)
    return "6.4 or later"
    #elseif compiler(>=6.3)
    return "6.3"
    #elseif compiler(>=6.2)
    return "6.2"
    #elseif compiler(>=6.1)
    return "6.1"
    #else
    return "6.0"
    #endif
}
