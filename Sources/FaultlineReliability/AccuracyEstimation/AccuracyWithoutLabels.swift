import FaultlineLinalg
#if canImport(Glibc)
import Glibc
#endif

/// Predicting a model's accuracy on unlabelled target data from a labelled source validation set.
///
/// - ATC, average thresholded confidence (Garg et al. 2022): a threshold t on a confidence score such
///   that the share of source rows scoring above t equals the source accuracy; the predicted target
///   accuracy is the share of target rows scoring above t.
/// - DoC, difference of confidences (Guillory et al. 2021): source accuracy + (mean target MSP − mean
///   source MSP), clipped to [0, 1].
/// - AC, average confidence: the mean target MSP.
///
/// Ties (common: float32 MSPs saturate at exactly 1), handled exactly: with the n source scores sorted,
/// c rows correct and e = n − c wrong, t is the e-th smallest score (t = −∞ when e = 0). Rows scoring
/// strictly above t count 1; rows scoring exactly t count λ = (c − #{s > t}) / #{s = t} ∈ [0, 1), the
/// share of the tie that makes the source identity #{s > t} + λ·#{s = t} = c hold exactly. Target rows
/// count the same way. Without a tie at t this is Garg et al.'s definition (share strictly above t).
public struct AccuracyEstimate: Sendable, Codable, Equatable {
    /// The confidence score thresholded.
    public enum Score: String, Sendable, Codable, CaseIterable {
        /// Maximum softmax probability.
        case msp
        /// Negative entropy Σ_y p_y log p_y (0 log 0 = 0).
        case negativeEntropy = "negative-entropy"
    }

    /// The score used.
    public var score: Score
    /// The accuracy on the labelled source set.
    public var sourceAccuracy: Double
    /// The ATC threshold t on the score, and the weight λ of a score equal to t.
    public var threshold: Double
    /// λ, the weight of a target score equal to t.
    public var tieWeight: Double
    /// ATC's predicted target accuracy.
    public var atc: Double
    /// DoC's predicted target accuracy, clipped to [0, 1].
    public var doc: Double
    /// The mean target MSP (AC).
    public var averageConfidence: Double

    /// Fits on (source probabilities, labels) and predicts the accuracy on `target` (rows of
    /// probabilities). Scores in Double. O((n + m)·K + n log n). Throws `ReliabilityError` for bad
    /// probabilities (NaN, outside [0, 1], rows not summing to 1 within 1e-3), labels out of range or of
    /// the wrong count, empty inputs, or class counts that differ.
    public init(source: Matrix<Float>, labels: [Int], target: Matrix<Float>, score: Score = .msp) throws {
        try source.withUnsafeBufferPointer { try Check.probabilities($0, rows: source.rows, classes: source.columns, name: "source probabilities") }
        try target.withUnsafeBufferPointer { try Check.probabilities($0, rows: target.rows, classes: target.columns, name: "target probabilities") }
        try Check.labels(labels, rows: source.rows, classes: source.columns)
        guard source.columns == target.columns else {
            throw ReliabilityError.invalidInput("source probabilities have \(source.columns) classes, target \(target.columns)")
        }
        let predicted = Self.argmax(source)
        let correct = zip(predicted, labels).filter { $0 == $1 }.count
        let sourceScores = Self.scores(source, score), targetScores = Self.scores(target, score)
        let (t, lambda) = Self.threshold(sourceScores, correct: correct)
        self.score = score
        sourceAccuracy = Double(correct) / Double(source.rows)
        threshold = t
        tieWeight = lambda
        atc = Self.share(targetScores, above: t, tieWeight: lambda)
        let sourceMSP = Self.scores(source, .msp), targetMSP = Self.scores(target, .msp)
        let meanSource = sourceMSP.reduce(0, +) / Double(sourceMSP.count), meanTarget = targetMSP.reduce(0, +) / Double(targetMSP.count)
        doc = min(1, max(0, sourceAccuracy + meanTarget - meanSource))
        averageConfidence = meanTarget
    }

    /// Per-row scores (Double).
    public static func scores(_ p: Matrix<Float>, _ score: Score) -> [Double] {
        (0..<p.rows).map { i in
            let row = p.row(i)
            switch score {
            case .msp: return Double(row.max() ?? 0)
            case .negativeEntropy: return row.reduce(0.0) { $1 > 0 ? $0 + Double($1) * log(Double($1)) : $0 }
            }
        }
    }

    /// The threshold and tie weight that give exactly `correct` of the source scores "above" (see the
    /// type's documentation). `correct` = count gives t = −∞, λ = 0.
    public static func threshold(_ scores: [Double], correct c: Int) -> (threshold: Double, tieWeight: Double) {
        let e = scores.count - c
        guard e > 0 else { return (-.infinity, 0) }
        let sorted = scores.sorted()
        let t = sorted[e - 1]
        let above = scores.filter { $0 > t }.count, equal = scores.filter { $0 == t }.count
        return (t, Double(c - above) / Double(equal))
    }

    /// (#{s > t} + λ·#{s = t}) / count.
    public static func share(_ scores: [Double], above t: Double, tieWeight lambda: Double) -> Double {
        var sum = 0.0
        for s in scores { sum += s > t ? 1 : (s == t ? lambda : 0) }
        return sum / Double(max(scores.count, 1))
    }

    static func argmax(_ p: Matrix<Float>) -> [Int] {
        (0..<p.rows).map { i in
            let row = p.row(i)
            var best = 0
            for j in row.indices where row[j] > row[best] { best = j }
            return best
        }
    }
}
