import FaultlineLinalg

extension SystemReport {
    /// The system as a two-column table for people (`faultline info`): backend, libraries, OpenBLAS core
    /// and how it was chosen, threads, Swift, CPU and its features, and any load error.
    public var table: String {
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
        if let vectorTier {
            rows.append(("vector tier", "\(vectorTier) (source: \(vectorTierSource ?? "-"))"))
            for k in vectorKernels ?? [] { rows.append(("  " + k.kernel, k.tier)) }
            rows.append(("simd tier compiled for", simdISA ?? "-"))
        }
        if !loadError.isEmpty { rows.append(("load error", loadError)) }
        return TextTable.keyValue(rows)
    }
}
