/// Drift of a regression model between a reference set and a current set: two-sample KS tests
/// (`DriftTests.kolmogorovSmirnov`, the same kernel as feature drift) on the residuals y − ŷ, on the
/// absolute residuals |y − ŷ| (the error size, blind to its sign), on the targets y and on the
/// predictions ŷ, with a Bonferroni decision over the four tests at level `alpha`. The residual tests
/// say whether the model's errors changed; the target and prediction tests whether the data did.
/// O((m + n) log(m + n)) plus the KS p-values (`method`). Throws for empty, unequal-length or
/// non-finite inputs, or α outside (0, 1).
public struct RegressionDrift: Sendable, Codable, Equatable {
    /// One of the four KS tests.
    public struct Test: Sendable, Codable, Equatable {
        /// What was tested: `residual`, `absolute residual`, `target` or `prediction`.
        public var name: String
        /// The KS statistic D.
        public var statistic: Double
        /// The KS p-value before adjustment.
        public var pValue: Double
        /// Bonferroni-adjusted: min(1, 4·p).
        public var adjustedPValue: Double
        /// adjustedPValue ≤ α.
        public var drifted: Bool
    }

    /// The significance level of the decision.
    public var alpha: Double
    /// The four tests.
    public var tests: [Test]
    /// Whether any test drifted.
    public var drift: Bool
    /// Mean absolute residual and mean residual of each set (what changed, in the target's units).
    public var referenceMeanAbsoluteResidual: Double
    /// Mean |y − ŷ| of the current set.
    public var currentMeanAbsoluteResidual: Double
    /// Mean y − ŷ of the reference set.
    public var referenceMeanResidual: Double
    /// Mean y − ŷ of the current set.
    public var currentMeanResidual: Double

    /// Runs the four tests on the two sets (predictions and targets of equal length per set).
    public init(referencePredictions: [Double], referenceTargets: [Double], currentPredictions: [Double], currentTargets: [Double],
                alpha: Double = 0.05, method: DriftTests.KolmogorovSmirnovMethod = .auto) throws {
        guard alpha > 0 && alpha < 1 else { throw ShiftError.invalidInput("α = \(alpha) must lie in (0, 1)") }
        guard referencePredictions.count == referenceTargets.count, currentPredictions.count == currentTargets.count else {
            throw ShiftError.invalidInput("reference: \(referencePredictions.count) predictions for \(referenceTargets.count) targets; "
                                          + "current: \(currentPredictions.count) for \(currentTargets.count)")
        }
        let r = zip(referencePredictions, referenceTargets).map { $1 - $0 }, c = zip(currentPredictions, currentTargets).map { $1 - $0 }
        let samples: [(String, [Double], [Double])] = [
            ("residual", r, c), ("absolute residual", r.map(abs), c.map(abs)),
            ("target", referenceTargets, currentTargets), ("prediction", referencePredictions, currentPredictions),
        ]
        self.alpha = alpha
        tests = try samples.map { name, a, b in
            let t = try DriftTests.kolmogorovSmirnov(a, b, method: method)
            let adjusted = min(1, t.pValue * Double(samples.count))
            return Test(name: name, statistic: t.statistic, pValue: t.pValue, adjustedPValue: adjusted, drifted: adjusted <= alpha)
        }
        drift = tests.contains { $0.drifted }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        (referenceMeanAbsoluteResidual, currentMeanAbsoluteResidual) = (mean(r.map(abs)), mean(c.map(abs)))
        (referenceMeanResidual, currentMeanResidual) = (mean(r), mean(c))
    }
}
