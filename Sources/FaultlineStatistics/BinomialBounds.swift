#if canImport(Glibc)
import Glibc
#endif

/// Confidence intervals for an error rate from k errors in n independent test samples.
public enum BinomialBounds {
    /// A two-sided (or, for the one-sided bounds, half-open) interval on the error rate, within [0, 1].
    public struct Interval: Sendable, Codable, Equatable {
        /// The lower end (0 for one-sided upper bounds).
        public var lower: Double
        /// The upper end (1 when nothing bounds it).
        public var upper: Double
    }

    static func validate(_ errors: Int, _ n: Int, _ alpha: Double) throws {
        guard n > 0, errors >= 0, errors <= n else { throw StatisticsError.invalidInput("need 0 ≤ errors ≤ n and n > 0, got \(errors) of \(n)") }
        guard alpha > 0, alpha < 1 else { throw StatisticsError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
    }

    /// Clopper–Pearson (exact) two-sided 1 − α interval: the α/2 and 1 − α/2 quantiles of
    /// Beta(k, n − k + 1) and Beta(k + 1, n − k); 0 and 1 at the ends. Accurate to ~1e-12.
    public static func clopperPearson(errors k: Int, samples n: Int, alpha: Double = 0.05) throws -> Interval {
        try validate(k, n, alpha)
        let lower = k == 0 ? 0 : Distributions.betaQuantile(alpha / 2, Double(k), Double(n - k + 1))
        let upper = k == n ? 1 : Distributions.betaQuantile(1 - alpha / 2, Double(k + 1), Double(n - k))
        return Interval(lower: lower, upper: upper)
    }

    /// Wilson score interval.
    public static func wilson(errors k: Int, samples n: Int, alpha: Double = 0.05) throws -> Interval {
        try validate(k, n, alpha)
        let z = Distributions.normalQuantile(1 - alpha / 2), p = Double(k) / Double(n), nn = Double(n)
        let centre = (p + z * z / (2 * nn)) / (1 + z * z / nn)
        let half = z / (1 + z * z / nn) * (p * (1 - p) / nn + z * z / (4 * nn * nn)).squareRoot()
        return Interval(lower: max(0, centre - half), upper: min(1, centre + half))
    }

    /// One-sided Clopper–Pearson upper bound u with P(error rate ≤ u) ≥ 1 − α: the 1 − α quantile of
    /// Beta(k + 1, n − k), and 1 when k = n. For k = 0 it is exactly 1 − α^(1/n) (`zeroFailureUpperBound`).
    /// Accurate to ~1e-12 (the Beta quantile's accuracy).
    public static func clopperPearsonUpper(errors k: Int, samples n: Int, alpha: Double = 0.05) throws -> Double {
        try validate(k, n, alpha)
        if k == n { return 1 }
        if k == 0 { return zeroFailureUpper(n, alpha) }
        return Distributions.betaQuantile(1 - alpha, Double(k + 1), Double(n - k))
    }

    /// One-sided Wilson upper bound: the upper end of the two-sided Wilson interval at level 2α
    /// (z = Φ⁻¹(1 − α)), clipped to 1.
    public static func wilsonUpper(errors k: Int, samples n: Int, alpha: Double = 0.05) throws -> Double {
        try validate(k, n, alpha)
        guard alpha < 0.5 else { throw StatisticsError.invalidParameter("a one-sided bound needs α < 0.5, got \(alpha)") }
        return try wilson(errors: k, samples: n, alpha: 2 * alpha).upper
    }

    /// "0 errors in n samples": the exact one-sided 1 − α upper bound on the error rate, 1 − α^(1/n)
    /// (computed as −expm1(ln α / n), accurate to a few ulps for any n). The rule of three, 3/n at
    /// α = 0.05, is its large-n approximation (−ln 0.05 = 2.996). Throws for n < 1 or α outside (0, 1).
    public static func zeroFailureUpperBound(samples n: Int, alpha: Double = 0.05) throws -> Double {
        try validate(0, n, alpha)
        return zeroFailureUpper(n, alpha)
    }

    static func zeroFailureUpper(_ n: Int, _ alpha: Double) -> Double { -expm1(log(alpha) / Double(n)) }

    /// Two-sided Hoeffding interval p̂ ± √(log(2/α)/(2n)), clipped to [0, 1].
    public static func hoeffding(errors k: Int, samples n: Int, alpha: Double = 0.05) throws -> Interval {
        try validate(k, n, alpha)
        let p = Double(k) / Double(n), half = (log(2 / alpha) / (2 * Double(n))).squareRoot()
        return Interval(lower: max(0, p - half), upper: min(1, p + half))
    }

    /// Test-set size for which the two-sided Hoeffding half-width is at most `halfWidth`.
    public static func hoeffdingSampleSize(halfWidth: Double, alpha: Double = 0.05) throws -> Int {
        guard halfWidth > 0, halfWidth < 1 else { throw StatisticsError.invalidParameter("half-width \(halfWidth) must lie in (0, 1)") }
        guard alpha > 0, alpha < 1 else { throw StatisticsError.invalidParameter("α = \(alpha) must lie in (0, 1)") }
        return Int((log(2 / alpha) / (2 * halfWidth * halfWidth)).rounded(.up))
    }
}
