import FaultlineLinalg
import FaultlineStatistics

/// What calibration metrics are computed from: logits (the probabilities are formed row by row inside each
/// metric, never materialised, so a large logits matrix costs its own size) or probabilities.
public enum CalibrationScores: Sendable {
    /// N × C logits, or N × C probabilities (rows summing to 1).
    case logits(Matrix<Float>), probabilities(Matrix<Float>)

    /// The N×C matrix, logits or probabilities.
    public var matrix: Matrix<Float> {
        switch self {
        case .logits(let m), .probabilities(let m): return m
        }
    }

    /// The logits, when these are logits.
    public var logits: Matrix<Float>? {
        if case .logits(let z) = self { return z }
        return nil
    }

    /// The probabilities, materialised (softmax of logits in float32).
    public func probabilities() throws -> Matrix<Float> {
        switch self {
        case .logits(let z): return try Linalg.softmaxRows(z)
        case .probabilities(let p): return p
        }
    }

    /// The rows `rows` (any order, repeats allowed), e.g. a bootstrap resample.
    public func gatherRows(_ rows: [Int]) -> CalibrationScores {
        switch self {
        case .logits(let z): return .logits(z.gatherRows(rows))
        case .probabilities(let p): return .probabilities(p.gatherRows(rows))
        }
    }
}

/// Every calibration metric of one set at once: ECE and MCE with the chosen binning and its bins,
/// classwise and top-label ECE (equal-width, `bins` bins), Brier score, NLL and accuracy — the table of
/// `faultline calibrate`. Each number is the corresponding kernel's (`CalibrationMetrics`,
/// `ClasswiseCalibration`), with their accuracy; cost O(N·C) per metric.
public struct CalibrationSummary: Codable, Equatable, Sendable {
    /// ECE with the chosen binning.
    public var ece: Double
    /// MCE with the chosen binning.
    public var mce: Double
    /// Classwise ECE (Kull et al. 2019).
    public var classwiseECE: Double
    /// Top-label ECE (Gupta & Ramdas 2021).
    public var topLabelECE: Double
    /// The multiclass Brier score.
    public var brier: Double
    /// The mean negative log-likelihood.
    public var nll: Double
    /// Top-1 accuracy.
    public var accuracy: Double
    /// The reliability diagram of the chosen binning.
    public var bins: [CalibrationMetrics.Bin]

    /// The metrics' names, in the order of `values`.
    public static let metricNames = ["ECE", "MCE", "classwise ECE", "top-label ECE", "Brier", "NLL", "accuracy"]
    /// The metrics in the order of `metricNames`.
    public var values: [Double] { [ece, mce, classwiseECE, topLabelECE, brier, nll, accuracy] }

    /// The metrics of `scores` against `labels` (one per row, in 0..<C).
    /// - Throws: the kernels' `ReliabilityError` (row/label mismatch, labels out of range, invalid probabilities).
    public init(_ scores: CalibrationScores, labels: [Int], binning: CalibrationMetrics.Binning, bins: Int) throws {
        let m: CalibrationMetrics
        switch scores {
        case .logits(let z):
            m = try CalibrationMetrics.compute(logits: z, labels: labels, binning: binning)
            classwiseECE = try ClasswiseCalibration.classwiseECE(logits: z, labels: labels, bins: bins)
            topLabelECE = try ClasswiseCalibration.topLabelECE(logits: z, labels: labels, bins: bins)
        case .probabilities(let p):
            m = try CalibrationMetrics.compute(probabilities: p, labels: labels, binning: binning)
            classwiseECE = try ClasswiseCalibration.classwiseECE(probabilities: p, labels: labels, bins: bins)
            topLabelECE = try ClasswiseCalibration.topLabelECE(probabilities: p, labels: labels, bins: bins)
        }
        (ece, mce, brier, nll, accuracy, self.bins) = (m.ece, m.mce, m.brier, m.nll, m.accuracy, m.bins)
    }

    /// Percentile bootstrap intervals of every metric, by name (`metricNames`), from `resamples` seeded
    /// resamples of the rows (`Bootstrap.percentile`: resample b uses Philox stream b of `seed`, so the
    /// intervals are reproducible). Cost: `resamples` evaluations of every metric.
    public static func bootstrapIntervals(_ scores: CalibrationScores, labels: [Int], binning: CalibrationMetrics.Binning, bins: Int,
                                          resamples: Int, confidence: Double, seed: UInt64) throws -> [String: Bootstrap.Interval] {
        let intervals = try Bootstrap.percentile(samples: scores.matrix.rows, resamples: resamples, alpha: 1 - confidence, seed: seed) { rows in
            try CalibrationSummary(scores.gatherRows(rows), labels: rows.map { labels[$0] }, binning: binning, bins: bins).values
        }
        return Dictionary(uniqueKeysWithValues: zip(metricNames, intervals))
    }
}

extension Recalibrator {
    /// Fits `method` on calibration scores (logits for temperature and vector scaling; the top-label
    /// methods use the probabilities, from logits by softmax). Errors as `fit(_:logits:probabilities:labels:bins:)`.
    public static func fit(_ method: Method, on scores: CalibrationScores, labels: [Int], bins: Int = 15) throws -> Recalibrator {
        try fit(method, logits: scores.logits, probabilities: scores.logits == nil ? scores.matrix : nil, labels: labels, bins: bins)
    }

    /// The recalibrated scores: recalibrated logits for the logit methods when `scores` are logits, else
    /// recalibrated probabilities. Throws `ReliabilityError.invalidInput` when a logit method meets
    /// probabilities (or Platt scaling any scores).
    public func recalibrated(_ scores: CalibrationScores) throws -> CalibrationScores {
        if let z = scores.logits, let recalibrated = recalibrated(logits: z) { return .logits(recalibrated) }
        guard let p = recalibrated(probabilities: try scores.probabilities()) else {
            throw ReliabilityError.invalidInput("this recalibrator maps logits; give logits to recalibrate")
        }
        return .probabilities(p)
    }
}
