import FaultlineLinalg
import FaultlineReliability
import Testing

@Suite("Recalibrator.fit and top-label recalibration")
struct RecalibratorFitTests {
    static func scores(rows: Int, classes: Int, seed: UInt64) -> (logits: Matrix<Float>, labels: [Int]) {
        var rng = Philox(seed: seed)
        let z = Matrix<Float>(rows: rows, columns: classes).map { _ in Float(2 * rng.normal()) }
        let labels = (0..<rows).map { i in (0..<classes).max { z[i, $0] < z[i, $1] }! ^ (i % 5 == 0 ? 1 : 0) }.map { min($0, classes - 1) }
        return (z, labels)
    }

    /// Rows still sum to 1, the top label keeps its place and gets exactly the mapped value (clamped),
    /// the other entries keep their ratios; for every class count 2…7, ties included.
    @Test(arguments: 2...7)
    func topLabelMapKeepsRowsDistributions(classes: Int) throws {
        let (z, _) = Self.scores(rows: 64, classes: classes, seed: UInt64(classes))
        var p = try Linalg.softmaxRows(z)
        for k in 0..<classes { p[0, k] = 1 / Float(classes) }  // an all-tie row: the first maximum is the top label
        p[1, 0] = 1; for k in 1..<classes { p[1, k] = 0 }      // a one-hot row: the rest is spread evenly
        let out = TopLabelRecalibration.apply(p) { 0.5 * $0 + 0.25 }
        for i in 0..<p.rows {
            let top = (0..<classes).reduce(0) { p[i, $1] > p[i, $0] ? $1 : $0 }
            let q = Double(p[i, top]), mapped = min(max(0.5 * q + 0.25, 1e-6), 1 - 1e-6)
            #expect(abs(Double(out[i, top]) - mapped) < 1e-7)
            #expect(abs((0..<classes).reduce(0.0) { $0 + Double(out[i, $1]) } - 1) < 1e-5)
            for k in 0..<classes where k != top && p[i, k] > 0 {
                #expect(abs(Double(out[i, k]) / Double(p[i, k]) / ((1 - mapped) / (1 - q)) - 1) < 1e-5)
            }
        }
        #expect(abs(Double(out[1, 1]) - 0.25 / Double(classes - 1)) < 1e-7)
    }

    /// `fit` is the direct fit of each method, and `recalibrated` applies it.
    @Test func fitDispatchesToEachMethod() throws {
        let (z, y) = Self.scores(rows: 300, classes: 4, seed: 9)
        let p = try Linalg.softmaxRows(z)
        #expect(try Recalibrator.fit(.temperature, logits: z, probabilities: nil, labels: y) == .temperature(TemperatureScaling.fit(logits: z, labels: y)))
        #expect(try Recalibrator.fit(.vector, logits: z, probabilities: nil, labels: y) == .vector(VectorScaling(logits: z, labels: y)))
        let (confidence, correct) = try TopLabelRecalibration.confidenceAndCorrectness(p, labels: y)
        let iso = try IsotonicRegression(x: confidence, y: correct.map { $0 ? 1 : 0 })
        #expect(try Recalibrator.fit(.isotonic, logits: z, probabilities: nil, labels: y) == .isotonic(iso))
        #expect(try Recalibrator.fit(.histogram, logits: nil, probabilities: p, labels: y, bins: 7)
                == .histogram(HistogramBinning(confidences: confidence, correct: correct, bins: 7)))
        #expect(throws: ReliabilityError.self) { try Recalibrator.fit(.temperature, logits: nil, probabilities: p, labels: y) }
        #expect(throws: ReliabilityError.self) { try TopLabelRecalibration.confidenceAndCorrectness(p, labels: [0]) }
        let t = try TemperatureScaling.fit(logits: z, labels: y)
        #expect(Recalibrator.temperature(t).recalibrated(logits: z) == t.apply(z))
        #expect(Recalibrator.temperature(t).recalibrated(probabilities: p) == nil)
        #expect(Recalibrator.isotonic(iso).recalibrated(logits: z) == nil)
        #expect(Recalibrator.isotonic(iso).recalibrated(probabilities: p) == TopLabelRecalibration.apply(p) { iso($0) })
    }
}
