import FaultlineLinalg

/// Top-label calibration of a classifier: expected and maximum calibration error over confidence
/// bins, Brier score, negative log-likelihood, and the reliability diagram behind them.
///
/// Confidence is the top-1 probability; a sample is correct when its argmax (first maximum) equals its
/// label. Sums are accumulated in Double, so results do not depend on float32 accumulation order
/// (torchmetrics' float32 `scatter_add` is the source of its 1e-4 deviations, BASELINES.md W5).
public struct CalibrationMetrics: Sendable, Codable {
    /// Σ_b (n_b/N)·|acc_b − conf_b|.
    public var ece: Double
    /// max_b |acc_b − conf_b| over non-empty bins.
    public var mce: Double
    /// Mean over samples of Σ_c (p_c − 1[c = y])² (scikit-learn's multiclass definition).
    public var brier: Double
    /// Mean −log p_y (p clamped at the smallest positive float so a zero probability gives a large, finite value).
    public var nll: Double
    public var accuracy: Double
    public var meanConfidence: Double
    public var bins: [Bin]

    public struct Bin: Sendable, Codable, Equatable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        public var meanConfidence: Double
        public var accuracy: Double
    }

    /// How confidences are assigned to bins.
    public enum Binning: Sendable, Equatable {
        /// B equal-width bins over [0, 1]: bin b holds conf in [b/B, (b+1)/B), and confidence 1.0 falls in
        /// the last bin (Faultline's default; torchmetrics gives 1.0 a bin of its own).
        case equalWidth(bins: Int)
        /// torchmetrics' convention: [lo, hi) bins and confidence exactly 1.0 in a bin of its own (B + 1
        /// bins in `bins`, the last one [1, 1]).
        case torchmetrics(bins: Int)
        /// Equal-width with right-closed bins (lo, hi] as in Guo et al. and scikit-learn's calibration_curve
        /// (confidence 0 goes to the first bin).
        case equalWidthRightClosed(bins: Int)
        /// B bins of (nearly) equal counts over the sorted confidences; the first N mod B bins take one
        /// extra sample (adaptive ECE as torch-uncertainty computes it).
        case equalMass(bins: Int)

        var count: Int {
            switch self {
            case .equalWidth(let b), .equalWidthRightClosed(let b), .equalMass(let b): return b
            case .torchmetrics(let b): return b + 1
            }
        }
    }

    /// Computes every metric from an N × C matrix of probabilities. Throws `ReliabilityError` for rows
    /// that are not probability vectors (with the row and by how much), labels out of range, empty input,
    /// or fewer than one bin.
    public static func compute(probabilities p: Matrix<Float>, labels: [Int], binning: Binning = .equalWidth(bins: 15)) throws -> CalibrationMetrics {
        guard binning.count >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        let n = p.rows, c = p.columns
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: n, classes: c, name: "probabilities") }
        try Check.labels(labels, rows: n, classes: c)
        var confidence = [Double](repeating: 0, count: n)
        var correct = [Bool](repeating: false, count: n)
        var brier = 0.0, nll = 0.0
        p.withUnsafeBufferPointer { buffer in
            for i in 0..<n {
                let row = buffer.baseAddress! + i * c
                var best = 0
                for j in 1..<c where row[j] > row[best] { best = j }
                confidence[i] = Double(row[best])
                correct[i] = best == labels[i]
                for j in 0..<c {
                    let t = Double(row[j]) - (j == labels[i] ? 1 : 0)
                    brier += t * t
                }
                nll -= Double.log(max(Double(row[labels[i]]), Double(Float.leastNonzeroMagnitude)))
            }
        }
        let bins = reliabilityBins(confidence: confidence, correct: correct, binning: binning)
        var ece = 0.0, mce = 0.0
        for b in bins where b.count > 0 {
            let gap = abs(b.accuracy - b.meanConfidence)
            ece += Double(b.count) / Double(n) * gap
            mce = max(mce, gap)
        }
        return CalibrationMetrics(ece: ece, mce: mce, brier: brier / Double(n), nll: nll / Double(n),
                                  accuracy: Double(correct.filter { $0 }.count) / Double(n),
                                  meanConfidence: confidence.reduce(0, +) / Double(n), bins: bins)
    }

    /// From logits: the softmax (computed stably in float32) then `compute`.
    public static func compute(logits: Matrix<Float>, labels: [Int], binning: Binning = .equalWidth(bins: 15)) throws -> CalibrationMetrics {
        guard logits.isFinite else { throw ReliabilityError.invalidInput("logits contain NaN or infinite values") }
        return try compute(probabilities: Linalg.softmaxRows(logits), labels: labels, binning: binning)
    }

    static func reliabilityBins(confidence: [Double], correct: [Bool], binning: Binning) -> [Bin] {
        let n = confidence.count, count = binning.count
        var members = [[Int]](repeating: [], count: count)
        var edges: [(Double, Double)] = (0..<count).map { (Double($0) / Double(count), Double($0 + 1) / Double(count)) }
        switch binning {
        case .equalWidth:
            for i in 0..<n { members[min(Int(confidence[i] * Double(count)), count - 1)].append(i) }
        case .torchmetrics(let b):
            edges = (0..<b).map { (Double($0) / Double(b), Double($0 + 1) / Double(b)) } + [(1, 1)]
            for i in 0..<n { members[min(Int(confidence[i] * Double(b)), b)].append(i) }
        case .equalWidthRightClosed:
            for i in 0..<n {
                let b = Int((confidence[i] * Double(count)).rounded(.up)) - 1
                members[min(max(b, 0), count - 1)].append(i)
            }
        case .equalMass:
            let order = (0..<n).sorted { confidence[$0] < confidence[$1] }
            var start = 0
            for b in 0..<count {
                let size = n / count + (b < n % count ? 1 : 0)
                members[b] = Array(order[start..<(start + size)])
                start += size
            }
            edges = members.map { m in m.isEmpty ? (0, 0) : (confidence[m.first!], confidence[m.last!]) }
        }
        return (0..<count).map { b in
            let m = members[b]
            let conf = m.isEmpty ? 0 : m.reduce(0.0) { $0 + confidence[$1] } / Double(m.count)
            let acc = m.isEmpty ? 0 : Double(m.filter { correct[$0] }.count) / Double(m.count)
            return Bin(lower: edges[b].0, upper: edges[b].1, count: m.count, meanConfidence: conf, accuracy: acc)
        }
    }
}
