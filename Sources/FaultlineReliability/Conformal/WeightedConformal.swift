import FaultlineLinalg

/// Weighted split conformal prediction under distribution shift (Tibshirani, Barber, Candès & Ramdas
/// 2019), for classification: calibration scores from the source, test points from a target whose
/// likelihood ratio to the source is known (or estimated) as weights.
///
/// The threshold for a test point of weight w_{n+1} is the 1 − α quantile of the weighted distribution
/// Σᵢ pᵢ δ_{Sᵢ} + p_{n+1} δ_{+∞}, pᵢ = wᵢ / (Σⱼ wⱼ + w_{n+1}): the test point's own weight sits at +∞
/// (`quantile`). With every weight equal this is `SplitConformal`'s threshold exactly.
///
/// - Covariate shift (weights w(x)): `covariateShiftSets`, one threshold per test row.
/// - Label shift (w(y) = q(y)/p(y)): `LabelShiftSets`; the likelihood ratio depends on the label, so the
///   test point's weight is w(y) of the candidate label y, and calibration row i weighs w(Yᵢ)
///   (Podkopaev & Ramdas 2021) — one threshold per candidate class.
///
/// With the true weights, P(Y ∈ C(X)) ≥ 1 − α on the target; with estimated weights the guarantee holds
/// approximately. Scores as `SplitConformal.Score` (LAC, APS, RAPS, top-k).
public enum WeightedConformal {
    /// The weighted quantile: the smallest calibration score s with Σ_{i: Sᵢ ≤ s} wᵢ ≥ (1 − α)(W + w_test),
    /// W = Σᵢ wᵢ, or +∞ when no calibration score reaches it (the mass at +∞ is needed). The comparison
    /// allows 1e-9·(W + w_test) of rounding, so equal weights give exactly the order statistic
    /// ⌈(n + 1)(1 − α)⌉ of `SplitConformal.rank`. Ties: all equal scores enter together.
    /// O(n log n). Throws for no scores, a count mismatch, α outside (0, 1), a weight that is negative or
    /// not finite, a NaN score, or weights that sum to 0.
    public static func quantile(scores: [Double], weights: [Double], testWeight: Double, alpha: Double) throws -> Double {
        try Sorted(scores: scores, weights: weights).quantile(testWeight: testWeight, alpha: alpha)
    }

    /// Calibration scores sorted ascending with cumulative weights, for many thresholds at once.
    public struct Sorted: Sendable {
        /// The calibration scores, ascending (ties in input order).
        public let scores: [Double]
        /// cumulative[j] = total weight of the j + 1 smallest scores.
        public let cumulative: [Double]
        /// The sum of the calibration weights.
        public var totalWeight: Double { cumulative.last ?? 0 }

        /// Sorts the scores with their weights. Throws `ReliabilityError.invalidInput` for no scores, unequal counts, a negative or non-finite weight, a NaN score or weights summing to 0.
        public init(scores s: [Double], weights w: [Double]) throws {
            guard !s.isEmpty else { throw ReliabilityError.invalidInput("no calibration scores") }
            guard s.count == w.count else { throw ReliabilityError.invalidInput("\(s.count) calibration scores but \(w.count) weights") }
            if let bad = w.firstIndex(where: { !($0 >= 0 && $0.isFinite) }) {
                throw ReliabilityError.invalidInput("calibration weight \(bad) is \(w[bad]); weights must be finite and ≥ 0")
            }
            if let bad = s.firstIndex(where: \.isNaN) { throw ReliabilityError.invalidInput("calibration score \(bad) is NaN") }
            let order = s.indices.sorted { s[$0] < s[$1] || (s[$0] == s[$1] && $0 < $1) }
            scores = order.map { s[$0] }
            var running = 0.0
            cumulative = order.map { running += w[$0]; return running }
            guard running > 0 else { throw ReliabilityError.invalidInput("the calibration weights sum to 0") }
        }

