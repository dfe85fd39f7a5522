/// Split conformal regression intervals with the exact order statistic of `SplitConformal.rank`
/// (k = ⌈(n + 1)(1 − α)⌉, the k-th smallest calibration score; MAPIE 1.6's
/// `np.quantile(scores, k/n, method="lower")`):
/// - absolute residuals: scores |y − ŷ|, interval ŷ ± q (MAPIE `SplitConformalRegressor`, `"absolute"`);
/// - normalised (locally weighted) residuals: scores |y − ŷ|/σ̂ for a given positive scale σ̂ per row
///   (a predicted standard deviation or absolute residual), interval ŷ ± q·σ̂ (MAPIE's
///   `ResidualNormalisedScore` with a prefit residual model);
/// - CQR (Romano et al. 2019): scores max(lo − y, y − hi) for fitted lower/upper quantiles, interval
///   [lo − q, hi + q] (q may be negative: the quantile band is then narrowed); MAPIE's
///   `ConformalizedQuantileRegressor.predict_interval(symmetric_correction=True)`;
/// - asymmetric CQR (`cqrAsymmetric`, MAPIE's default `symmetric_correction=False`): each side
///   corrected separately at level 1 − α/2, q_lo from lo − y and q_hi from y − hi, interval
///   [lo − q_lo, hi + q_hi].
/// Coverage ≥ 1 − α for exchangeable data (and ≤ 1 − α + 1/(n + 1) for the symmetric scores when they
/// have no ties). When k > n the quantile does not exist: by default that throws, naming the
/// minimum calibration size (`SplitConformal.minimumCalibrationSize(alpha:)`); with `allowInfinite`
/// the quantile is +∞ and every interval is (−∞, ∞) (MAPIE's `allow_infinite_bounds=True`).
/// Calibration is O(n) (selection, not a sort) in Double; intervals O(1) each.
public struct ConformalRegression: Sendable, Codable, Equatable {
    /// The conformity score.
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// |y − ŷ|; |y − ŷ|/σ̂; CQR's max(lo − y, y − hi); CQR with each side corrected at 1 − α/2.
        case absoluteResidual = "absolute-residual", normalizedResidual = "normalized", cqr, cqrAsymmetric = "cqr-asymmetric"
    }
    /// The score calibrated.
    public let method: Method
    /// The miscoverage α: intervals cover with probability ≥ 1 − α.
    public let alpha: Double
    /// The conformal quantile (for `cqrAsymmetric`, the larger of the two side corrections).
    public let quantile: Double
    /// The corrections below and above (equal to `quantile` except for `cqrAsymmetric`).
    public let lowerQuantile: Double
    /// The correction above.
    public let upperQuantile: Double
    /// Calibration samples n and the order statistic k used (k > n: infinite intervals).
    public let calibrationSize: Int
    /// The order statistic k = ⌈(n + 1)(1 − α)⌉.
    public let rank: Int

    /// Absolute-residual calibration from predictions and targets.
    public init(predictions: [Double], targets: [Double], alpha: Double, allowInfinite: Bool = false) throws {
        try RegressionCheck.pairs(predictions, "calibration predictions", targets)
        let q = try Self.quantile(zip(predictions, targets).map { abs($1 - $0) }, alpha: alpha, allowInfinite: allowInfinite)
        (method, self.alpha, quantile, lowerQuantile, upperQuantile, calibrationSize, rank) = (.absoluteResidual, alpha, q.value, q.value, q.value, targets.count, q.rank)
    }

    /// Normalised-residual calibration: scores |y − ŷ|/σ̂ with `scales` σ̂ > 0 per row.
    public init(predictions: [Double], scales: [Double], targets: [Double], alpha: Double, allowInfinite: Bool = false) throws {
        try RegressionCheck.pairs(predictions, "calibration predictions", targets)
        try RegressionCheck.positive(scales, "calibration scales", count: targets.count)
        let q = try Self.quantile(targets.indices.map { abs(targets[$0] - predictions[$0]) / scales[$0] }, alpha: alpha, allowInfinite: allowInfinite)
        (method, self.alpha, quantile, lowerQuantile, upperQuantile, calibrationSize, rank) = (.normalizedResidual, alpha, q.value, q.value, q.value, targets.count, q.rank)
    }

    /// CQR calibration from fitted lower and upper quantiles and targets; `symmetric: false` is
    /// MAPIE's default asymmetric correction (each side at level 1 − α/2).
    public init(lower: [Double], upper: [Double], targets: [Double], alpha: Double, symmetric: Bool = true, allowInfinite: Bool = false) throws {
        guard lower.count == targets.count, upper.count == targets.count else {
            throw ReliabilityError.invalidInput("\(lower.count) lower and \(upper.count) upper quantiles for \(targets.count) targets")
        }
        try RegressionCheck.pairs(lower, "calibration lower quantiles", targets)
        try RegressionCheck.pairs(upper, "calibration upper quantiles", targets)
        (self.alpha, calibrationSize) = (alpha, targets.count)
        if symmetric {
            let q = try Self.quantile(targets.indices.map { max(lower[$0] - targets[$0], targets[$0] - upper[$0]) }, alpha: alpha, allowInfinite: allowInfinite)
            (method, quantile, lowerQuantile, upperQuantile, rank) = (.cqr, q.value, q.value, q.value, q.rank)
        } else {
            guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
            let lo = try Self.quantile(targets.indices.map { lower[$0] - targets[$0] }, alpha: alpha / 2, allowInfinite: allowInfinite)
            let hi = try Self.quantile(targets.indices.map { targets[$0] - upper[$0] }, alpha: alpha / 2, allowInfinite: allowInfinite)
            (method, quantile, lowerQuantile, upperQuantile, rank) = (.cqrAsymmetric, max(lo.value, hi.value), lo.value, hi.value, lo.rank)
        }
    }

    /// The k-th smallest of `scores` for k = `SplitConformal.rank(n:alpha:)`, +∞ when k > n and
    /// `allowInfinite`; throws for α outside (0, 1), an empty or non-finite set of scores, or k > n.
    public static func quantile(_ scores: consuming [Double], alpha: Double, allowInfinite: Bool = false) throws -> (value: Double, rank: Int) {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        guard !scores.isEmpty else { throw ReliabilityError.invalidInput("no calibration samples") }
        guard scores.allSatisfy(\.isFinite) else { throw ReliabilityError.invalidInput("calibration predictions or targets are not finite") }
        let k = SplitConformal.rank(n: scores.count, alpha: alpha)
        guard k <= scores.count else {
            if allowInfinite { return (.infinity, k) }
            throw ReliabilityError.invalidInput("\(scores.count) calibration samples; α = \(alpha) needs at least \(SplitConformal.minimumCalibrationSize(alpha: alpha)) (or allow infinite intervals)")
        }
        var copy = consume scores
        return (kthSmallest(&copy, k), k)
    }

    /// The k-th smallest (1-based) of finite `values`, reordering them: quickselect with a
    /// median-of-three pivot and a three-way partition (ties cost nothing), falling back to a sort after
    /// 64 rounds. Exact (the value of an element). O(n) expected.
    static func kthSmallest(_ values: inout [Double], _ k: Int) -> Double {
        values.withUnsafeMutableBufferPointer { v -> Double in
            var lo = 0, hi = v.count - 1, rounds = 0
            let target = k - 1
            while lo < hi {
                rounds += 1
                if rounds > 64 { v[lo...hi].sort(); return v[target] }
                let mid = lo + (hi - lo) / 2
                let a = v[lo], b = v[mid], c = v[hi]
                let pivot = max(min(a, b), min(max(a, b), c))
                var lt = lo, i = lo, gt = hi
                while i <= gt {
                    let x = v[i]
                    if x < pivot {
                        v.swapAt(lt, i); lt += 1; i += 1
                    } else if x > pivot {
                        v.swapAt(i, gt); gt -= 1
                    } else {
                        i += 1
                    }
                }
                if target < lt { hi = lt - 1 } else if target > gt { lo = gt + 1 } else { return pivot }
            }
            return v[target]
        }
    }

    /// Interval for an absolute-residual calibration.
    public func interval(prediction: Double) -> ClosedRange<Double> { (prediction - quantile)...(prediction + quantile) }

    /// Interval for a normalised-residual calibration at scale σ̂.
    public func interval(prediction: Double, scale: Double) -> ClosedRange<Double> {
        let half = quantile.isInfinite ? Double.infinity : quantile * scale
        return (prediction - half)...(prediction + half)
    }

    /// Interval for a CQR calibration (either correction; an empty band collapses to its midpoint,
    /// where MAPIE returns the crossed bounds).
    public func interval(lower: Double, upper: Double) -> ClosedRange<Double> {
        let lo = lower - lowerQuantile, hi = upper + upperQuantile
        return lo <= hi ? lo...hi : ((lo + hi) / 2)...((lo + hi) / 2)
    }

    /// Intervals for many rows: `first` holds the point predictions (absolute or normalised residual) or
    /// the lower quantiles (CQR), `second` the scales (normalised) or the upper quantiles (CQR); nil for
    /// absolute residuals. Throws when `second` is missing or of another length, or a scale is ≤ 0.
    public func intervals(_ first: [Double], _ second: [Double]? = nil) throws -> (lower: [Double], upper: [Double]) {
        if method != .absoluteResidual {
            guard let second, second.count == first.count else {
                throw ReliabilityError.invalidInput("\(method.rawValue) intervals need a second column of \(first.count) values (\(method == .normalizedResidual ? "scales" : "upper quantiles"))")
            }
            if method == .normalizedResidual { try RegressionCheck.positive(second, "scales", count: first.count) }
        }
        let n = first.count, q = quantile, (qLo, qHi) = (lowerQuantile, upperQuantile)
        var upper = [Double](repeating: 0, count: n)
        let lower = [Double](unsafeUninitializedCapacity: n) { lower, count in
            upper.withUnsafeMutableBufferPointer { upper in
                first.withUnsafeBufferPointer { a in
                    switch method {
                    case .absoluteResidual:
                        for i in 0..<n { (lower[i], upper[i]) = (a[i] - q, a[i] + q) }
                    case .normalizedResidual:
                        second!.withUnsafeBufferPointer { s in
                            for i in 0..<n {
                                let half = q.isInfinite ? Double.infinity : q * s[i]
                                (lower[i], upper[i]) = (a[i] - half, a[i] + half)
                            }
                        }
                    case .cqr, .cqrAsymmetric:
                        second!.withUnsafeBufferPointer { b in
                            for i in 0..<n {
                                let lo = a[i] - qLo, hi = b[i] + qHi
                                (lower[i], upper[i]) = lo <= hi ? (lo, hi) : ((lo + hi) / 2, (lo + hi) / 2)
                            }
                        }
                    }
                }
            }
            count = n
        }
        return (lower, upper)
    }
}
