import FaultlineLinalg

/// Split-conformal classification by score name: one entry point over `SplitConformal` (LAC, APS, RAPS,
/// top-k, optionally class-conditional) and `CumulativeProbabilitySets` (MAPIE's APS and RAPS, with
/// MAPIE's last-label rules) — `faultline conformal`'s `--score`.
public enum ConformalScore: String, CaseIterable, Sendable {
    /// LAC; APS (deterministic, randomised, MAPIE's); RAPS (ours, MAPIE's); top-k.
    case lac, aps, apsRandomized = "aps-randomized", apsMapie = "aps-mapie", raps, rapsMapie = "raps-mapie", topk

    /// The MAPIE-convention scores (`CumulativeProbabilitySets`): no class-conditional variant.
    public var isMapie: Bool { self == .apsMapie || self == .rapsMapie }

    /// Settings of the scores that have them (ignored by the others).
    public struct Settings: Sendable {
        /// RAPS λ and k_reg (`raps`).
        public var lambda = 0.01, kReg = 1
        /// `raps-mapie`: the share of the calibration rows (stratified) that tunes k* and λ.
        public var tuningFraction = 0.1
        /// `aps-mapie`, `raps-mapie`: MAPIE's `include_last_label` (and RAPS's tuning rule).
        public var lastLabel = CumulativeProbabilitySets.LastLabel.include
        /// One threshold per class (Mondrian); not with the MAPIE scores.
        public var classConditional = false
        /// Seed of the randomised scores and of the tuning split.
        public var seed: UInt64 = 0
        /// The defaults: λ = 0.01, k_reg = 1, 10 % tuning rows, MAPIE's include rule, marginal, seed 0.
        public init() {}
    }

    /// Calibrates at miscoverage `alpha` on (calibration, labels) and predicts the sets of `test` (rows of
    /// probabilities). Accuracy, cost and errors: those of the underlying predictor (`ReliabilityError`
    /// for bad probabilities, labels or α); class-conditional MAPIE scores are `invalidParameter`.
    public func sets(calibration: Matrix<Float>, labels: [Int], alpha: Double, test: Matrix<Float>,
                     settings s: Settings = Settings()) throws -> (threshold: Double, sets: [[Int]]) {
        let score: SplitConformal.Score
        switch self {
        case .lac: score = .lac
        case .aps: score = .aps(randomized: false)
        case .apsRandomized: score = .aps(randomized: true)
        case .raps: score = .raps(lambda: s.lambda, kReg: s.kReg, randomized: false)
        case .topk: score = .topK
        case .apsMapie, .rapsMapie:
            guard !s.classConditional else { throw ReliabilityError.invalidParameter("\(rawValue) has no class-conditional variant") }
            let predictor = self == .apsMapie
                ? try CumulativeProbabilitySets(calibration: calibration, labels: labels, alpha: alpha, seed: s.seed)
                : try CumulativeProbabilitySets(rapsCalibration: calibration, labels: labels,
                                                tuningRows: CumulativeProbabilitySets.stratifiedTuningRows(labels: labels, fraction: s.tuningFraction, seed: s.seed),
                                                alpha: alpha, tuningRule: s.lastLabel, seed: s.seed)
            return (predictor.threshold, try predictor.predict(test, lastLabel: s.lastLabel))
        }
        let predictor = try SplitConformal(calibration: calibration, labels: labels, alpha: alpha, score: score, classConditional: s.classConditional, seed: s.seed)
        return (predictor.threshold, try predictor.predict(test))
    }

    /// Sets as an N × `classes` 0/1 membership matrix (row i, column c is 1 when c ∈ sets[i]).
    public static func membership(_ sets: [[Int]], classes: Int) -> Matrix<Float> {
        var m = Matrix<Float>(rows: sets.count, columns: classes)
        for (i, set) in sets.enumerated() { for c in set { m[i, c] = 1 } }
        return m
    }
}
