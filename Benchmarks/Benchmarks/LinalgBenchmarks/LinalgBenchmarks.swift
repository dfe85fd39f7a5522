import Benchmark
import FaultlineLinalg

/// gemm, syrk and Cholesky per backend at a few sizes. The backend and OpenBLAS core are printed
/// first, because every figure depends on them.
let benchmarks: @Sendable () -> Void = {
    let status = NativeBLAS.status
    print("backend=\(Backend.default) core=\(NativeBLAS.coreName ?? "-") requested=\(status.coretypeRequested) "
        + "(\(status.coretypeSource)) blas_threads=\(NativeBLAS.threads) simd_threads=\(Linalg.simdThreads)")

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 50)

    let backends: [Backend] = NativeBLAS.isAvailable ? [.blas, .simd] : [.simd]
    for backend in backends {
        for n in [256, 1024] {
            var rng = Philox(seed: UInt64(n))
            let a: Matrix<Float> = rng.matrix(rows: n, columns: n)
            let b: Matrix<Float> = rng.matrix(rows: n, columns: n)
            Benchmark("sgemm \(n)³ \(backend)") { benchmark in
                var c = Matrix<Float>(rows: n, columns: n)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { try Linalg.gemm(a, b, into: &c, backend: backend) }
                blackHole(c)
            }
            let x: Matrix<Double> = rng.matrix(rows: 4 * n, columns: n)
            Benchmark("dsyrk AᵀA \(4 * n)×\(n) \(backend)") { benchmark in
                var c = Matrix<Double>(rows: n, columns: n)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { try Linalg.syrk(x, transA: .transposed, into: &c, backend: backend) }
                blackHole(c)
            }
            var spd = Matrix<Double>(rows: n, columns: n)
            try? Linalg.syrk(x, transA: .transposed, alpha: 1 / Double(4 * n), into: &spd, backend: .blas)
            for i in 0..<n { spd[i, i] += 0.1 }
            Benchmark("dpotrf \(n) \(backend)") { benchmark in
                for _ in benchmark.scaledIterations { blackHole(try Linalg.cholesky(spd, backend: backend)) }
            }
        }
    }
}
