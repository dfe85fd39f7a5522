import FaultlineStatistics
import Foundation

/// Point-prediction metrics of a regression model, as scikit-learn defines them (`sklearn.metrics`):
/// MAE (`mean_absolute_error`), MSE and RMSE (`root_mean_squared_error`), R² (`r2_score` with
/// `force_finite=True`: 1 for a perfect fit of constant targets, else 0 when the targets are
/// constant), the median absolute error and the maximum error. Sums are accumulated in Double in
/// input order (equal to scikit-learn's float64 results within ~1e-12 relative). O(n) plus an
/// O(n log n) sort for the median. Throws for empty, unequal-length or non-finite inputs.
public struct RegressionMetrics: Sendable, Codable, Equatable {
    /// Predictions evaluated.
    public var samples: Int
    /// Mean |y − ŷ|.
    public var meanAbsoluteError: Double
    /// Mean (y − ŷ)².
    public var meanSquaredError: Double
    /// √MSE.
    public var rootMeanSquaredError: Double
    /// The coefficient of determination (scikit-learn's `r2_score`, `force_finite=True`).
    public var r2: Double
    /// The median |y − ŷ|.
    public var medianAbsoluteError: Double
    /// The largest |y − ŷ|.
    public var maxError: Double
    /// Mean signed residual, mean of (y − ŷ): positive when the model predicts too low.
    public var meanResidual: Double

    /// Computes every metric (see the type's errors).
    public init(predictions: [Double], targets: [Double]) throws {
        try RegressionCheck.pairs(predictions, "predictions", targets)
        let n = Double(targets.count)
        var abs = 0.0, sq = 0.0, signed = 0.0, mean = 0.0, maximum = 0.0
        for (p, y) in zip(predictions, targets) {
            let r = y - p
            abs += Swift.abs(r); sq += r * r; signed += r; maximum = max(maximum, Swift.abs(r))
            mean += y
        }
        mean /= n
        var total = 0.0
        for y in targets { total += (y - mean) * (y - mean) }
        samples = targets.count
        meanAbsoluteError = abs / n
        meanSquaredError = sq / n
        rootMeanSquaredError = meanSquaredError.squareRoot()
        r2 = total == 0 ? (sq == 0 ? 1 : 0) : 1 - sq / total
        medianAbsoluteError = RegressionCheck.median(zip(predictions, targets).map { Swift.abs($1 - $0) })
        maxError = maximum
        meanResidual = signed / n
    }

    /// The mean negative log-likelihood of `targets` under N(mean, variance), in torch's
    /// `nn.GaussianNLLLoss(full:eps:reduction="mean")` convention:
    /// ½·(log max(σ², eps) + (y − μ)²/max(σ², eps)), plus ½·log 2π when `full` (then it equals
    /// −mean `scipy.stats.norm.logpdf`, uncertainty-toolbox's `nll_gaussian`). torch's default is
    /// `full = false`; this function's default is `full = true`, the proper negative log density.
    /// `eps` clamps the variance as torch does (default 1e-6, torch's). Throws for empty or
    /// unequal-length inputs, non-finite values, or a variance ≤ 0 (naming its index).
    public static func gaussianNLL(mean: [Double], variance: [Double], targets: [Double], full: Bool = true, eps: Double = 1e-6) throws -> Double {
        try RegressionCheck.pairs(mean, "means", targets)
        try RegressionCheck.positive(variance, "variances", count: targets.count)
        guard eps >= 0, eps.isFinite else { throw ReliabilityError.invalidParameter("eps = \(eps) must be a finite number ≥ 0") }
        var total = 0.0
        for i in targets.indices {
            let v = max(variance[i], eps), r = targets[i] - mean[i]
            total += 0.5 * (log(v) + r * r / v)
        }
        return total / Double(targets.count) + (full ? 0.5 * log(2 * Double.pi) : 0)
    }

    /// `gaussianNLL(mean:variance:…)` with standard deviations σ (variance σ²).
    public static func gaussianNLL(mean: [Double], sigma: [Double], targets: [Double], full: Bool = true, eps: Double = 1e-6) throws -> Double {
        try RegressionCheck.positive(sigma, "standard deviations", count: targets.count)
        return try gaussianNLL(mean: mean, variance: sigma.map { $0 * $0 }, targets: targets, full: full, eps: eps)
    }

    /// The mean pinball (quantile) loss of predicted `level`-quantiles, scikit-learn's
    /// `mean_pinball_loss(y, q, alpha=level)`: mean of level·max(y − q, 0) + (1 − level)·max(q − y, 0).
    /// Throws for `level` outside [0, 1] or inputs as `init`.
    public static func pinballLoss(quantiles: [Double], targets: [Double], level: Double) throws -> Double {
        try RegressionCheck.pairs(quantiles, "quantiles", targets)
        guard level >= 0, level <= 1 else { throw ReliabilityError.invalidParameter("quantile level \(level) must lie in [0, 1]") }
        var total = 0.0
        for (q, y) in zip(quantiles, targets) { total += level * max(y - q, 0) + (1 - level) * max(q - y, 0) }
        return total / Double(targets.count)
    }
}

/// Shared validation of regression inputs.
enum RegressionCheck {
    static func pairs(_ values: [Double], _ name: String, _ targets: [Double]) throws {
        guard !targets.isEmpty else { throw ReliabilityError.invalidInput("no targets (an empty input)") }
        guard values.count == targets.count else { throw ReliabilityError.invalidInput("\(values.count) \(name) but \(targets.count) targets") }
        if let i = values.firstIndex(where: { !$0.isFinite }) { throw ReliabilityError.invalidInput("\(name)[\(i)] = \(values[i]) is not finite") }
        if let i = targets.firstIndex(where: { !$0.isFinite }) { throw ReliabilityError.invalidInput("targets[\(i)] = \(targets[i]) is not finite") }
    }

    static func positive(_ values: [Double], _ name: String, count: Int) throws {
        guard values.count == count else { throw ReliabilityError.invalidInput("\(values.count) \(name) for \(count) targets") }
        if let i = values.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
            throw ReliabilityError.invalidInput("\(name)[\(i)] = \(values[i]); every one must be finite and > 0")
        }
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    /// Φ⁻¹(p) with the end points: −∞ at 0, +∞ at 1.
    static func normalQuantile(_ p: Double) -> Double {
        if p <= 0 { return -.infinity }
        if p >= 1 { return .infinity }
        return Distributions.normalQuantile(p)
    }
}
