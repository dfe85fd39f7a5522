import Foundation

/// What ran a computation: backend, BLAS/LAPACK libraries, OpenBLAS core type, thread counts, CPU.
/// `faultline info` prints it, every benchmark prints its `headline` first, and reports record it, so
/// that every figure names the machine, ISA, backend and core it came from.
public struct SystemReport: Codable, Sendable, Equatable {
    public var backend: String
    public var blasLoaded: Bool
    public var lapackLoaded: Bool
    public var blasLibrary: String
    public var lapackLibrary: String
    public var openblasCore: String
    public var openblasConfig: String
    public var coretypeRequested: String
    public var coretypeSource: String
    public var cpuidRecommendedCoretype: String
    public var blasThreads: Int
    public var simdThreads: Int
    public var loadError: String
    public var swiftVersion: String
    public var cpuVendor: String
    public var cpuBrand: String
    public var cpuFamily: Int
    public var cpuModel: Int
    public var cpuFeatures: [String]

    /// The current process: reads the loader's status (loads BLAS on first use) and cpuid.
    public static func current() -> SystemReport {
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

    /// One line for benchmark headers.
    public var headline: String {
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
