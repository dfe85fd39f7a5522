import FaultlineStatistics
import Foundation

/// Calibration of Gaussian predictions N(μ, σ²): how often the central interval μ ± Φ⁻¹(½ + p/2)·σ
/// holds the target, against its nominal probability p.
///
/// - `levels`: the observed coverage at each requested nominal level, and `meanAbsoluteError`, the mean
///   |observed − nominal| over them.
/// - On uncertainty-toolbox's grid (`gridPoints` expected proportions `np.linspace(0, 1, G)`, default
///   100, `prop_type="interval"`): `meanAbsoluteCalibrationError` (`mean_absolute_calibration_error`),
///   `rootMeanSquaredCalibrationError` and `miscalibrationArea` (`miscalibration_area`: the area between
///   the observed-vs-expected curve and the diagonal, trapezoids split where the curves cross). Equal to
///   uncertainty-toolbox 0.1.1 within 1e-12 unless a standardised residual lies within a few ulps of a
///   grid quantile.
/// - The PIT histogram: counts of u = Φ((y − μ)/σ) in `pitBins` equal bins of [0, 1] (u = 1 in the
///   last); flat for calibrated predictions, U-shaped for over-confident ones, peaked for under-confident.
///
/// O(n log n + G log n + L log n). Throws for empty or unequal inputs, non-finite values, σ ≤ 0, levels
/// outside [0, 1], gridPoints < 2 or pitBins < 1.
public struct GaussianIntervalCalibration: Sendable, Codable, Equatable {
    /// Coverage at one nominal level.
    public struct Level: Sendable, Codable, Equatable {
        /// The nominal probability p of the central interval.
        public var nominal: Double
        /// The share of targets inside it.
        public var observed: Double
    }

    /// 0.1, 0.2, …, 0.9, 0.95, 0.99.
    public static let defaultLevels: [Double] = (1...9).map { Double($0) / 10 } + [0.95, 0.99]

    /// Predictions evaluated.
    public var samples: Int
    /// One entry per requested level, in the order given.
    public var levels: [Level]
    /// Mean |observed − nominal| over `levels`.
    public var meanAbsoluteError: Double
    /// G, the points of uncertainty-toolbox's grid.
    public var gridPoints: Int
    /// Mean |observed − expected| over the grid (uncertainty-toolbox's MACE).
    public var meanAbsoluteCalibrationError: Double
    /// Root mean squared |observed − expected| over the grid (RMSCE).
    public var rootMeanSquaredCalibrationError: Double
    /// The area between the observed-vs-expected curve and the diagonal.
    public var miscalibrationArea: Double
    /// Counts of the PIT values per bin.
    public var pitHistogram: [Int]

