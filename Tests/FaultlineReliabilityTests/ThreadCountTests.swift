import FaultlineLinalg
import FaultlineReliability
import Testing

/// The reductions documented as independent of the thread count are bit-identical for 1 and 2 threads
/// (`Linalg.withThreads` sets Faultline's tasks and OpenBLAS's), on the default and every explicit
/// backend, for row counts around the edges of the fixed partition (`Linalg.reductionParts`).
@Suite("thread-count independence: calibration, temperature, ensemble")
struct ReliabilityThreadCountTests {
    static let rowCounts = [1, 2, 63, 64, 65, 1000, 4097]
    static var backends: [Backend?] { [nil] + Backend.allCases.filter(\.isAvailable) }

    /// The same computation with 1 and with 2 threads.
    static func bothCounts<R>(_ body: () throws -> R) rethrows -> (one: R, two: R) {
        (try Linalg.withThreads(1, body), try Linalg.withThreads(2, body))
    }

    /// Logits with a signal: the label holds the largest logit 70 % of the time, so T is identifiable.
    static func logits(_ n: Int, classes c: Int, seed: UInt64) -> (Matrix<Float>, [Int]) {
        var rng = Philox(seed: seed)
        var z: Matrix<Float> = rng.matrix(rows: n, columns: c, .normal(mean: 0, sd: 2))
        let labels = (0..<n).map { i -> Int in
            if rng.uniform() < 0.7 { return (0..<c).max { z[i, $0] < z[i, $1] }! }
            return Int(rng.uniform() * Double(c))
        }
        if n > 0 { z[0, labels[0]] -= 10 }  // one row below its maximum: a finite optimum
        return (z, labels)
    }

    @Test(arguments: rowCounts) func calibrationMetrics(rows n: Int) throws {
        let (z, y) = Self.logits(n, classes: 10, seed: UInt64(n))
        for backend in Self.backends {
            for binning in [CalibrationMetrics.Binning.equalWidth(bins: 15), .torchmetrics(bins: 10)] {
                let (one, two) = try Self.bothCounts { try CalibrationMetrics.compute(logits: z, labels: y, binning: binning, backend: backend) }
                // Doubles print as their shortest round-trip form: equal text is equal bits.
                #expect("\(one)" == "\(two)", "\(backend?.rawValue ?? "default") \(binning) n \(n)")
            }
        }
    }

    @Test(arguments: rowCounts.filter { $0 >= 63 }) func temperatureFit(rows n: Int) throws {
        let (z, y) = Self.logits(n, classes: 7, seed: 100 + UInt64(n))
        for backend in Self.backends {
            let (one, two) = try Self.bothCounts { try TemperatureScaling.fit(logits: z, labels: y, backend: backend) }
            #expect(one.temperature.bitPattern == two.temperature.bitPattern, "\(backend?.rawValue ?? "default") n \(n)")
            #expect(one == two)
        }
    }

    @Test(arguments: rowCounts) func ensembleUncertainty(rows n: Int) throws {
        var rng = Philox(seed: 7 + UInt64(n))
        let members = try (0..<5).map { _ in try Linalg.softmaxRows(rng.matrix(rows: n, columns: 9, .normal(mean: 0, sd: 2), as: Float.self)) }
        for backend in Self.backends {
            let (one, two) = try Self.bothCounts { try EnsembleUncertainty.compute(members: members, backend: backend) }
            let fields: [KeyPath<EnsembleUncertainty, [Double]>] = [\.predictiveEntropy, \.expectedEntropy, \.mutualInformation, \.meanVariance, \.variationRatio]
            for field in fields { #expect(one[keyPath: field].map(\.bitPattern) == two[keyPath: field].map(\.bitPattern)) }
            #expect(one.prediction == two.prediction)
            #expect(one.mean.withUnsafeBufferPointer { $0.map(\.bitPattern) } == two.mean.withUnsafeBufferPointer { $0.map(\.bitPattern) })
        }
    }
}
