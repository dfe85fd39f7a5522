/// Histogram binning (Zadrozny & Elkan 2001) of a confidence score: B equal-width bins on [0, 1]
/// (right-closed, confidence 0 in the first bin); a score is replaced by the accuracy of its bin on the
/// calibration set, and by the bin centre where the calibration set left the bin empty.
public struct HistogramBinning: Sendable, Codable, Equatable {
    /// The value each bin maps to: its calibration accuracy, or its centre when empty.
    public private(set) var binValues: [Double]
    /// Calibration rows per bin.
    public private(set) var binCounts: [Int]

    /// Throws for fewer than one bin, mismatched inputs or confidences outside [0, 1].
    public init(confidences: [Double], correct: [Bool], bins: Int = 15) throws {
        guard bins >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        guard !confidences.isEmpty, confidences.count == correct.count else {
            throw ReliabilityError.invalidInput("histogram binning needs as many correctness flags as confidences (got \(confidences.count) and \(correct.count))")
        }
        if let bad = confidences.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw ReliabilityError.invalidInput("confidence \(confidences[bad]) at \(bad) is outside [0, 1]")
        }
        var hits = [Double](repeating: 0, count: bins), counts = [Int](repeating: 0, count: bins)
        for (c, ok) in zip(confidences, correct) {
            let b = HistogramBinning.bin(c, bins)
            counts[b] += 1
            if ok { hits[b] += 1 }
        }
        binCounts = counts
        binValues = (0..<bins).map { (b: Int) -> Double in
            counts[b] > 0 ? hits[b] / Double(counts[b]) : (Double(b) + 0.5) / Double(bins)
        }
    }

    static func bin(_ c: Double, _ bins: Int) -> Int { min(max(Int((c * Double(bins)).rounded(.up)) - 1, 0), bins - 1) }

    /// The recalibrated confidence (inputs clamped to [0, 1]).
    public func callAsFunction(_ confidence: Double) -> Double { binValues[HistogramBinning.bin(min(max(confidence, 0), 1), binValues.count)] }
}
