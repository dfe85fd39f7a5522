import FaultlineLinalg

/// Label-noise detection by confident learning (Northcutt, Jiang & Chuang, JAIR 2021), with cleanlab's
/// definitions (`cleanlab.count`, `cleanlab.filter`, `cleanlab.rank`, version 2.9.0) on single-label data.
///
/// Inputs: out-of-sample predicted probabilities P (n × K; e.g. cross-validated — probabilities of a
/// model on its own training rows make the method find few issues) and the given labels y.
/// - Thresholds: t_j = mean of P[i, j] over the rows labelled j; 2 for a class absent from the labels
///   (nothing can reach it); then clipped below at 2·10⁻⁶.
/// - Confident joint C (K × K, given label × latent true label): row i is confident in class j when
///   P[i, j] ≥ t_j − 10⁻⁶. A row confident in no class is not counted; confident in one class j, it counts
///   in C[y_i, j]; confident in several, it counts in C[y_i, argmax_j P[i, j]] — the row's overall argmax
///   (first on ties), which cleanlab uses even when that class is itself below its threshold. Diagonal
///   entries are raised to at least 1.
/// - Calibration: row i of C is rescaled to the count of label i, the whole to n, and every row rounded
///   to integers preserving its total (round half to even, then the largest remainders move up or the
///   smallest move down until the row's sum is met).
/// - Estimated joint Q = calibrated C / its sum; noise matrix P(given = i | true = j) = C[i, j] / Σ_i C[i, j]
///   and inverse noise matrix P(true = j | given = i), off-diagonal rates clipped to [0, 0.9999] and
///   columns renormalised; the true-label prior py by cleanlab's "cnt" rule (clipped to [10⁻⁶, 1], summing
///   to 1). cleanlab's `estimate_latent(..., converge_latent_estimates=False)`.
/// - Issues, `.pruneByNoiseRate` (cleanlab's default): the prune counts are Cᵀ with each diagonal raised
///   to ≥ 1 (the raise taken evenly from the column's other non-zero entries, floored at 0, truncated to
///   integers); for every given class k with more than one row and every other class j, the
///   C'[j, k] rows labelled k with the largest margin P[i, j] − P[i, k] are flagged.
///   `.confidentLearning`: the rows counted off the diagonal of the uncalibrated joint. `.pruneByClass`:
///   for every given class k, its (count − C'[k, k]) rows of lowest P[i, k]; `.both`: flagged by both
///   `.pruneByNoiseRate` and `.pruneByClass`. In all, a row
///   is then cleared when its given label is its argmax after adding 10⁻⁶ to the given label's probability.
/// - Scores (`get_label_quality_scores`, lower = more likely mislabelled): self-confidence P[i, y_i];
///   normalised margin (P[i, y_i] − max_{j ≠ y_i} P[i, j] + 1) / 2. Issues are ranked by ascending score.
///
/// Ties: cleanlab orders with NumPy's default argsort, which is not stable (AVX-512 networks) — tied
/// remainders, margins and scores come out in an arbitrary order there. Here every tie keeps index order
/// (the result of cleanlab run with a stable argsort); sums follow NumPy's pairwise summation in the
/// order NumPy reads the arrays, so the thresholds and the integer joints are bit-equal to cleanlab's on
/// the same float64 inputs (tested on 17 fixture inputs). Complexity O(n·K) expected (the rows to prune
/// are selected, not sorted) plus O(m log m) to rank m issues; memory O(n·K) for float32 input (widened
/// to Double), O(n + K²) otherwise.
public struct ConfidentLearning: Sendable, Codable, Equatable {
    /// Which rows `issues` flags (cleanlab's `filter_by`).
    public enum Filter: String, Sendable, Codable, CaseIterable {
        /// cleanlab's default: per given label k and other class j, the prune count of rows labelled k with the largest margin p_j − p_k.
        case pruneByNoiseRate = "prune_by_noise_rate"
        /// The rows off the diagonal of the confident joint.
        case confidentLearning = "confident_learning"
        /// Per given label k, its (count − C′[k, k]) rows of lowest p_k.
        case pruneByClass = "prune_by_class"
        /// Rows flagged by both `pruneByNoiseRate` and `pruneByClass`.
        case both
    }

