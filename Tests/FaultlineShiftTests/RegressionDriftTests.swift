import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing

/// Residual and target drift of a regression model through the shared KS kernel.
@Suite("regression drift")
struct RegressionDriftTests {
    static func sample(_ rng: inout Philox, n: Int, noise: Double, shift: Double = 0) -> (pred: [Double], y: [Double]) {
        let x = (0..<n).map { _ in rng.uniform() * 4 - 2 + shift }
        return (x.map { 2 * $0 }, x.map { 2 * $0 + noise * rng.normal() })
    }

    /// Each test is the KS test of its two samples, Bonferroni-adjusted over the four.
    @Test func testsAreTheKSKernelOnResidualsTargetsAndPredictions() throws {
        var rng = Philox(seed: 3)
        let a = Self.sample(&rng, n: 200, noise: 1), b = Self.sample(&rng, n: 150, noise: 2, shift: 0.5)
        let d = try RegressionDrift(referencePredictions: a.pred, referenceTargets: a.y, currentPredictions: b.pred, currentTargets: b.y, alpha: 0.05)
        let ra = zip(a.pred, a.y).map { $1 - $0 }, rb = zip(b.pred, b.y).map { $1 - $0 }
        let expected = [try DriftTests.kolmogorovSmirnov(ra, rb), try DriftTests.kolmogorovSmirnov(ra.map(abs), rb.map(abs)),
                        try DriftTests.kolmogorovSmirnov(a.y, b.y), try DriftTests.kolmogorovSmirnov(a.pred, b.pred)]
        #expect(d.tests.map(\.name) == ["residual", "absolute residual", "target", "prediction"])
        for (t, e) in zip(d.tests, expected) {
            #expect(t.statistic == e.statistic && t.pValue == e.pValue && t.adjustedPValue == min(1, 4 * e.pValue))
        }
        #expect(d.drift && d.tests[1].drifted && d.currentMeanAbsoluteResidual > 1.5 * d.referenceMeanAbsoluteResidual)
        #expect(throws: ShiftError.self) { try RegressionDrift(referencePredictions: [1], referenceTargets: [1, 2], currentPredictions: [1], currentTargets: [1]) }
        #expect(throws: ShiftError.self) { try RegressionDrift(referencePredictions: [], referenceTargets: [], currentPredictions: [1], currentTargets: [1]) }
        #expect(throws: ShiftError.self) { try RegressionDrift(referencePredictions: [.nan], referenceTargets: [1], currentPredictions: [1], currentTargets: [1]) }
        #expect(throws: ShiftError.self) { try RegressionDrift(referencePredictions: [1], referenceTargets: [1], currentPredictions: [1], currentTargets: [1], alpha: 1) }
    }

    /// Without change the false-alarm rate stays ≤ α (Bonferroni) over 400 seeds, within 3 binomial
    /// standard errors; a doubled noise level is detected in every seed at n = 300.
    @Test func falseAlarmsAndPowerBySimulation() throws {
        var alarms = 0, detected = 0
        for seed in 0..<400 {
            var rng = Philox(seed: UInt64(seed), stream: 9)
            let a = Self.sample(&rng, n: 300, noise: 1), b = Self.sample(&rng, n: 300, noise: 1), c = Self.sample(&rng, n: 300, noise: 2)
            if try RegressionDrift(referencePredictions: a.pred, referenceTargets: a.y, currentPredictions: b.pred, currentTargets: b.y, alpha: 0.1).drift { alarms += 1 }
            if try RegressionDrift(referencePredictions: a.pred, referenceTargets: a.y, currentPredictions: c.pred, currentTargets: c.y, alpha: 0.1).drift { detected += 1 }
        }
        #expect(Double(alarms) / 400 <= 0.1 + 3 * (0.1 * 0.9 / 400).squareRoot(), "\(alarms) false alarms in 400")
        #expect(detected == 400, "\(detected) of 400 detected")
    }
}
