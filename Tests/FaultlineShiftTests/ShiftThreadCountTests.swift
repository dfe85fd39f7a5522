import FaultlineLinalg
import FaultlineShift
import Testing

/// Shift statistics and OOD scores are bit-identical for 1 and 2 threads (`Linalg.withThreads` sets
/// Faultline's tasks and OpenBLAS's) on every backend: MMD² (whose OpenBLAS Gram products used to round
/// differently with the BLAS thread count), and the Mahalanobis, per-class Mahalanobis and KNN scores,
/// all built on `Linalg.blockedProduct`. Sizes span several blocks with ragged last ones.
@Suite("thread-count independence: MMD, Mahalanobis, KNN")
struct ShiftThreadCountTests {
    static var backends: [Backend] { Backend.allCases.filter(\.isAvailable) }

    static func bothCounts<R>(_ body: () throws -> R) rethrows -> (one: R, two: R) {
        (try Linalg.withThreads(1, body), try Linalg.withThreads(2, body))
    }

    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    @Test(arguments: [(600, 600), (700, 333), (100, 40)])
    func mmd(sizes: (Int, Int)) throws {
        var rng = Philox(seed: UInt64(sizes.0 + sizes.1))
        let x: Matrix<Float> = rng.matrix(rows: sizes.0, columns: 21, .normal(mean: 0, sd: 1))
        let y: Matrix<Float> = rng.matrix(rows: sizes.1, columns: 21, .normal(mean: 0.1, sd: 1.1))
        for backend in Self.backends where backend != .reference || sizes.0 + sizes.1 <= 1000 {
            for estimator in MMDTest.Estimator.allCases {
                let (one, two) = try Self.bothCounts { try MMDTest.run(x, y, count: 20, seed: 3, estimator: estimator, backend: backend) }
                #expect(one.sigma2.bitPattern == two.sigma2.bitPattern, "\(backend) \(estimator)")
                #expect(one.mmd2.bitPattern == two.mmd2.bitPattern, "\(backend) \(estimator): \(one.mmd2) vs \(two.mmd2)")
                #expect(one.null.map(\.bitPattern) == two.null.map(\.bitPattern), "\(backend) \(estimator)")
            }
        }
    }

    /// Gaussian classes in d = 48 and a fit on 1,200 rows; 1,300 queries (three blocks of 512).
    static func data(seed: UInt64) throws -> (fit: GaussianFit, queries: Matrix<Float>, reference: Matrix<Float>) {
        var rng = Philox(seed: seed)
        let d = 48, classes = 4
        var train: Matrix<Float> = rng.matrix(rows: 1200, columns: d, .normal(mean: 0, sd: 1))
        let labels = (0..<1200).map { $0 % classes }
        for i in 0..<1200 { for j in 0..<d { train[i, j] += Float(labels[i] * (j % 3)) + 5 } }
        var fit = GaussianFit(dimension: d, classes: classes, perClassCovariance: true)
        try fit.update(train, labels: labels)
        var queries: Matrix<Float> = rng.matrix(rows: 1300, columns: d, .normal(mean: 5, sd: 2))
        queries[7, 3] = 1e4  // one far-away row
        return (fit, queries, train)
    }

    /// The fit itself (class sums, centred scatters through SYRK, the parallel-axis merge, the pooled
    /// fit): bit-identical means and covariances for 1 and 2 threads, tied and per class, both
    /// accumulations, for row counts within one block, spanning blocks, and of 1, 2 and 5 rows
    /// (the default backend: scripts/test runs the suite on blas and on simd).
    @Test(arguments: [1, 2, 5, 130, 1_300, 4_097, 9_000])
    func gaussianFit(rows: Int) throws {
        var rng = Philox(seed: UInt64(rows))
        for d in [7, 96, 300] {
            let x: Matrix<Float> = rng.matrix(rows: rows, columns: d, .normal(mean: 3, sd: 2))
            let labels = (0..<rows).map { ($0 * 7) % 3 }
            for perClass in [false, true] {
                for accumulation in GaussianFit.Accumulation.allCases {
                    let (one, two) = try Self.bothCounts { () -> [[UInt64]] in
                        var fit = GaussianFit(dimension: d, classes: 3, accumulation: accumulation, perClassCovariance: perClass)
                        try fit.update(x, labels: labels)
                        try fit.update(x.sliceRows(0..<(rows / 2)), labels: Array(labels[0..<(rows / 2)]))
                        let pooled = try fit.pooled()
                        var parts = [fit.means, fit.covariance, pooled.covariance]
                        if perClass { parts += try (0..<3).filter { fit.counts[$0] > 0 }.map { try fit.classCovariance($0) } }
                        return parts.map { $0.elements.map(\.bitPattern) }
                    }
                    #expect(one == two, "n \(rows) d \(d) perClass \(perClass) \(accumulation)")
                }
            }
        }
    }

    @Test func mahalanobisScores() throws {
        let (fit, queries, _) = try Self.data(seed: 1)
        let tied = try MahalanobisDetector(fit, shrinkage: 0.01), perClass = try PerClassMahalanobisDetector(fit, shrinkage: 0.01)
        for backend in Self.backends {
            for blockRows in [512, 100] {
                let (one, two) = try Self.bothCounts { try tied.score(queries, blockRows: blockRows, backend: backend) }
                #expect(Self.bits(one) == Self.bits(two), "\(backend) block \(blockRows)")
                let (a, b) = try Self.bothCounts { try perClass.score(queries, blockRows: blockRows, backend: backend) }
                #expect(Self.bits(a) == Self.bits(b), "per class \(backend) block \(blockRows)")
            }
        }
    }

    @Test func knnScores() throws {
        let (_, queries, reference) = try Self.data(seed: 2)
        let detector = try KNNDetector(reference: reference, k: 9)
        for backend in Self.backends {
            for (blockRows, tileRows) in [(256, 4096), (100, 333)] {
                let (one, two) = try Self.bothCounts { try detector.score(queries, blockRows: blockRows, tileRows: tileRows, backend: backend) }
                #expect(Self.bits(one) == Self.bits(two), "\(backend) block \(blockRows) tile \(tileRows)")
            }
        }
    }
}