    /// The per-row label-quality score issues are ranked by (cleanlab's `rank_by`).
    public enum Ranking: String, Sendable, Codable, CaseIterable {
        /// p_given: the predicted probability of the given label.
        case selfConfidence = "self_confidence"
        /// (p_given − max_{j ≠ given} p_j + 1) / 2.
        case normalizedMargin = "normalized_margin"
    }

    /// Rows.
    public var samples: Int
    /// Classes K.
    public var classes: Int
    /// Rows per given label.
    public var labelCounts: [Int]
    /// t_j (cleanlab's `get_confident_thresholds`).
    public var thresholds: [Double]
    /// The confident joint before calibration (diagonal ≥ 1), [given][true].
    public var confidentJointRaw: [[Int]]
    /// The calibrated confident joint (`compute_confident_joint`), rows summing to the label counts.
    public var confidentJoint: [[Int]]
    /// Rows counted off the diagonal of the uncalibrated joint, in index order.
    public var offDiagonal: [Int]
    /// Estimated joint P(given = i, true = j) (`estimate_joint`).
    public var joint: [[Double]]
    /// P(given = i | true = j), columns summing to 1.
    public var noiseMatrix: [[Double]]
    /// P(true = i | given = j), columns summing to 1 (cleanlab's layout: row = true, column = given).
    public var inverseNoiseMatrix: [[Double]]
    /// Estimated prior of the true labels.
    public var truePrior: [Double]
    /// The rule that flagged `issues`.
    public var filter: Filter
    /// The score `issues` are ranked by.
    public var ranking: Ranking
    /// Flagged rows, ranked by ascending `scores` (ties in index order).
    public var issues: [Int]
    /// The label-quality score of every row under `ranking`.
    public var scores: [Double]

    /// Confident learning on probabilities P (n × K) and labels in 0..<K. Throws
    /// `ReliabilityError.invalidInput` when n = 0, K < 2 or K > `maxClasses`, a label is out of range, the counts differ, a
    /// probability is non-finite or outside [0, 1], or a row's sum is off 1 by more than
    /// `rowSumTolerance` (default 10⁻³; rows are used as given, not renormalised, like cleanlab).
    public static func analyse(probabilities p: Matrix<Double>, labels: [Int], filter: Filter = .pruneByNoiseRate,
                               ranking: Ranking = .selfConfidence, rowSumTolerance: Double = 1e-3) throws -> ConfidentLearning {
        try validate(p, labels: labels, tolerance: rowSumTolerance)
        return p.withUnsafeBufferPointer { run($0, rows: p.rows, classes: p.columns, labels: labels, filter: filter, ranking: ranking) }
    }

    /// The same from float32 probabilities (widened exactly to Double).
    public static func analyse(probabilities p: Matrix<Float>, labels: [Int], filter: Filter = .pruneByNoiseRate,
                               ranking: Ranking = .selfConfidence, rowSumTolerance: Double = 1e-3) throws -> ConfidentLearning {
        guard p.columns <= maxClasses else {
            throw ReliabilityError.invalidInput("probabilities have \(p.columns) class columns; confident learning keeps K × K joints and takes at most \(maxClasses)")
        }
        var wide = Matrix<Double>(rows: p.rows, columns: p.columns)
        p.withUnsafeBufferPointer { b in wide.withUnsafeMutableBufferPointer { w in for i in b.indices { w[i] = Double(b[i]) } } }
        return try analyse(probabilities: wide, labels: labels, filter: filter, ranking: ranking, rowSumTolerance: rowSumTolerance)
    }

    /// Label-quality scores alone (cleanlab's `get_label_quality_scores`, `adjust_pred_probs=False`).
    public static func qualityScores(probabilities p: Matrix<Double>, labels: [Int], ranking: Ranking = .selfConfidence,
                                     rowSumTolerance: Double = 1e-3) throws -> [Double] {
        try validate(p, labels: labels, tolerance: rowSumTolerance)
        return p.withUnsafeBufferPointer { scores($0, rows: p.rows, classes: p.columns, labels: labels, ranking: ranking) }
    }

    /// The most classes `analyse` takes: it keeps several K × K joints.
    public static let maxClasses = 4096

