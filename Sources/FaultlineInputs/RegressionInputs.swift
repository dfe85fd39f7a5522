import FaultlineIO

/// Regression predictions and targets read from files (.npy, .npz[:NAME], .safetensors, CSV, IDX) as
/// Double, checked before any kernel sees them; every error names the option, the file and the row.
extension Inputs {
    /// What the columns of a regression prediction file hold.
    public enum RegressionColumns: String, Sendable, CaseIterable {
        /// One column (N or N×1) of point predictions, two columns read as mean and σ.
        case auto
        /// Point predictions ŷ (one column).
        case mean
        /// Gaussian predictions: mean and standard deviation σ > 0 (N×2).
        case meanSigma = "mean-sigma"
        /// Gaussian predictions: mean and variance σ² > 0 (N×2).
        case meanVariance = "mean-var"
        /// Predicted lower and upper quantiles (N×2, lower ≤ upper), optionally a third column of point
        /// predictions (else the midpoint is the point prediction).
        case lowerUpper = "lower-upper"
    }

    /// Regression predictions, column by column.
    public struct RegressionPredictions: Sendable {
        /// The layout the columns were read in.
        public var columns: RegressionColumns
        /// Point predictions: the mean, or the third column / midpoint of a quantile band.
        public var mean: [Double]
        /// Standard deviations (mean-sigma, mean-var).
        public var sigma: [Double]?
        /// Quantile band (lower-upper).
        public var lower: [Double]?
        /// Upper quantile (lower-upper).
        public var upper: [Double]?
        /// The number of predictions (rows).
        public var count: Int { mean.count }
    }

    /// The columns of a rank-1 (N) or rank-2 (N×C) numeric array, as Double, every value finite;
    /// `allowed` column counts. Errors name `option`, the file, and the row and column of a bad value.
    public static func regressionColumns(_ path: String, option: String, allowed: ClosedRange<Int>) throws -> [[Double]] {
        try naming(option) {
            let (file, _) = ArrayFile.split(path)
            try FileAccess.checkRegularFile(file)
            let t = try tensor(path, array: nil)
            let (rows, columns): (Int, Int)
            switch t.rank {
            case 1: (rows, columns) = (t.shape[0], 1)
            case 2: (rows, columns) = (t.shape[0], t.shape[1])
            default: throw IOError(.shapeMismatch, file: path, "shape \(t.shape); expected N values or N×\(allowed.upperBound) columns")
            }
            guard rows > 0 else { throw IOError(.shapeMismatch, file: path, "shape \(t.shape) has no rows (an empty input)") }
            guard allowed.contains(columns) else {
                throw IOError(.shapeMismatch, file: path, "shape \(t.shape) has \(columns) columns; expected \(allowed.lowerBound == allowed.upperBound ? "\(allowed.lowerBound)" : "\(allowed.lowerBound)–\(allowed.upperBound)")")
            }
            let values = t.values(as: Double.self)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw IOError(.invalidValue, file: path, "row \(bad / columns), column \(bad % columns) is \(values[bad]); the values must be finite")
            }
            return (0..<columns).map { c in (0..<rows).map { values[$0 * columns + c] } }
        }
    }

    /// Regression targets: one finite value per row (N or N×1).
    public static func regressionTargets(_ path: String, option: String) throws -> [Double] {
        try regressionColumns(path, option: option, allowed: 1...1)[0]
    }

    /// Regression predictions as `columns` says (`auto`: one column = means, two = mean and σ).
    /// σ (or the variance) must be > 0 and lower ≤ upper, row by row; errors name the option, file and row.
    public static func regressionPredictions(_ path: String, option: String, columns: RegressionColumns) throws -> RegressionPredictions {
        let allowed: ClosedRange<Int>
        switch columns {
        case .auto: allowed = 1...2
        case .mean: allowed = 1...1
        case .meanSigma, .meanVariance: allowed = 2...2
        case .lowerUpper: allowed = 2...3
        }
        let c = try regressionColumns(path, option: option, allowed: allowed)
        let kind: RegressionColumns = columns == .auto ? (c.count == 1 ? .mean : .meanSigma) : columns
        switch kind {
        case .mean, .auto:
            return RegressionPredictions(columns: .mean, mean: c[0])
        case .meanSigma, .meanVariance:
            let what = kind == .meanSigma ? "σ" : "variance"
            if let i = c[1].firstIndex(where: { !($0 > 0) }) {
                throw InputError("\(option) \(path): row \(i) has \(what) \(c[1][i]); column 2 (\(kind.rawValue)) must be > 0 (pass --columns lower-upper for quantile bands)")
            }
            return RegressionPredictions(columns: kind, mean: c[0], sigma: kind == .meanSigma ? c[1] : c[1].map { $0.squareRoot() })
        case .lowerUpper:
            if let i = c[0].indices.first(where: { c[0][$0] > c[1][$0] }) {
                throw InputError("\(option) \(path): row \(i) has lower \(c[0][i]) > upper \(c[1][i]); the columns must be lower, upper[, point]")
            }
            let point = c.count == 3 ? c[2] : c[0].indices.map { (c[0][$0] + c[1][$0]) / 2 }
            return RegressionPredictions(columns: .lowerUpper, mean: point, lower: c[0], upper: c[1])
        }
    }
}
