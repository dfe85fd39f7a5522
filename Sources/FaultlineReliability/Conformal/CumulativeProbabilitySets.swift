import FaultlineLinalg

/// APS and RAPS prediction sets in MAPIE 1.6's convention (`SplitConformalClassifier(conformity_score=
/// "aps" | "raps")`, prefit), for users who must reproduce MAPIE's sets; `SplitConformal(score: .aps)`
/// is the textbook construction (class c is in the set when its own score is ≤ the threshold).
///
/// Calibration: with the classes of a row sorted by probability (descending; ties put the higher class
/// index first, as NumPy's reversed stable argsort), the score is the cumulative probability up to and
/// including the label minus u·p_y, u ~ Uniform(0, 1) — MAPIE always randomises the calibration scores.
/// The threshold τ is the k-th smallest score, k = ⌈(n + 1)(1 − α)⌉ (`SplitConformal.rank`).
///
/// Prediction: the last label L is the first class (in sorted order) whose cumulative probability reaches
/// τ − 1e-8 (`.include` and `.randomized`), or the last one whose cumulative probability stays within
/// max(τ, top probability) + 1e-8 (`.exclude`); the set is every class with p ≥ p_L − 1e-8 (ties join).
/// `.randomized` then keeps L only when V − u ≤ 1e-8, V = (cumsum_L − τ)/p_L (Romano et al. 2020), which
/// makes coverage exact and can leave the set empty. MAPIE's tolerances (1e-8) are kept. Uniforms can be
/// given (to replay another library's draws) or come from a seeded Philox stream per row.
///
/// RAPS adds λ·max(0, rank − k*) to the cumulative probability at each rank (rank 1 = most probable), in
/// the calibration scores and in the prediction sets; the randomised rule divides by
/// p_L − λ·max(0, |set| − k*) + λ·[|set| > k*] as MAPIE does. `init(rapsCalibration:…)` tunes k* and λ on
/// given tuning rows exactly as MAPIE's `RAPSConformityScore` (see there for its quirk).
/// Cost O(C log C) per row.
public struct CumulativeProbabilitySets: Sendable {
    /// What happens to the label whose cumulative probability crosses the threshold.
    public enum LastLabel: Sendable {
        /// Keep it (MAPIE's `include_last_label=True`); drop it (`False`); keep it with the probability that makes coverage exact (`"randomized"`).
        case include, exclude, randomized
    }

    /// The miscoverage α.
    public let alpha: Double
    /// τ, the calibrated threshold on the cumulative score.
    public let threshold: Double
    /// Seed of the uniforms of the randomised scores.
    public let seed: UInt64
    /// RAPS regularisation: λ and k* (0 and 0 for APS).
    public let lambda: Double
    /// k*, RAPS's rank from which the penalty applies.
    public let kStar: Int
    static let tolerance = 1e-8
    /// MAPIE's λ grid (the values of Angelopoulos et al.).
    public static let lambdaGrid = [0.001, 0.01, 0.1, 0.2, 0.5]

    /// Calibrates on (probabilities, labels) with the RAPS regularisation λ, k* (0, 0: APS). `uniforms`
    /// (one per row, in [0, 1]) replace the seeded draws. Throws for α outside (0, 1), λ < 0, bad
    /// probabilities or labels, a wrong number of uniforms, or a calibration set too small for α (naming
    /// the minimum).
    public init(calibration p: Matrix<Float>, labels: [Int], alpha: Double, lambda: Double = 0, kStar: Int = 0,
                uniforms: [Double]? = nil, seed: UInt64 = 0) throws {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        guard lambda >= 0 && lambda.isFinite else { throw ReliabilityError.invalidParameter("λ = \(lambda) must be finite and ≥ 0") }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "calibration probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        let u = try Self.uniforms(uniforms, rows: p.rows, seed: seed, what: "calibration")
        let scores = (0..<p.rows).map { i -> Double in
            let (rank, cumulative) = Self.labelRankAndCumulative(p.row(i), label: labels[i])
            return cumulative - u[i] * Double(p[i, labels[i]]) + max(lambda * Double(rank - kStar), 0)
        }
        threshold = try Self.orderStatistic(scores, alpha: alpha, what: "the calibration set")
        self.alpha = alpha
        self.seed = seed
        self.lambda = lambda
        self.kStar = kStar
    }