        /// See `WeightedConformal.quantile`. O(log n).
        public func quantile(testWeight: Double, alpha: Double) throws -> Double {
            guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
            guard testWeight >= 0, !testWeight.isNaN else { throw ReliabilityError.invalidInput("test weight \(testWeight) must be ≥ 0") }
            guard testWeight.isFinite else { return .infinity }
            let total = totalWeight + testWeight
            let target = (1 - alpha) * total - 1e-9 * total
            // The first position whose cumulative weight reaches the target.
            var lo = 0, hi = cumulative.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if cumulative[mid] >= target { hi = mid } else { lo = mid + 1 }
            }
            return lo < scores.count ? scores[lo] : .infinity
        }
    }

    /// Split conformal sets under a label shift with class weights w(y) = q(y)/p(y): class y enters the
    /// set of x when S(x, y) ≤ t(y), t(y) = the weighted quantile with calibration weights w(Yᵢ) and test
    /// weight w(y).
    public struct LabelShiftSets: Sendable {
        /// The conformity score.
        public let score: SplitConformal.Score
        /// The miscoverage α.
        public let alpha: Double
        /// w(y) = q(y)/p(y), one per class.
        public let classWeights: [Double]
        /// t(y), one per candidate class (+∞ when the calibration set cannot reach 1 − α).
        public let thresholds: [Double]
        /// Seed of the randomised scores.
        public let seed: UInt64

        /// Throws for bad probabilities or labels (`ReliabilityError`), α outside (0, 1), a weight count
        /// other than the class count, a negative or non-finite weight, or calibration weights summing to 0.
        public init(calibration p: Matrix<Float>, labels: [Int], alpha: Double, classWeights w: [Double],
                    score: SplitConformal.Score = .lac, seed: UInt64 = 0) throws {
            guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
            try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "calibration probabilities") }
            try Check.labels(labels, rows: p.rows, classes: p.columns)
            guard w.count == p.columns else { throw ReliabilityError.invalidInput("\(w.count) class weights for \(p.columns) classes") }
            if let bad = w.firstIndex(where: { !($0 >= 0 && $0.isFinite) }) {
                throw ReliabilityError.invalidInput("class weight \(bad) is \(w[bad]); weights must be finite and ≥ 0")
            }
            let scores = (0..<p.rows).map { SplitConformal.conformityScore(p.row($0), label: labels[$0], score: score, seed: seed, sample: $0) }
            let sorted = try Sorted(scores: scores, weights: labels.map { w[$0] })
            thresholds = try w.map { try sorted.quantile(testWeight: $0, alpha: alpha) }
            (self.score, self.alpha, self.classWeights, self.seed) = (score, alpha, w, seed)
        }

        /// The sets of new rows (randomised scores use the stream as `SplitConformal.predict`).
        public func predict(_ p: Matrix<Float>, firstSample: Int = 0) throws -> [[Int]] {
            try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
            guard p.columns == thresholds.count else { throw ReliabilityError.invalidInput("\(p.columns) classes, calibrated on \(thresholds.count)") }
            return (0..<p.rows).map { i in
                let row = p.row(i)
                return (0..<p.columns).filter { c in
                    SplitConformal.conformityScore(row, label: c, score: score, seed: seed &+ 0x9E37_79B9, sample: firstSample + i) <= thresholds[c]
                }
            }
        }
    }

    /// Split conformal sets under a covariate shift: test row j uses the weighted quantile with the
    /// calibration weights w(xᵢ) and its own weight w(x_j). O((n + m) log n + m·K).
    /// Throws as `LabelShiftSets` for the inputs, and for a weight count that differs from the rows.
    public static func covariateShiftSets(calibration p: Matrix<Float>, labels: [Int], calibrationWeights: [Double],
                                          test: Matrix<Float>, testWeights: [Double], alpha: Double,
                                          score: SplitConformal.Score = .lac, seed: UInt64 = 0) throws -> [[Int]] {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "calibration probabilities") }
        try test.withUnsafeBufferPointer { try Check.probabilities($0, rows: test.rows, classes: test.columns, name: "probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        guard test.columns == p.columns else { throw ReliabilityError.invalidInput("\(test.columns) test classes, \(p.columns) calibration classes") }
        guard testWeights.count == test.rows else { throw ReliabilityError.invalidInput("\(test.rows) test rows but \(testWeights.count) test weights") }
        let scores = (0..<p.rows).map { SplitConformal.conformityScore(p.row($0), label: labels[$0], score: score, seed: seed, sample: $0) }
        let sorted = try Sorted(scores: scores, weights: calibrationWeights)
        return try (0..<test.rows).map { i in
            let t = try sorted.quantile(testWeight: testWeights[i], alpha: alpha)
            let row = test.row(i)
            return (0..<test.columns).filter { c in
                SplitConformal.conformityScore(row, label: c, score: score, seed: seed &+ 0x9E37_79B9, sample: i) <= t
            }
        }
    }
}
