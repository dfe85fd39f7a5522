import FaultlineLinalg

/// Split conformal prediction for classification: calibrate a score threshold on held-out data so
/// that prediction sets contain the true class with probability ≥ 1 − α for exchangeable data.
///
/// The threshold is the k-th smallest calibration score with k = ⌈(n + 1)(1 − α)⌉, computed as
/// (n + 1) − ⌊(n + 1)·α⌋ with (n + 1)·α snapped to the nearest integer when it is within 1e-9 of one (so
/// α = 0.1, n = 9 gives k = 9, not the k = 10 a float product 9.000000000000002 would give). k > n means
/// the threshold is +∞ (every class is in every set); `minimumCalibrationSize` says how many samples
/// avoid that.
public struct SplitConformal: Sendable {
    /// The conformity score of a class for a row (lower = more conforming).
    public enum Score: Sendable, Equatable {
        /// LAC / "least ambiguous": 1 − p_y.
        case lac
        /// APS: the total probability of the classes ranked above y plus p_y (sorted descending; ties by
        /// class index); `randomized` subtracts U·p_y with U ~ Uniform(0, 1) from a seeded Philox stream.
        case aps(randomized: Bool)
        /// Top-k: the rank of y (1 = most probable).
        case topK
        /// RAPS (Angelopoulos et al. 2021): the APS score plus λ·max(0, rank(y) − k_reg), which penalises
        /// deep classes and shortens sets. λ and k_reg are given here; `CumulativeProbabilitySets` tunes them as
        /// MAPIE does.
        case raps(lambda: Double, kReg: Int, randomized: Bool)
    }

    /// The conformity score calibrated.
    public let score: Score
    /// The miscoverage α: sets hold the label with probability ≥ 1 − α.
    public let alpha: Double
    /// The calibrated threshold (+∞ when the calibration set is too small for α).
    public let threshold: Double
    /// Thresholds per class for class-conditional (Mondrian) calibration; nil for the marginal version.
    public let classThresholds: [Double]?
    /// Seed of the randomised scores' Philox stream.
    public let seed: UInt64

    /// The order-statistic index k (1-based) for n calibration scores.
    public static func rank(n: Int, alpha: Double) -> Int {
        let product = Double(n + 1) * alpha
        let nearest = product.rounded()
        let floorProduct = abs(product - nearest) <= 1e-9 * max(1, nearest) ? Int(nearest) : Int(product.rounded(.down))
        return (n + 1) - floorProduct
    }

    /// The smallest calibration set for which the threshold is finite: ⌈1/α⌉ − 1.
    public static func minimumCalibrationSize(alpha: Double) -> Int {
        var n = 1
        while rank(n: n, alpha: alpha) > n { n += 1 }
        return n
    }

    /// Calibrates on (probabilities, labels). `classConditional` calibrates one threshold per class
    /// (every class needs enough samples). Throws for α outside (0, 1), bad probabilities or labels, or a
    /// calibration set (or class) too small for α — naming the minimum size.
    public init(calibration p: Matrix<Float>, labels: [Int], alpha: Double, score: Score = .lac,
                classConditional: Bool = false, seed: UInt64 = 0) throws {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        if case .raps(let lambda, let kReg, _) = score, !(lambda >= 0 && lambda.isFinite && kReg >= 0) {
            throw ReliabilityError.invalidParameter("RAPS needs λ ≥ 0 (finite) and k_reg ≥ 0, got λ = \(lambda), k_reg = \(kReg)")
        }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "calibration probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        self.score = score
        self.alpha = alpha
        self.seed = seed
        let scores = (0..<p.rows).map { Self.conformityScore(p.row($0), label: labels[$0], score: score, seed: seed, sample: $0) }
        func quantile(_ values: [Double], _ what: String) throws -> Double {
            let k = Self.rank(n: values.count, alpha: alpha)
            guard k <= values.count else {
                throw ReliabilityError.invalidInput("\(what) has \(values.count) samples; α = \(alpha) needs at least \(Self.minimumCalibrationSize(alpha: alpha))")
            }
            return values.sorted()[k - 1]
        }
        threshold = try quantile(scores, "the calibration set")
        classThresholds = classConditional
            ? try (0..<p.columns).map { c in try quantile(scores.indices.filter { labels[$0] == c }.map { scores[$0] }, "class \(c)") }
            : nil
    }

    /// Prediction sets for new probabilities: class c is in the set of row i when its score (computed as
    /// if c were the label) is ≤ the threshold (its class threshold for Mondrian calibration).
    /// `firstSample` offsets the randomisation stream so sets do not depend on how rows are batched.
    public func predict(_ p: Matrix<Float>, firstSample: Int = 0) throws -> [[Int]] {
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
        return (0..<p.rows).map { i in
            let row = p.row(i)
            return (0..<p.columns).filter { c in
                Self.conformityScore(row, label: c, score: score, seed: seed &+ 0x9E37_79B9, sample: firstSample + i) <= (classThresholds?[c] ?? threshold)
            }
        }
    }

    static func conformityScore(_ row: MatrixRow<Float>, label y: Int, score: Score, seed: UInt64, sample: Int) -> Double {
        let py = Double(row[y])
        switch score {
        case .lac:
            return 1 - py
        case .topK:
            return Double(row.indices.filter { row[$0] > row[y] || (row[$0] == row[y] && $0 < y) }.count + 1)
        case .aps(let randomized):
            return apsScore(row, label: y, randomized: randomized, seed: seed, sample: sample).score
        case .raps(let lambda, let kReg, let randomized):
            let (aps, rank) = apsScore(row, label: y, randomized: randomized, seed: seed, sample: sample)
            return aps + lambda * Double(max(0, rank - kReg))
        }
    }

    /// The APS score of y and its rank (1 = most probable; ties by class index).
    static func apsScore(_ row: MatrixRow<Float>, label y: Int, randomized: Bool, seed: UInt64, sample: Int) -> (score: Double, rank: Int) {
        let py = Double(row[y])
        var above = 0.0, rank = 1
        for j in row.indices where row[j] > row[y] || (row[j] == row[y] && j < y) { above += Double(row[j]); rank += 1 }
        guard randomized else { return (above + py, rank) }
        var rng = Philox(seed: seed, stream: UInt64(sample))
        return (above + rng.uniform() * py, rank)
    }

    /// Share of rows whose set contains the label, and the mean set size.
    public static func evaluate(sets: [[Int]], labels: [Int]) -> (coverage: Double, meanSize: Double) {
        let covered = zip(sets, labels).filter { $0.0.contains($0.1) }.count
        return (Double(covered) / Double(max(labels.count, 1)), Double(sets.reduce(0) { $0 + $1.count }) / Double(max(sets.count, 1)))
    }
}