    /// RAPS as MAPIE's `RAPSConformityScore` tunes and calibrates it: on the `tuningRows`, k* is one plus
    /// the order statistic of the labels' 0-based ranks and λ the first value of `lambdaGrid` that
    /// shrinks the mean set size by more than 1e-8 (sets formed with `tuningRule` — MAPIE tunes at
    /// prediction time with the rule of that call — and thresholds from the tuning rows' unrandomised
    /// scores); the other rows calibrate. `uniforms` has one entry per row of `p` (the tuning rows' are
    /// not used), so replayed draws stay with their rows whatever order a split listed them in.
    /// MAPIE 1.6 penalises ranks beyond λ, not beyond k*, while it searches λ (`k_star = cast(int,
    /// lambda_)` in `_add_regularization`); the search reproduces that, and the final sets use k*.
    public init(rapsCalibration p: Matrix<Float>, labels: [Int], tuningRows: [Int], alpha: Double, tuningRule: LastLabel = .include,
                uniforms: [Double]? = nil, seed: UInt64 = 0) throws {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        let tuning = Set(tuningRows)
        guard tuning.allSatisfy({ $0 >= 0 && $0 < p.rows }), tuning.count == tuningRows.count, !tuning.isEmpty, tuning.count < p.rows else {
            throw ReliabilityError.invalidInput("tuning rows must be distinct row indices leaving calibration rows, got \(tuningRows.count) for \(p.rows) rows")
        }
        let tp = p.gatherRows(tuningRows)
        let ty = tuningRows.map { labels[$0] }
        try tp.withUnsafeBufferPointer { try Check.probabilities($0, rows: tp.rows, classes: tp.columns, name: "tuning probabilities") }
        let ranks = (0..<tp.rows).map { Self.labelRankAndCumulative(tp.row($0), label: ty[$0]) }
        let kStar = Int(try Self.orderStatistic(ranks.map { Double($0.rank - 1) }, alpha: alpha, what: "the tuning rows")) + 1
        var lambda = 0.0, best = Double.greatestFiniteMagnitude
        for candidate in Self.lambdaGrid {
            let scores = ranks.map { $0.cumulative + max(candidate * Double($0.rank - kStar), 0) }
            let q = try Self.orderStatistic(scores, alpha: alpha, what: "the tuning rows")
            let size = (0..<tp.rows).reduce(0.0) { total, i in
                let row = tp.row(i), cumulative = Self.regularizedCumulative(row, lambda: candidate, kReg: candidate)
                let pLast = Self.lastProbability(row, Double(row[Self.lastIncluded(cumulative, threshold: q, rule: tuningRule)]))
                return total + Double(row.filter { Double($0) - pLast >= -Self.tolerance }.count)
            } / Double(tp.rows)
            if size < best - Self.tolerance { (lambda, best) = (candidate, size) }
        }
        let calibrationRows = (0..<p.rows).filter { !tuning.contains($0) }
        let u = try uniforms.map { given -> [Double] in
            guard given.count == p.rows else { throw ReliabilityError.invalidInput("RAPS needs one uniform per row (\(p.rows)), got \(given.count)") }
            return calibrationRows.map { given[$0] }
        }
        try self.init(calibration: p.gatherRows(calibrationRows),
                      labels: calibrationRows.map { labels[$0] }, alpha: alpha, lambda: lambda, kStar: kStar, uniforms: u, seed: seed)
    }

    /// Prediction sets (class indices, ascending). `uniforms` (one per row) replace the seeded draws of
    /// `.randomized`; `firstSample` offsets the seeded stream so sets do not depend on batching.
    public func predict(_ p: Matrix<Float>, lastLabel: LastLabel = .include, uniforms: [Double]? = nil, firstSample: Int = 0) throws -> [[Int]] {
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
        let u = lastLabel == .randomized ? try Self.uniforms(uniforms, rows: p.rows, seed: seed &+ 0x9E37_79B9, what: "prediction", first: firstSample) : []
        let eps = Self.tolerance
        return (0..<p.rows).map { i in
            let row = p.row(i), c = p.columns
            let cumulative = Self.regularizedCumulative(row, lambda: lambda, kReg: Double(kStar))
            let last = Self.lastIncluded(cumulative, threshold: threshold, rule: lastLabel)
            let pLast = Self.lastProbability(row, Double(row[last]))
            var set = (0..<c).filter { Double(row[$0]) - pLast >= -eps }
            if lastLabel == .randomized {
                let size = set.count
                let v = (cumulative[last] - threshold) / (pLast - lambda * Double(max(0, size - kStar)) + (size > kStar ? lambda : 0))
                if !(v - u[i] <= eps) { set.removeAll { $0 == last } }
            }
            return set
        }
    }

