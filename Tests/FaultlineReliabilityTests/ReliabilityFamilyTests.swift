import FaultlineLinalg
import FaultlineReliability
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