    /// Evaluates Gaussian predictions (μ, σ) against `targets` (see the type's errors).
    public init(mean: [Double], sigma: [Double], targets: [Double], levels nominal: [Double] = defaultLevels,
                gridPoints: Int = 100, pitBins: Int = 10) throws {
        try RegressionCheck.pairs(mean, "means", targets)
        try RegressionCheck.positive(sigma, "standard deviations", count: targets.count)
        guard !nominal.isEmpty, nominal.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
            throw ReliabilityError.invalidParameter("nominal levels must be numbers in [0, 1] (got \(nominal.prefix(5)))")
        }
        guard gridPoints >= 2, gridPoints <= 1_000_000 else { throw ReliabilityError.invalidParameter("gridPoints = \(gridPoints) must lie in 2…1000000") }
        guard pitBins >= 1, pitBins <= 1_000_000 else { throw ReliabilityError.invalidParameter("pitBins = \(pitBins) must lie in 1…1000000") }
        let n = targets.count
        var z = [Double](repeating: 0, count: n)
        var pit = [Int](repeating: 0, count: pitBins)
        for i in 0..<n {
            let t = (targets[i] - mean[i]) / sigma[i]
            z[i] = abs(t)
            let u = Distributions.normalCDF(t)
            pit[min(max(Int(u * Double(pitBins)), 0), pitBins - 1)] += 1
        }
        z.sort()
        /// Share of |z| ≤ Φ⁻¹(½ + p/2).
        func observed(_ p: Double) -> Double {
            let bound = RegressionCheck.normalQuantile(0.5 + p / 2)
            var lo = 0, hi = n  // first index with z > bound
            while lo < hi { let m = (lo + hi) / 2; if z[m] <= bound { lo = m + 1 } else { hi = m } }
            return Double(lo) / Double(n)
        }
        samples = n
        levels = nominal.map { Level(nominal: $0, observed: observed($0)) }
        meanAbsoluteError = levels.reduce(0.0) { $0 + abs($1.observed - $1.nominal) } / Double(levels.count)
        self.gridPoints = gridPoints
        let step = 1 / Double(gridPoints - 1)
        let expected = (0..<gridPoints).map { $0 == gridPoints - 1 ? 1 : Double($0) * step }
        let obs = expected.map(observed)
        var absolute = 0.0, squared = 0.0
        for (e, o) in zip(expected, obs) { absolute += abs(o - e); squared += (o - e) * (o - e) }
        meanAbsoluteCalibrationError = absolute / Double(gridPoints)
        rootMeanSquaredCalibrationError = (squared / Double(gridPoints)).squareRoot()
        miscalibrationArea = Self.areaBetween(expected: expected, observed: obs)
        pitHistogram = pit
    }

    /// The area between the polyline (e, o) and the diagonal o = e, trapezoid by trapezoid; a trapezoid
    /// whose sides cross splits at the crossing into two triangles (uncertainty-toolbox's
    /// `miscalibration_area_from_proportions`).
    public static func areaBetween(expected: [Double], observed: [Double]) -> Double {
        var area = 0.0
        for i in 0..<max(expected.count - 1, 0) {
            let (xl, xr) = (expected[i], expected[i + 1])
            let dl = observed[i] - expected[i], dr = observed[i + 1] - expected[i + 1]
            if dl * dr < 0 {
                let x = xl + (xr - xl) * dl / (dl - dr)
                area += abs(0.5 * dl * (x - xl)) + abs(0.5 * dr * (xr - x))
            } else {
                area += abs((xr - xl) * 0.5 * (dl + dr))
            }
        }
        return area
    }
}

/// Coverage and width of given prediction intervals [lower, upper] (e.g. conformal intervals or
/// predicted quantiles): the share of targets inside (bounds included), below and above, and the mean
/// and median width (+∞ when an interval is unbounded). O(n log n). Throws for empty or unequal
/// inputs, NaN, or lower > upper (naming the index).
public struct IntervalCoverage: Sendable, Codable, Equatable {
    /// Intervals evaluated.
    public var samples: Int
    /// The share of targets inside their interval (bounds included).
    public var coverage: Double
    /// The share below the lower bound.
    public var below: Double
    /// The share above the upper bound.
    public var above: Double
    /// The mean upper − lower (+∞ if any is unbounded).
    public var meanWidth: Double
    /// The median upper − lower.
    public var medianWidth: Double
    /// Intervals with an infinite bound.
    public var unbounded: Int

    /// Evaluates the intervals (see the type's errors).
    public init(lower: [Double], upper: [Double], targets: [Double]) throws {
        guard !targets.isEmpty else { throw ReliabilityError.invalidInput("no targets (an empty input)") }
        guard lower.count == targets.count, upper.count == targets.count else {
            throw ReliabilityError.invalidInput("\(lower.count) lower and \(upper.count) upper bounds for \(targets.count) targets")
        }
        if let i = targets.firstIndex(where: { !$0.isFinite }) { throw ReliabilityError.invalidInput("targets[\(i)] = \(targets[i]) is not finite") }
        var inside = 0, below = 0, above = 0, unbounded = 0
        var widths = [Double](repeating: 0, count: targets.count)
        for i in targets.indices {
            let (lo, hi, y) = (lower[i], upper[i], targets[i])
            guard !lo.isNaN, !hi.isNaN else { throw ReliabilityError.invalidInput("interval \(i) has a NaN bound") }
            guard lo <= hi else { throw ReliabilityError.invalidInput("interval \(i): lower \(lo) > upper \(hi)") }
            if y < lo { below += 1 } else if y > hi { above += 1 } else { inside += 1 }
            if lo.isInfinite || hi.isInfinite { unbounded += 1 }
            widths[i] = hi - lo
        }
        let n = Double(targets.count)
        samples = targets.count
        (coverage, self.below, self.above, self.unbounded) = (Double(inside) / n, Double(below) / n, Double(above) / n, unbounded)
        meanWidth = widths.reduce(0, +) / n
        medianWidth = RegressionCheck.median(widths)
    }
}