    /// The last label as MAPIE picks it: the first class (in class order) of smallest cumulative − τ
    /// ≥ −1e-8 (include, randomized), or of largest cumulative − max(τ, min cumulative) ≤ 1e-8 (exclude).
    static func lastIncluded(_ cumulative: [Double], threshold: Double, rule: LastLabel) -> Int {
        let eps = tolerance, classes = cumulative.indices
        if rule == .exclude {
            let bound = max(threshold, cumulative.min()!)
            return classes.filter { cumulative[$0] - bound <= eps }.max { cumulative[$0] < cumulative[$1] } ?? 0
        }
        return classes.filter { cumulative[$0] - threshold >= -eps }.min { cumulative[$0] < cumulative[$1] } ?? 0
    }

    /// p_L, or the row's smallest probability ≥ 1e-8 when p_L is below that (MAPIE's guard).
    static func lastProbability(_ row: MatrixRow<Float>, _ pLast: Double) -> Double {
        pLast > tolerance ? pLast : (row.filter { Double($0) >= tolerance }.map(Double.init).min() ?? pLast)
    }

    /// Each class's cumulative probability in the descending order (ties: higher class index first),
    /// plus λ·max(0, rank − kReg) at its 1-based rank.
    static func regularizedCumulative(_ row: MatrixRow<Float>, lambda: Double, kReg: Double) -> [Double] {
        let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 > $1 }
        var cumulative = [Double](repeating: 0, count: row.count), running = 0.0
        for (position, j) in order.enumerated() {
            running += Double(row[j])
            cumulative[j] = running + lambda * max(0, Double(position + 1) - kReg)
        }
        return cumulative
    }

    /// The label's 1-based rank and the (unregularised) cumulative probability up to and including it.
    static func labelRankAndCumulative(_ row: MatrixRow<Float>, label: Int) -> (rank: Int, cumulative: Double) {
        let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 > $1 }
        var running = 0.0
        for (position, j) in order.enumerated() {
            running += Double(row[j])
            if j == label { return (position + 1, running) }
        }
        preconditionFailure("label \(label) outside the row")
    }

    /// Tuning rows for `init(rapsCalibration:…)` when no split is given: about `fraction` of each class's
    /// rows (rounded, Fisher–Yates with Philox keyed by (seed, class)), ascending. MAPIE draws its split
    /// from NumPy's generator instead, so its rows differ; the procedure is the same.
    public static func stratifiedTuningRows(labels: [Int], fraction: Double, seed: UInt64 = 0) throws -> [Int] {
        guard fraction > 0 && fraction < 1 else { throw ReliabilityError.invalidParameter("tuning fraction \(fraction) must lie in (0, 1)") }
        var rowsOfClass: [Int: [Int]] = [:]
        for (i, y) in labels.enumerated() { rowsOfClass[y, default: []].append(i) }
        var chosen: [Int] = []
        for (label, rows) in rowsOfClass {
            var order = rows
            var rng = Philox(seed: seed, stream: UInt64(label))
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.uniform() * Double(i + 1))) }
            chosen += order.prefix(Int((fraction * Double(rows.count)).rounded()))
        }
        return chosen.sorted()
    }

    /// The k-th smallest value, k = ⌈(n + 1)(1 − α)⌉; throws naming the minimum size when k > n.
    static func orderStatistic(_ values: [Double], alpha: Double, what: String) throws -> Double {
        let k = SplitConformal.rank(n: values.count, alpha: alpha)
        guard k <= values.count else {
            throw ReliabilityError.invalidInput("\(what) has \(values.count) samples; α = \(alpha) needs at least \(SplitConformal.minimumCalibrationSize(alpha: alpha))")
        }
        return values.sorted()[k - 1]
    }

    static func uniforms(_ given: [Double]?, rows: Int, seed: UInt64, what: String, first: Int = 0) throws -> [Double] {
        if let given {
            guard given.count == rows, given.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
                throw ReliabilityError.invalidInput("\(what) needs \(rows) uniforms in [0, 1], got \(given.count)")
            }
            return given
        }
        return (0..<rows).map { i in
            var rng = Philox(seed: seed, stream: UInt64(first + i))
            return rng.uniform()
        }
    }
}