    static func validate(_ p: Matrix<Double>, labels: [Int], tolerance: Double) throws {
        guard p.columns <= maxClasses else {
            throw ReliabilityError.invalidInput("probabilities have \(p.columns) class columns; confident learning keeps K × K joints and takes at most \(maxClasses)")
        }
        guard p.rows > 0 else { throw ReliabilityError.invalidInput("no rows: confident learning needs at least one labelled row") }
        guard p.columns >= 2 else { throw ReliabilityError.invalidInput("probabilities have \(p.columns) class column(s); need at least 2") }
        guard tolerance >= 0, tolerance.isFinite else { throw ReliabilityError.invalidParameter("row-sum tolerance \(tolerance) must be finite and ≥ 0") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        try p.withUnsafeBufferPointer { b in
            for i in 0..<p.rows {
                var sum = 0.0
                for j in 0..<p.columns {
                    let v = b[i * p.columns + j]
                    guard v.isFinite, v >= 0, v <= 1 else {
                        throw ReliabilityError.invalidInput("probabilities[\(i), \(j)] = \(v) is not a probability (pass logits through softmax first)")
                    }
                    sum += v
                }
                guard abs(sum - 1) <= tolerance else {
                    throw ReliabilityError.invalidInput("probabilities row \(i) sums to \(sum), off 1 by \(abs(sum - 1)) (tolerance \(tolerance)); normalise the rows or pass logits")
                }
            }
        }
    }

    // MARK: - The steps (inputs already validated)

    static func run(_ p: UnsafeBufferPointer<Double>, rows n: Int, classes k: Int, labels: [Int], filter: Filter, ranking: Ranking) -> ConfidentLearning {
        var counts = [Int](repeating: 0, count: k)
        for y in labels { counts[y] += 1 }
        let t = thresholds(p, rows: n, classes: k, labels: labels, counts: counts)
        let (raw, off) = confidentJoint(p, rows: n, classes: k, labels: labels, thresholds: t)
        let cj = calibrate(raw, labelCounts: counts)
        let total = Double(cj.joined().reduce(0, +))
        let joint = cj.map { $0.map { Double($0) / max(total, 1e-100) } }
        let (py, noise, inverse) = latent(cj, labelCounts: counts, samples: n)
        var flagged = [Bool](repeating: false, count: n)
        switch filter {
        case .confidentLearning:
            for i in off { flagged[i] = true }
        case .pruneByNoiseRate:
            pruneByNoiseRate(p, rows: n, classes: k, labels: labels, prune: pruneCounts(cj), into: &flagged)
        case .pruneByClass:
            pruneByClass(p, rows: n, classes: k, labels: labels, prune: pruneCounts(cj), into: &flagged)
        case .both:
            let prune = pruneCounts(cj)
            var byClass = flagged
            pruneByClass(p, rows: n, classes: k, labels: labels, prune: prune, into: &byClass)
            pruneByNoiseRate(p, rows: n, classes: k, labels: labels, prune: prune, into: &flagged)
            for i in 0..<n { flagged[i] = flagged[i] && byClass[i] }
        }
        // Clear rows whose given label is the argmax once it gets 1e-6 more (cleanlab's _reduce_issues).
        for i in 0..<n where flagged[i] {
            let row = p.baseAddress! + i * k
            var best = 0, top = -Double.infinity
            for j in 0..<k {
                let v = j == labels[i] ? row[j] + 1e-6 : row[j]
                if v > top { top = v; best = j }
            }
            if best == labels[i] { flagged[i] = false }
        }
        let s = scores(p, rows: n, classes: k, labels: labels, ranking: ranking)
        let issues = (0..<n).filter { flagged[$0] }.sorted { s[$0] < s[$1] || (s[$0] == s[$1] && $0 < $1) }
        return ConfidentLearning(samples: n, classes: k, labelCounts: counts, thresholds: t, confidentJointRaw: raw, confidentJoint: cj,
                                 offDiagonal: off, joint: joint, noiseMatrix: noise, inverseNoiseMatrix: inverse, truePrior: py,
                                 filter: filter, ranking: ranking, issues: issues, scores: s)
    }

    /// t_j: NumPy's pairwise mean of P[·, j] over the rows labelled j; 2 when none; clipped at 2·10⁻⁶.
    static func thresholds(_ p: UnsafeBufferPointer<Double>, rows n: Int, classes k: Int, labels: [Int], counts: [Int]) -> [Double] {
        var gathered = [[Double]](repeating: [], count: k)
        for j in 0..<k { gathered[j].reserveCapacity(counts[j]) }
        for i in 0..<n { gathered[labels[i]].append(p[i * k + labels[i]]) }
        return (0..<k).map { j in
            let t = counts[j] > 0 ? PairwiseSum.sum(gathered[j]) / Double(counts[j]) : 2
            return max(t, 2e-6)
        }
    }

    /// The uncalibrated confident joint [given][true] (diagonal raised to ≥ 1) and the rows counted off it.
    static func confidentJoint(_ p: UnsafeBufferPointer<Double>, rows n: Int, classes k: Int, labels: [Int], thresholds t: [Double]) -> ([[Int]], [Int]) {
        var cj = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var off: [Int] = []
        let cut = t.map { $0 - 1e-6 }
        for i in 0..<n {
            let row = p.baseAddress! + i * k
            var confident = 0, first = -1, argmax = 0
            for j in 0..<k {
                if row[j] >= cut[j] {
                    confident += 1
                    if first < 0 { first = j }
                }
                if row[j] > row[argmax] { argmax = j }
            }
            guard confident > 0 else { continue }
            let guess = confident > 1 ? argmax : first
            cj[labels[i]][guess] += 1
            if guess != labels[i] { off.append(i) }
        }
        for j in 0..<k { cj[j][j] = max(cj[j][j], 1) }
        return (cj, off)
    }

    /// cleanlab's `calibrate_confident_joint`: rows to the label counts, the total to n, rows rounded
    /// preserving their sums.
    public static func calibrate(_ cj: [[Int]], labelCounts: [Int]) -> [[Int]] {
        let k = cj.count
        var c = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for i in 0..<k {
            let rowSum = max(Double(cj[i].reduce(0, +)), 1e-100)
            for j in 0..<k { c[i][j] = Double(cj[i][j]) / rowSum * Double(labelCounts[i]) }
        }
        // NumPy sums the array in memory order, which for cleanlab's layout (the transposed confusion
        // matrix, divided and transposed back) is column by column.
        let columnMajor = (0..<k).flatMap { j in (0..<k).map { i in c[i][j] } }
        let total = max(PairwiseSum.sum(columnMajor), 1e-100), n = Double(labelCounts.reduce(0, +))
        for i in 0..<k { for j in 0..<k { c[i][j] = c[i][j] / total * n } }
        return c.map(roundPreservingSum)
    }

    /// cleanlab's `round_preserving_sum` with a stable order: round half to even; while the integers'
    /// sum differs from the rounded float sum by d, move the |d| entries with the largest (d > 0; ties:
    /// the later index first) or smallest (d < 0; ties: the earlier first) remainders by ±1.
    public static func roundPreservingSum(_ x: [Double]) -> [Int] {
        var ints = x.map { $0.rounded(.toNearestOrEven) }
        let target = PairwiseSum.sum(x).rounded(.toNearestOrEven)
        var current = PairwiseSum.sum(ints).rounded(.toNearestOrEven)
        var guardSteps = 0
        while abs(current - target) > 1e-6 && guardSteps < 4 * x.count + 8 {
            guardSteps += 1
            let diff = (target - current).rounded(.toNearestOrEven)
            let up = !(diff < 0)
            let changes = min(Int(abs(diff)), x.count)
            let remainder = zip(x, ints).map { $0 - $1 }
            let ascending = x.indices.sorted { remainder[$0] < remainder[$1] || (remainder[$0] == remainder[$1] && $0 < $1) }
            let order = up ? Array(ascending.reversed()) : ascending
            for i in order.prefix(changes) { ints[i] += up ? 1 : -1 }
            current = PairwiseSum.sum(ints).rounded(.toNearestOrEven)
        }
        return ints.map { Int($0) }
    }

    /// cleanlab's `estimate_latent` with py_method "cnt", no convergence: (py, noise, inverse noise).
    static func latent(_ cj: [[Int]], labelCounts: [Int], samples n: Int) -> ([Double], [[Double]], [[Double]]) {
        let k = cj.count
        let ps = labelCounts.map { Double($0) / Double(n) }
        let given = (0..<k).map { i in Double(cj[i].reduce(0, +)) }
        let truth = (0..<k).map { j in Double((0..<k).reduce(0) { $0 + cj[$1][j] }) }
        var noise = [[Double]](repeating: [Double](repeating: 0, count: k), count: k), inverse = noise
        for i in 0..<k {
            for j in 0..<k {
                noise[i][j] = Double(cj[i][j]) / max(truth[j], 1e-100)
                inverse[i][j] = Double(cj[j][i]) / max(given[j], 1e-100)
            }
        }
        var py = (0..<k).map { inverse[$0][$0] / max(noise[$0][$0], 1e-100) * ps[$0] }
        py = py.map { min(max($0, 1e-6), 1) }
        let pySum = max(PairwiseSum.sum(py), 1e-100)
        py = py.map { $0 * 1.0 / pySum }
        return (py, clipNoiseRates(noise), clipNoiseRates(inverse))
    }

    /// Off-diagonal entries clipped to [0, 0.9999], columns renormalised to 1.
    static func clipNoiseRates(_ m: [[Double]]) -> [[Double]] {
        let k = m.count
        var out = m
        for i in 0..<k { for j in 0..<k where i != j { out[i][j] = min(max(m[i][j], 0), 0.9999) } }
        for j in 0..<k {
            let s = max((0..<k).reduce(0.0) { $0 + out[$1][j] }, 1e-100)
            for i in 0..<k { out[i][j] /= s }
        }
        return out
    }

    /// cleanlab's `_keep_at_least_n_per_class(Cᵀ, n: 1)`: [true][given] prune counts.
    static func pruneCounts(_ cj: [[Int]]) -> [[Int]] {
        let k = cj.count
        let m = (0..<k).map { a in (0..<k).map { b in cj[b][a] } }  // Cᵀ
        var out = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for c in 0..<k {
            let diagonal = m[c][c], raised = max(diagonal, 1), diff = Double(raised - diagonal)
            let nonZero = (0..<k).filter { m[$0][c] != 0 }.count
            let share = max(Double(nonZero) - 1, 1)
            for a in 0..<k where a != c {
                let v = Double(m[a][c]) - diff / share
                out[a][c] = v < 0 ? 0 : Int(v)  // astype(int) truncates
            }
            out[c][c] = raised
        }
        return out
    }

    /// cleanlab's `_prune_by_count` for every given class: the `prune[other][given]` rows labelled
    /// `given` with the largest margin P[i, other] − P[i, given] (equal margins: the earlier row first),
    /// found by selection (expected O(rows) per pair; only the set matters, not its order).
    static func pruneByNoiseRate(_ p: UnsafeBufferPointer<Double>, rows n: Int, classes k: Int, labels: [Int], prune: [[Int]], into flagged: inout [Bool]) {
        var members = [[Int]](repeating: [], count: k)
        for i in 0..<n { members[labels[i]].append(i) }
        var keys: [(margin: Double, row: Int)] = []
        for given in 0..<k where members[given].count > 1 {
            let rows = members[given]
            for other in 0..<k where other != given && prune[other][given] > 0 {
                keys.removeAll(keepingCapacity: true)
                for i in rows { keys.append((p[i * k + other] - p[i * k + given], i)) }
                let m = min(prune[other][given], keys.count)
                selectFirst(m, of: &keys)
                for j in 0..<m { flagged[keys[j].row] = true }
            }
        }
    }

    /// cleanlab's `_prune_by_class`: for every given class k with more than one row, the
    /// (rows labelled k) − C'[k, k] rows with the lowest P[i, k] (equal values: the earlier row first).
    static func pruneByClass(_ p: UnsafeBufferPointer<Double>, rows n: Int, classes k: Int, labels: [Int], prune: [[Int]], into flagged: inout [Bool]) {
        var members = [[Int]](repeating: [], count: k)
        for i in 0..<n { members[labels[i]].append(i) }
        var keys: [(margin: Double, row: Int)] = []
        for given in 0..<k where members[given].count > 1 {
            let m = members[given].count - prune[given][given]
            guard m >= 1 else { continue }
            keys.removeAll(keepingCapacity: true)
            for i in members[given] { keys.append((-p[i * k + given], i)) }  // the greatest −p are the lowest p
            let take = min(m, keys.count)
            selectFirst(take, of: &keys)
            for j in 0..<take { flagged[keys[j].row] = true }
        }
    }

    /// Moves the `m` greatest keys — larger margin first, then smaller row — to the front (in no
    /// particular order): quickselect with median-of-three pivots, insertion sort below 16 elements.
    static func selectFirst(_ m: Int, of keys: inout [(margin: Double, row: Int)]) {
        @inline(__always) func before(_ a: (margin: Double, row: Int), _ b: (margin: Double, row: Int)) -> Bool {
            a.margin > b.margin || (a.margin == b.margin && a.row < b.row)
        }
        guard m > 0, m < keys.count else { return }
        keys.withUnsafeMutableBufferPointer { a in
            var lo = 0, hi = a.count - 1
            while hi - lo > 16 {
                let mid = lo + (hi - lo) / 2
                if before(a[mid], a[lo]) { a.swapAt(mid, lo) }
                if before(a[hi], a[lo]) { a.swapAt(hi, lo) }
                if before(a[hi], a[mid]) { a.swapAt(hi, mid) }
                let pivot = a[mid]
                var i = lo, j = hi
                while i <= j {
                    while before(a[i], pivot) { i += 1 }
                    while before(pivot, a[j]) { j -= 1 }
                    if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
                }
                // [lo, j] ≤ pivot-order ≤ [i, hi]; keep the side that holds position m − 1.
                if m - 1 <= j { hi = j } else if m - 1 >= i { lo = i } else { return }
            }
            // Insertion sort of the small remaining range.
            if lo < hi {
                for x in (lo + 1)...hi {
                    let v = a[x]
                    var y = x
                    while y > lo && before(v, a[y - 1]) { a[y] = a[y - 1]; y -= 1 }
                    a[y] = v
                }
            }
        }
    }

    static func scores(_ p: UnsafeBufferPointer<Double>, rows n: Int, classes k: Int, labels: [Int], ranking: Ranking) -> [Double] {
        (0..<n).map { i in
            let row = p.baseAddress! + i * k, own = row[labels[i]]
            switch ranking {
            case .selfConfidence:
                return own
            case .normalizedMargin:
                var other = -Double.infinity
                for j in 0..<k where j != labels[i] { other = max(other, row[j]) }
                return (own - other + 1) / 2
            }
        }
    }
}

/// NumPy's pairwise summation of float64 (`np.sum`, `np.mean` on a contiguous array): below 8 elements a
/// plain loop; up to 128, eight running sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) plus the
/// tail; above, the halves (cut at a multiple of 8) summed recursively. Matching it makes sums bit-equal
/// to NumPy's on the same data.
public enum PairwiseSum {
    /// The sum of `x` in NumPy's order (bit-equal to `np.sum`).
    public static func sum(_ x: [Double]) -> Double {
        x.withUnsafeBufferPointer { sum($0.baseAddress, $0.count) }
    }

    static func sum(_ a: UnsafePointer<Double>?, _ n: Int) -> Double {
        guard let a, n > 0 else { return 0 }
        if n < 8 {
            var r = 0.0
            for i in 0..<n { r += a[i] }
            return r
        }
        if n <= 128 {
            var r = (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
            var i = 8
            while i < n - n % 8 {
                r.0 += a[i]; r.1 += a[i + 1]; r.2 += a[i + 2]; r.3 += a[i + 3]
                r.4 += a[i + 4]; r.5 += a[i + 5]; r.6 += a[i + 6]; r.7 += a[i + 7]
                i += 8
            }
            var res = ((r.0 + r.1) + (r.2 + r.3)) + ((r.4 + r.5) + (r.6 + r.7))
            while i < n { res += a[i]; i += 1 }
            return res
        }
        var half = n / 2
        half -= half % 8
        return sum(a, half) + sum(a + half, n - half)
    }
}
