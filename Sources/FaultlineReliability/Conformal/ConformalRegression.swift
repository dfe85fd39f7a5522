/// Split conformal regression intervals with the exact order statistic of `SplitConformal.rank`:
/// - absolute residuals: q = k-th smallest |y − ŷ| on the calibration split, interval ŷ ± q;
/// - CQR (Romano et al. 2019): scores max(lo − y, y − hi) for fitted lower/upper quantiles, interval
///   [lo − q, hi + q] (q may be negative: the quantile band is then narrowed).
/// Coverage ≥ 1 − α for exchangeable data; a calibration set smaller than
/// `SplitConformal.minimumCalibrationSize(alpha:)` throws instead of returning infinite intervals.
public struct ConformalRegression: Sendable, Codable, Equatable {
    public enum Method: String, Sendable, Codable { case absoluteResidual = "absolute-residual", cqr }
    public let method: Method
    public let alpha: Double
    public let quantile: Double

    /// Absolute-residual calibration from predictions and targets.
    public init(predictions: [Double], targets: [Double], alpha: Double) throws {
        guard predictions.count == targets.count else { throw ReliabilityError.invalidInput("\(predictions.count) predictions but \(targets.count) targets") }
        method = .absoluteResidual
        self.alpha = alpha
        quantile = try ConformalRegression.quantile(zip(predictions, targets).map { abs($1 - $0) }, alpha: alpha)
    }

    /// CQR calibration from fitted lower and upper quantiles and targets.
    public init(lower: [Double], upper: [Double], targets: [Double], alpha: Double) throws {
        guard lower.count == targets.count, upper.count == targets.count else {
            throw ReliabilityError.invalidInput("\(lower.count) lower and \(upper.count) upper quantiles for \(targets.count) targets")
        }
        method = .cqr
        self.alpha = alpha
        quantile = try ConformalRegression.quantile(targets.indices.map { max(lower[$0] - targets[$0], targets[$0] - upper[$0]) }, alpha: alpha)
    }

    static func quantile(_ scores: [Double], alpha: Double) throws -> Double {
        guard alpha > 0 && alpha < 1 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        guard scores.allSatisfy(\.isFinite) else { throw ReliabilityError.invalidInput("calibration predictions or targets are not finite") }
        let k = SplitConformal.rank(n: scores.count, alpha: alpha)
        guard k <= scores.count else {
            throw ReliabilityError.invalidInput("\(scores.count) calibration samples; α = \(alpha) needs at least \(SplitConformal.minimumCalibrationSize(alpha: alpha))")
        }
        return scores.sorted()[k - 1]
    }

    /// Interval for an absolute-residual calibration.
    public func interval(prediction: Double) -> ClosedRange<Double> { (prediction - quantile)...(prediction + quantile) }

    /// Interval for a CQR calibration (an empty band collapses to its midpoint).
    public func interval(lower: Double, upper: Double) -> ClosedRange<Double> {
        let lo = lower - quantile, hi = upper + quantile
        return lo <= hi ? lo...hi : ((lo + hi) / 2)...((lo + hi) / 2)
    }
}
