import FaultlineLinalg

/// Calibration errors finer than the top-1 ECE, with equal-width, right-closed bins on [0, 1]
/// (probability 0 in the first bin), in Double:
/// - classwise ECE (Kull et al. 2019): (1/C) Σ_k Σ_b (n_kb/N)·|freq_kb − conf_kb|, bins over p_k of every
///   sample, freq = share with y = k;
/// - top-label ECE (Gupta & Ramdas 2021): Σ_c Σ_b (n_cb/N)·|acc_cb − conf_cb| over the samples predicted
///   c, binned by their top probability.
public enum ClasswiseCalibration {
    /// Classwise ECE from N × C probabilities. Throws `ReliabilityError` for rows that are not probability vectors, labels out of range, empty input or fewer than one bin.
    public static func classwiseECE(probabilities p: Matrix<Float>, labels: [Int], bins: Int = 15) throws -> Double {
        try validate(p, labels, bins)
        return withRowProbabilities(p, logits: false) { classwise(rows: p.rows, classes: p.columns, labels: labels, bins: bins, $0) }
    }

    /// The same from logits, the probabilities formed row by row in Double (never materialised: memory
    /// O(C + C·bins)). Throws on non-finite logits, naming the row.
    public static func classwiseECE(logits z: Matrix<Float>, labels: [Int], bins: Int = 15) throws -> Double {
        try validate(logits: z, labels, bins)
        return withRowProbabilities(z, logits: true) { classwise(rows: z.rows, classes: z.columns, labels: labels, bins: bins, $0) }
    }

    /// Top-label ECE from N × C probabilities. Throws like `classwiseECE(probabilities:labels:bins:)`.
    public static func topLabelECE(probabilities p: Matrix<Float>, labels: [Int], bins: Int = 15) throws -> Double {
        try validate(p, labels, bins)
        return withRowProbabilities(p, logits: false) { topLabel(rows: p.rows, classes: p.columns, labels: labels, bins: bins, $0) }
    }

    /// The same from logits, the probabilities formed row by row in Double. Throws on non-finite logits.
    public static func topLabelECE(logits z: Matrix<Float>, labels: [Int], bins: Int = 15) throws -> Double {
        try validate(logits: z, labels, bins)
        return withRowProbabilities(z, logits: true) { topLabel(rows: z.rows, classes: z.columns, labels: labels, bins: bins, $0) }
    }

    /// Calls `body` with a function that writes row i's probabilities in Double: the row of `m` itself, or
    /// with `logits` the softmax of it.
    static func withRowProbabilities<R>(_ m: Matrix<Float>, logits: Bool, _ body: ((Int, UnsafeMutablePointer<Double>) -> Void) -> R) -> R {
        let c = m.columns
        return m.withUnsafeBufferPointer { buffer in
            body { i, row in
                let source = buffer.baseAddress! + i * c
                if logits { softmax(source, c, into: row) } else { for k in 0..<c { row[k] = Double(source[k]) } }
            }
        }
    }

    /// Σ_k Σ_b (n_kb/N)·|freq_kb − conf_kb| / C with the probabilities of row i written by `row(i, buffer)`;
    /// every (class, bin) sum accumulates in row order.
    static func classwise(rows n: Int, classes c: Int, labels: [Int], bins: Int, _ row: (Int, UnsafeMutablePointer<Double>) -> Void) -> Double {
        var count = [Double](repeating: 0, count: c * bins), confidence = count, frequency = count
        let p = UnsafeMutablePointer<Double>.allocate(capacity: c)
        defer { p.deallocate() }
        for i in 0..<n {
            row(i, p)
            for k in 0..<c {
                let slot = k * bins + bin(p[k], bins)
                count[slot] += 1
                confidence[slot] += p[k]
                if labels[i] == k { frequency[slot] += 1 }
            }
        }
        var total = 0.0
        for slot in count.indices where count[slot] > 0 { total += abs(frequency[slot] - confidence[slot]) / Double(n) }
        return total / Double(c)
    }

    /// Σ_c Σ_b (n_cb/N)·|acc_cb − conf_cb| with the probabilities of row i written by `row(i, buffer)`.
    static func topLabel(rows n: Int, classes c: Int, labels: [Int], bins: Int, _ row: (Int, UnsafeMutablePointer<Double>) -> Void) -> Double {
        var count = [Double](repeating: 0, count: c * bins), confidence = count, correct = count
        let p = UnsafeMutablePointer<Double>.allocate(capacity: c)
        defer { p.deallocate() }
        for i in 0..<n {
            row(i, p)
            var top = 0
            for k in 1..<c where p[k] > p[top] { top = k }
            let slot = top * bins + bin(p[top], bins)
            count[slot] += 1
            confidence[slot] += p[top]
            if labels[i] == top { correct[slot] += 1 }
        }
        return count.indices.reduce(0.0) { $0 + (count[$1] > 0 ? abs(correct[$1] - confidence[$1]) / Double(n) : 0) }
    }

    /// softmax of `count` logits in Double.
    static func softmax(_ z: UnsafePointer<Float>, _ count: Int, into p: UnsafeMutablePointer<Double>) {
        var m = -Double.infinity
        for k in 0..<count { m = max(m, Double(z[k])) }
        var sum = 0.0
        for k in 0..<count { p[k] = Double.exp(Double(z[k]) - m); sum += p[k] }
        for k in 0..<count { p[k] /= sum }
    }

    static func bin(_ v: Double, _ bins: Int) -> Int { min(max(Int((v * Double(bins)).rounded(.up)) - 1, 0), bins - 1) }

    static func validate(logits z: Matrix<Float>, _ labels: [Int], _ bins: Int) throws {
        guard bins >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        guard z.rows > 0, z.columns > 0 else { throw ReliabilityError.invalidInput("logits are empty (\(z.rows)×\(z.columns))") }
        if let bad = z.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
            throw ReliabilityError.invalidInput("logits row \(bad / z.columns) contains NaN or infinite values")
        }
        try Check.labels(labels, rows: z.rows, classes: z.columns)
    }

    static func validate(_ p: Matrix<Float>, _ labels: [Int], _ bins: Int) throws {
        guard bins >= 1 else { throw ReliabilityError.invalidParameter("need at least one bin") }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
    }
}
