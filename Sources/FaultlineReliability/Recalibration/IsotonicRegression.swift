/// Isotonic regression by pool-adjacent-violators, as scikit-learn's `IsotonicRegression`
/// (increasing, `out_of_bounds="clip"`): the non-decreasing step function closest in weighted least
/// squares to (x, y), predicted by linear interpolation between the fitted points and clipped beyond
/// them. Used to recalibrate confidences (x = score, y = 1 if correct).
///
/// Fit: sort by x; equal x values are merged into one point with the weighted mean y and summed
/// weight (sklearn's `_make_unique`); PAV in Double, O(n log n) for the sort and O(n) for the pooling.
public struct IsotonicRegression: Sendable, Codable, Equatable {
    /// The distinct inputs, increasing, and the fitted non-decreasing values at them.
    public private(set) var thresholds: [Double]
    /// The fitted values at `thresholds`, non-decreasing.
    public private(set) var values: [Double]

    /// Throws for empty, mismatched or non-finite inputs, or non-positive weights.
    public init(x: [Double], y: [Double], weights: [Double]? = nil) throws {
        guard !x.isEmpty, x.count == y.count, weights.map({ $0.count == x.count }) ?? true else {
            throw ReliabilityError.invalidInput("isotonic regression needs as many y (and weights) as x, and at least one point; got \(x.count) x, \(y.count) y")
        }
        guard x.allSatisfy(\.isFinite), y.allSatisfy(\.isFinite) else { throw ReliabilityError.invalidInput("isotonic inputs contain NaN or infinite values") }
        let w = weights ?? [Double](repeating: 1, count: x.count)
        guard w.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw ReliabilityError.invalidInput("isotonic weights must be positive and finite") }
        let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && y[$0] < y[$1]) }
        // Merge equal x.
        var ux: [Double] = [], uy: [Double] = [], uw: [Double] = []
        for i in order {
            if let last = ux.last, last == x[i] {
                let k = ux.count - 1
                uy[k] = (uy[k] * uw[k] + y[i] * w[i]) / (uw[k] + w[i])
                uw[k] += w[i]
            } else {
                ux.append(x[i]); uy.append(y[i]); uw.append(w[i])
            }
        }
        // Pool adjacent violators: a stack of blocks (value, weight, length).
        var blockValue: [Double] = [], blockWeight: [Double] = [], blockLength: [Int] = []
        for k in ux.indices {
            var v = uy[k], wt = uw[k], len = 1
            while let last = blockValue.last, last >= v {
                let lw = blockWeight.last!
                v = (last * lw + v * wt) / (lw + wt)
                wt += lw
                len += blockLength.last!
                blockValue.removeLast(); blockWeight.removeLast(); blockLength.removeLast()
            }
            blockValue.append(v); blockWeight.append(wt); blockLength.append(len)
        }
        var fitted: [Double] = []
        fitted.reserveCapacity(ux.count)
        for (v, len) in zip(blockValue, blockLength) { fitted += [Double](repeating: v, count: len) }
        thresholds = ux
        values = fitted
    }

    /// The fitted function at `x`: linear interpolation between the fitted points, clipped outside.
    public func callAsFunction(_ x: Double) -> Double {
        if x <= thresholds[0] { return values[0] }
        if x >= thresholds[thresholds.count - 1] { return values[values.count - 1] }
        var lo = 0, hi = thresholds.count - 1  // thresholds[lo] < x < thresholds[hi]
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if thresholds[mid] <= x { lo = mid } else { hi = mid }
        }
        if thresholds[lo] == x { return values[lo] }
        let t = (x - thresholds[lo]) / (thresholds[hi] - thresholds[lo])
        return values[lo] + t * (values[hi] - values[lo])
    }

    /// The fitted function at every element of `x`.
    public func predict(_ x: [Double]) -> [Double] { x.map { self($0) } }
}
