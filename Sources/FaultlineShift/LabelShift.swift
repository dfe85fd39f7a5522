import FaultlineLinalg

/// Black-box shift estimation (BBSE, Lipton et al. 2018): importance weights w(y) = q(y)/p(y) for a
/// label shift, from a held-out confusion matrix of the source model and its predictions on the target.
///
/// With C[i][j] = P_source(ŷ = i, y = j) (counts / n) and μ̂[i] = P_target(ŷ = i), w solves C·w = μ̂
/// (Gaussian elimination with partial pivoting in Double). The estimated target label distribution is
/// q(y) = w(y)·p(y), p(y) = Σᵢ C[i][y]. Negative weights (estimation noise) are clipped to 0, as in the paper's
/// experiments; `rawWeights` keeps them.
public struct LabelShiftEstimate: Sendable, Codable {
    /// The solution w of C·w = μ̂ before clipping (may be negative).
    public var rawWeights: [Double]
    /// The importance weights q(y)/p(y), negative values clipped to 0.
    public var weights: [Double]
    /// p(y): the source (validation) label distribution.
    public var sourceDistribution: [Double]
    /// q(y) = w(y)·p(y): the estimated target label distribution.
    public var targetDistribution: [Double]
    /// The smallest |pivot| / largest |entry| of C during elimination: near 0, C is close to singular.
    public var conditioning: Double

    /// Throws `ShiftError.singular` when the confusion matrix is singular (a class never predicted or
    /// two classes confused identically) — more validation data, or merge the classes.
    public init(validationPredictions predicted: [Int], validationLabels labels: [Int], targetPredictions target: [Int], classes k: Int) throws {
        guard predicted.count == labels.count, !labels.isEmpty, !target.isEmpty else {
            throw ShiftError.invalidInput("need matching, non-empty validation predictions and labels, and target predictions")
        }
        guard (predicted + labels + target).allSatisfy({ $0 >= 0 && $0 < k }) else { throw ShiftError.invalidInput("a label lies outside 0..<\(k)") }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for (p, y) in zip(predicted, labels) { confusion[p][y] += 1 }
        var predictions = [Int](repeating: 0, count: k)
        for p in target { predictions[p] += 1 }
        try self.init(confusionCounts: confusion, targetPredictionCounts: predictions)
    }

    /// The estimate from counts: `confusionCounts[i][j]` validation rows predicted i with label j (K × K),
    /// `targetPredictionCounts[i]` target rows predicted i. C = counts / n and μ̂ = counts / m, each entry one
    /// division of exact integers, so counts summed over the ranks of a job (`DistributedDrift.labelShift`)
    /// give the one-process estimate bit for bit. Throws `ShiftError.invalidInput` for a table that is not
    /// K × K, negative counts or an empty side; `ShiftError.singular` as above.
    public init(confusionCounts: [[Int]], targetPredictionCounts: [Int]) throws {
        let k = targetPredictionCounts.count
        guard k > 0, confusionCounts.count == k, confusionCounts.allSatisfy({ $0.count == k }) else {
            throw ShiftError.invalidInput("the confusion counts must be K × K for the K = \(k) classes of the target prediction counts")
        }
        guard confusionCounts.allSatisfy({ $0.allSatisfy { $0 >= 0 } }), targetPredictionCounts.allSatisfy({ $0 >= 0 }) else {
            throw ShiftError.invalidInput("the label counts must not be negative")
        }
        func total<S: Sequence<Int>>(_ counts: S) throws -> Int {
            try counts.reduce(0) { sum, c in
                let (s, overflow) = sum.addingReportingOverflow(c)
                guard !overflow else { throw ShiftError.invalidInput("the label counts add up to more than \(Int.max)") }
                return s
            }
        }
        let n = try total(confusionCounts.joined()), targetCount = try total(targetPredictionCounts)
        guard n > 0, targetCount > 0 else {
            throw ShiftError.invalidInput("need matching, non-empty validation predictions and labels, and target predictions")
        }
        let c = confusionCounts.map { row in row.map { Double($0) / Double(n) } }
        let mu = targetPredictionCounts.map { Double($0) / Double(targetCount) }
        sourceDistribution = (0..<k).map { j in (0..<k).reduce(0) { $0 + c[$1][j] } }
        // Solve C w = μ̂.
        var a = c, rhs = mu
        let scale = c.flatMap { $0 }.map(abs).max() ?? 0
        var smallest = Double.infinity
        for col in 0..<k {
            let pivot = (col..<k).max { abs(a[$0][col]) < abs(a[$1][col]) }!
            smallest = min(smallest, abs(a[pivot][col]) / max(scale, .leastNormalMagnitude))
            guard abs(a[pivot][col]) > 1e-12 * max(scale, 1e-300) else {
                throw ShiftError.singular("the confusion matrix is singular at class \(col): some class is never predicted or is confused identically with another; collect more validation data or merge classes")
            }
            a.swapAt(col, pivot)
            rhs.swapAt(col, pivot)
            for r in (col + 1)..<max(col + 1, k) {
                let f = a[r][col] / a[col][col]
                if f == 0 { continue }
                for j in col..<k { a[r][j] -= f * a[col][j] }
                rhs[r] -= f * rhs[col]
            }
        }
        var w = [Double](repeating: 0, count: k)
        for r in stride(from: k - 1, through: 0, by: -1) {
            var s = rhs[r]
            for j in (r + 1)..<max(r + 1, k) { s -= a[r][j] * w[j] }
            w[r] = s / a[r][r]
        }
        rawWeights = w
        weights = w.map { max($0, 0) }
        targetDistribution = zip(weights, sourceDistribution).map { $0 * $1 }
        conditioning = smallest
    }
}
