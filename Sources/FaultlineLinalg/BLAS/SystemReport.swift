import Foundation

/// What ran a computation: backend, BLAS/LAPACK libraries, OpenBLAS core type, thread counts, CPU.
/// `faultline info` prints it, every benchmark prints its `headline` first, and reports record it, so
/// that every figure names the machine, ISA, backend and core it came from.
public struct SystemReport: Codable, Sendable, Equatable {
    /// The default backend (`blas`, `simd` or `reference`).
    public var backend: String
    /// Whether the BLAS library loaded.
    public var blasLoaded: Bool
    /// Whether LAPACKE loaded.
    public var lapackLoaded: Bool
    /// The BLAS library's path.
    public var blasLibrary: String
    /// The LAPACKE library's path.
    public var lapackLibrary: String
    /// The core type OpenBLAS runs (`openblas_get_corename`).
    public var openblasCore: String
    /// OpenBLAS's build configuration (`openblas_get_config`).
    public var openblasConfig: String
    /// The `OPENBLAS_CORETYPE` in force when the library loaded ("" when none).
    public var coretypeRequested: String
    /// Who chose it: `user`, `cpuid` (Faultline), `FAULTLINE_CORETYPE` or `openblas-auto`.
    public var coretypeSource: String
    /// The core type the cpuid rule recommends for this CPU.
    public var cpuidRecommendedCoretype: String
    /// BLAS threads.
    public var blasThreads: Int
    /// Threads of the `simd` backend's GEMM and of the parallel kernels.
    public var simdThreads: Int
    /// Why BLAS did not load ("" when it did).
    public var loadError: String
    /// The Swift compiler version the binary was built with.
    public var swiftVersion: String
    /// The CPU vendor string.
    public var cpuVendor: String
    /// The CPU brand string.
    public var cpuBrand: String
    /// The CPU display family.
    public var cpuFamily: Int
    /// The CPU display model.
    public var cpuModel: Int
    /// The ISA extensions detected (`CPUFeatures.flags`).
    public var cpuFeatures: [String]
    /// The tier of the fused C kernels on the default backend (`Linalg.kernelTier`): reference, simd,
    /// avx2 or avx512; how it was chosen; and the tier of each fused kernel (`Linalg.fusedKernelTiers`).
    /// Optional so that reports written before these fields decode.
    public var vectorTier: String?
    /// How `vectorTier` was chosen: the CPU's best, or `FAULTLINE_VECTOR_TIER`.
    public var vectorTierSource: String?
    /// Each fused kernel and its tier.
    public var vectorKernels: [VectorKernel]?
    /// The ISA the Swift `simd` backend is compiled for (`Linalg.compiledBaselineISA`).
    public var simdISA: String?

    /// One fused kernel and the tier it runs.
    public struct VectorKernel: Codable, Sendable, Equatable {
        /// The kernel's name.
        public var kernel: String
        /// The tier it runs on this machine.
        public var tier: String
    }

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
            cpuFeatures: cpu.flags,
            vectorTier: Linalg.kernelTier().rawValue, vectorTierSource: vectorTierSource,
            vectorKernels: Linalg.fusedKernelTiers().map { VectorKernel(kernel: $0.name, tier: $0.tier.rawValue) },
            simdISA: Linalg.compiledBaselineISA)
    }

    /// How the vector tier was chosen: the CPU's best, or FAULTLINE_VECTOR_TIER (and what it became here).
    static var vectorTierSource: String {
        let setting = Linalg.vectorTierSetting, best = Linalg.bestTier.rawValue
        if setting.isEmpty { return "cpuid (best here: \(best); FAULTLINE_VECTOR_TIER unset)" }
        guard let asked = Linalg.vectorTierOverride else {
            return "cpuid (best here: \(best); FAULTLINE_VECTOR_TIER=\(setting) \(setting.lowercased() == "auto" ? "is the default" : "not understood: use reference, simd, avx2, avx512 or auto"))"
        }
        let runs = Linalg.runnable(asked)
        return "FAULTLINE_VECTOR_TIER=\(setting)" + (runs == asked ? "" : " (this CPU runs \(runs.rawValue))") + ", best here: \(best)"
    }

    /// One line for benchmark headers.
    public var headline: String {
        "backend=\(backend) core=\(openblasCore) (requested \(coretypeRequested), \(coretypeSource)) "
            + "blas_threads=\(blasThreads) simd_threads=\(simdThreads) vector_tier=\(vectorTier ?? "-") cpu=\"\(cpuBrand)\""
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
