import FaultlineLinalg

/// APS prediction sets in MAPIE 1.6's convention (`SplitConformalClassifier(conformity_score="aps")`,
/// prefit), for users who must reproduce MAPIE's sets; `SplitConformal(score: .aps)` is the textbook
/// construction (class c is in the set when its own score is ≤ the threshold).
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
/// Cost O(C log C) per row.
public struct CumulativeProbabilitySets: Sendable {
    /// What happens to the label whose cumulative probability crosses the threshold.
    public enum LastLabel: Sendable { case include, exclude, randomized }

    public let alpha: Double
    public let threshold: Double
    public let seed: UInt64
    static let tolerance = 1e-8

    /// Calibrates on (probabilities, labels). `uniforms` (one per row, in [0, 1)) replace the seeded
    /// draws. Throws for α outside (0, 1), bad probabilities or labels, a wrong number of uniforms, or
    /// a calibration set too small for α (naming the minimum).
    public init(calibration p: Matrix<Float>, labels: [Int], alpha: Double, uniforms: [Double]? = nil, seed: UInt64 = 0) throws {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "calibration probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        let u = try Self.uniforms(uniforms, rows: p.rows, seed: seed, what: "calibration")
        let scores = (0..<p.rows).map { i -> Double in
            let row = Self.sortedCumulative(p.row(i))
            return row.cumulative[labels[i]] - u[i] * Double(p[i, labels[i]])
        }
        let k = SplitConformal.rank(n: scores.count, alpha: alpha)
        guard k <= scores.count else {
            throw ReliabilityError.invalidInput("the calibration set has \(scores.count) samples; α = \(alpha) needs at least \(SplitConformal.minimumCalibrationSize(alpha: alpha))")
        }
        threshold = scores.sorted()[k - 1]
        self.alpha = alpha
        self.seed = seed
    }

    /// Prediction sets (class indices, ascending). `uniforms` (one per row) replace the seeded draws of
    /// `.randomized`; `firstSample` offsets the seeded stream so sets do not depend on batching.
    public func predict(_ p: Matrix<Float>, lastLabel: LastLabel = .include, uniforms: [Double]? = nil, firstSample: Int = 0) throws -> [[Int]] {
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
        let u = lastLabel == .randomized ? try Self.uniforms(uniforms, rows: p.rows, seed: seed &+ 0x9E37_79B9, what: "prediction", first: firstSample) : []
        let eps = Self.tolerance
        return (0..<p.rows).map { i in
            let row = p.row(i), c = p.columns
            let cumulative = Self.sortedCumulative(row).cumulative
            let last: Int
            if lastLabel == .exclude {
                let bound = max(threshold, cumulative.min()!)
                let candidates = (0..<c).filter { cumulative[$0] - bound <= eps }
                last = candidates.max { cumulative[$0] - bound < cumulative[$1] - bound } ?? 0
            } else {
                let candidates = (0..<c).filter { cumulative[$0] - threshold >= -eps }
                last = candidates.min { cumulative[$0] - threshold < cumulative[$1] - threshold } ?? 0
            }
            var pLast = Double(row[last])
            if pLast <= eps { pLast = row.filter { Double($0) >= eps }.map(Double.init).min() ?? pLast }
            var set = (0..<c).filter { Double(row[$0]) - pLast >= -eps }
            if lastLabel == .randomized {
                let v = (cumulative[last] - threshold) / pLast
                if !(v - u[i] <= eps) { set.removeAll { $0 == last } }
            }
            return set
        }
    }

    /// Each class's cumulative probability in the descending order (ties: higher class index first).
    static func sortedCumulative(_ row: MatrixRow<Float>) -> (order: [Int], cumulative: [Double]) {
        let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 > $1 }
        var cumulative = [Double](repeating: 0, count: row.count), running = 0.0
        for j in order { running += Double(row[j]); cumulative[j] = running }
        return (order, cumulative)
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
