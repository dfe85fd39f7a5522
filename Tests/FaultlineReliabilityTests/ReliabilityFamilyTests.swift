import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// Reliability metrics over families of inputs: permutation invariance with ties across bin cuts, the
/// equal-mass tie rule, and temperature scaling on data that does not identify a temperature.
@Suite("reliability families")
struct ReliabilityFamilyTests {
    /// N × C probabilities whose top-1 confidences take few distinct values (many ties, some falling
    /// across equal-mass cuts), with labels right or wrong at random.
    static func tiedProbabilities(rows n: Int, classes c: Int, levels: Int, seed: UInt64) -> (p: Matrix<Float>, y: [Int]) {
        var rng = Philox(seed: seed)
        var p = Matrix<Float>(rows: n, columns: c)
        var y = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let top = Int(rng.uniform() * Double(c)), level = Int(rng.uniform() * Double(levels))
            let confidence = 0.5 + 0.45 * Double(level) / Double(max(levels - 1, 1))
            for j in 0..<c { p[i, j] = Float(j == top ? confidence : (1 - confidence) / Double(c - 1)) }
            y[i] = rng.uniform() < confidence ? top : (top + 1) % c
        }
        return (p, y)
    }

    static func permuted(_ p: Matrix<Float>, _ y: [Int], seed: UInt64) -> (Matrix<Float>, [Int]) {
        var rng = Philox(seed: seed)
        var order = Array(0..<p.rows)
        for i in stride(from: p.rows - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.uniform() * Double(i + 1))) }
        return (p.gatherRows(order), order.map { y[$0] })
    }

    /// Every metric of every binning is invariant under row permutations, including permutations that
    /// move right and wrong rows among equal confidences across an equal-mass cut (which changed the
    /// equal-mass ECE from 0.175 to 0.425 before ties were kept together).
    @Test(arguments: [(7, 2), (60, 4), (301, 10), (1000, 3)])
    func everyMetricIsPermutationInvariant(rows: Int, levels: Int) throws {
        let (p, y) = Self.tiedProbabilities(rows: rows, classes: 4, levels: levels, seed: UInt64(rows))
        for binning: CalibrationMetrics.Binning in [.equalWidth(bins: 15), .equalWidthRightClosed(bins: 10), .torchmetrics(bins: 15),
                                                     .equalMass(bins: 5), .equalMass(bins: 15)] {
            let base = try CalibrationMetrics.compute(probabilities: p, labels: y, binning: binning)
            for seed: UInt64 in 1...5 {
                let (q, z) = Self.permuted(p, y, seed: seed)
                let m = try CalibrationMetrics.compute(probabilities: q, labels: z, binning: binning)
                for (name, a, b) in [("ECE", m.ece, base.ece), ("MCE", m.mce, base.mce), ("Brier", m.brier, base.brier), ("NLL", m.nll, base.nll)] {
                    #expect(abs(a - b) <= 1e-12, "\(binning) rows \(rows), permutation \(seed): \(name) \(a) vs \(b)")
                }
                #expect(m.bins.map(\.count) == base.bins.map(\.count), "\(binning): bin counts depend on row order")
            }
            #expect(abs(try ClasswiseCalibration.classwiseECE(probabilities: Self.permuted(p, y, seed: 9).0, labels: Self.permuted(p, y, seed: 9).1)
                        - ClasswiseCalibration.classwiseECE(probabilities: p, labels: y)) <= 1e-12)
        }
    }

    /// Equal-mass bins never split equal confidences: no confidence value appears in two bins, and the
    /// bins hold every row; without ties they are the usual ⌈N/B⌉/⌊N/B⌋ sizes.
    @Test func equalMassKeepsTiesInOneBin() throws {
        for (rows, levels) in [(50, 3), (97, 7), (400, 12)] {
            let (p, y) = Self.tiedProbabilities(rows: rows, classes: 3, levels: levels, seed: 3)
            let m = try CalibrationMetrics.compute(probabilities: p, labels: y, binning: .equalMass(bins: 8))
            #expect(m.bins.reduce(0) { $0 + $1.count } == rows)
            let occupied = m.bins.filter { $0.count > 0 }
            #expect(zip(occupied, occupied.dropFirst()).allSatisfy { $0.upper < $1.lower }, "a confidence value spans two bins: \(occupied)")
        }
        var rng = Philox(seed: 4)
        let distinct = try Matrix<Float>(rows: 103, columns: 2, elements: (0..<103).flatMap { _ -> [Float] in
            let c = Float(0.5 + 0.5 * rng.uniform()); return [c, 1 - c]
        })
        let m = try CalibrationMetrics.compute(probabilities: distinct, labels: [Int](repeating: 0, count: 103), binning: .equalMass(bins: 10))
        #expect(m.bins.map(\.count) == [11, 11, 11, 10, 10, 10, 10, 10, 10, 10])
    }

    /// The logits variants of every metric (probabilities formed row by row, never materialised) equal
    /// the probability variants on the softmax of the same logits, over several shapes and scales.
    @Test(arguments: [(1, 2), (37, 3), (500, 10), (2000, 100)])
    func logitMetricsEqualProbabilityMetrics(rows: Int, classes: Int) throws {
        var rng = Philox(seed: UInt64(rows * classes))
        for scale in [0.1, 3.0, 30.0] {
            let z = try Matrix<Float>(rows: rows, columns: classes, elements: (0..<(rows * classes)).map { _ in Float(scale * rng.normal()) })
            let y = (0..<rows).map { _ in Int(rng.uniform() * Double(classes)) % classes }
            let p = try Linalg.softmaxRows(z)
            let fromLogits = (try ClasswiseCalibration.classwiseECE(logits: z, labels: y), try ClasswiseCalibration.topLabelECE(logits: z, labels: y))
            let fromProbabilities = (try ClasswiseCalibration.classwiseECE(probabilities: p, labels: y), try ClasswiseCalibration.topLabelECE(probabilities: p, labels: y))
            // float32 softmax vs Double: a probability on a bin edge may land in the neighbouring bin, moving
            // the ECE by at most about 2/N of one bin's gap.
            #expect(abs(fromLogits.0 - fromProbabilities.0) <= 1e-5 + 2.0 / Double(rows * classes), "classwise, scale \(scale)")
            #expect(abs(fromLogits.1 - fromProbabilities.1) <= 1e-5 + 2.0 / Double(rows), "top-label, scale \(scale)")
            let a = try CalibrationMetrics.compute(logits: z, labels: y), b = try CalibrationMetrics.compute(probabilities: p, labels: y)
            // The NLL from logits is the log-sum-exp form (the probability path clamps underflowed float
            // probabilities, so at large scales it is the less accurate one): compare it with float64.
            let nll = (0..<rows).reduce(0.0) { total, i in
                let row = (0..<classes).map { Double(z[i, $0]) }, m = row.max()!
                return total + m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) - row[y[i]]
            } / Double(rows)
            #expect(abs(a.nll - nll) <= 1e-5 * max(1, nll), "NLL \(a.nll) vs float64 \(nll), scale \(scale)")
            #expect(abs(a.brier - b.brier) <= 1e-5 && a.accuracy == b.accuracy, "scale \(scale)")
        }
        var bad = try Matrix<Float>(rows: 2, columns: 3, elements: [0, 1, 2, 3, 4, 5])
        bad[1, 2] = .nan
        #expect(throws: ReliabilityError.self) { try ClasswiseCalibration.classwiseECE(logits: bad, labels: [0, 1]) }
    }

    /// Separable calibration logits (every label holds its row's maximum, ties included) and logits no
    /// better than uniform do not identify a temperature: a typed error saying why, never an arbitrary T.
    @Test(arguments: [2, 5, 40])
    func temperatureOnNonIdentifiableLogitsThrows(rows: Int) throws {
        var rng = Philox(seed: UInt64(rows))
        let c = 4
        var separable = Matrix<Float>(rows: rows, columns: c), labels = [Int](repeating: 0, count: rows)
        for i in 0..<rows {
            labels[i] = i % c
            for j in 0..<c { separable[i, j] = Float(rng.uniform() * 3) }
            separable[i, labels[i]] = (0..<c).map { separable[i, $0] }.max()! + Float(i % 3 == 0 ? 0 : 2 + rng.uniform())
        }
        for logits in [separable, separable.map { $0 * 100 }] {
            let error = try #require(throws: ReliabilityError.self) { try TemperatureScaling.fit(logits: logits, labels: labels) }
            guard case .notIdentifiable(let why) = error else { Issue.record("expected notIdentifiable, got \(error)"); continue }
            #expect(why.contains("T → 0"))
        }
        // The labels at each row's smallest logit: the NLL keeps falling as T → ∞.
        let reversed = separable.map { -$0 }
        let error = try #require(throws: ReliabilityError.self) { try TemperatureScaling.fit(logits: reversed, labels: labels) }
        guard case .notIdentifiable(let why) = error else { Issue.record("expected notIdentifiable, got \(error)"); return }
        #expect(why.contains("T → ∞"))
        // One mistake makes the minimum finite: the fit succeeds and is a stationary point of the NLL.
        var one = separable
        one[0, (labels[0] + 1) % c] = one[0, labels[0]] + 1
        let fit = try TemperatureScaling.fit(logits: one, labels: labels)
        #expect(fit.temperature > 0 && fit.temperature.isFinite && fit.nllAfter <= fit.nllBefore)
    }
}
