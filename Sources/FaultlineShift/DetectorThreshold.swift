/// The score above which a detector flags a sample as shifted, calibrated on held-out
/// in-distribution scores so that a new in-distribution sample is flagged with probability at most
/// `falsePositiveRate`.
///
/// Calibration is the split-conformal quantile: with n calibration scores, the threshold is the
/// ⌈(n + 1)(1 − α)⌉-th smallest, and a sample is flagged when its score is strictly greater. For a new
/// score exchangeable with the calibration scores, P(flagged) ≤ α exactly (ties only lower it); when
/// (n + 1)(1 − α) > n no finite threshold guarantees α and the threshold is +∞ (nothing is flagged).
/// Cost: one sort of the calibration scores.
public struct DetectorThreshold: Sendable, Equatable, Codable {
    /// Flag scores strictly above this value.
    public var value: Float
    /// The false-positive rate α the threshold was calibrated for.
    public var falsePositiveRate: Double
    /// The number of in-distribution scores it was calibrated on.
    public var calibrationSamples: Int

    /// A threshold as calibrated (or read from a detector file).
    public init(value: Float, falsePositiveRate: Double, calibrationSamples: Int) {
        (self.value, self.falsePositiveRate, self.calibrationSamples) = (value, falsePositiveRate, calibrationSamples)
    }

    /// Calibrates on in-distribution `scores`. Throws `ShiftError.invalidInput` when there are no scores
    /// or one is NaN, or unless 0 < `falsePositiveRate` < 1.
    public static func calibrate(inDistribution scores: [Float], falsePositiveRate alpha: Double) throws -> DetectorThreshold {
        guard alpha > 0, alpha < 1 else { throw ShiftError.invalidInput("the false-positive rate must lie in (0, 1), got \(alpha)") }
        guard !scores.isEmpty else { throw ShiftError.invalidInput("no calibration scores to set a threshold on") }
        guard !scores.contains(where: \.isNaN) else { throw ShiftError.invalidInput("a calibration score is NaN") }
        let n = scores.count
        let rank = Int(((Double(n) + 1) * (1 - alpha)).rounded(.up))
        let value = rank > n ? Float.infinity : scores.sorted()[rank - 1]
        return DetectorThreshold(value: value, falsePositiveRate: alpha, calibrationSamples: n)
    }

    /// Whether each score is flagged (strictly above the threshold).
    public func flags(_ scores: [Float]) -> [Bool] { scores.map { $0 > value } }

    /// How many of `scores` are flagged.
    public func flaggedCount(_ scores: [Float]) -> Int { scores.reduce(0) { $0 + ($1 > value ? 1 : 0) } }
}
