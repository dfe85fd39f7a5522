import FaultlineLinalg

/// Calibration errors finer than the top-1 ECE, with equal-width, right-closed bins on [0, 1]
/// (probability 0 in the first bin), in Double:
/// - classwise ECE (Kull et al. 2019): (1/C) Σ_k Σ_b (n_kb/N)·|freq_kb − conf_kb|, bins over p_k of every
///   sample, freq = share with y = k;
/// - top-label ECE (Gupta & Ramdas 2021): Σ_c Σ_b (n_cb/N)·|acc_cb − conf_cb| over the samples predicted
///   c, binned by their top probability.
public enum ClasswiseCalibration {
    public static func classwiseECE(probabilities p: Matrix<Float>, labels: [Int], bins: Int = 15) throws -> Double {
        try validate(p, labels, bins)
        let n = p.rows, c = p.columns
        var total = 0.0
        for k in 0..<c {
            var count = [Double](repeating: 0, count: bins), confidence = count, frequency = count
            for i in 0..<n {
                let v = Double(p[i, k]), b = bin(v, bins)
                count[b] += 1; confidence[b] += v
                if labels[i] == k { frequency[b] += 1 }
            }
            for b in 0..<bins where count[b] > 0 { total += abs(frequency[b] - confidence[b]) / Double(n) }
        }
        return total / Double(c)
    }

    public static func topLabelECE(probabilities p: Matrix<Float>, labels: [Int], bins: Int = 15) throws -> Double {
        try validate(p, labels, bins)
        let n = p.rows, c = p.columns
        var count = [Double](repeating: 0, count: c * bins), confidence = count, correct = count
        for i in 0..<n {
            var top = 0
            for k in 1..<c where p[i, k] > p[i, top] { top = k }
            let v = Double(p[i, top]), slot = top * bins + bin(v, bins)
            count[slot] += 1; confidence[slot] += v
            if labels[i] == top { correct[slot] += 1 }
        }
        return count.indices.reduce(0.0) { $0 + (count[$1] > 0 ? abs(correct[$1] - confidence[$1]) / Double(n) : 0) }
    }

    static func bin(_ v: Double, _ bins: Int) -> Int { min(max(Int((v * Double(bins)).rounded(.up)) - 1, 0), bins - 1) }

    static func validate(_ p: Matrix<Float>, _ labels: [Int], _ bins: Int) throws {
        guard bins >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
    }
}
