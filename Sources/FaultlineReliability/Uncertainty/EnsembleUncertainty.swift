import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// The uncertainty of an ensemble (or of MC-dropout passes) from the members' class probabilities:
/// predictive entropy (total) = expected member entropy (aleatoric) + mutual information (epistemic,
/// BALD), the mean per-class variance across members, and the members' disagreement.
///
/// Definitions (BASELINES.md W4): p̄ = mean of the M members; var = mean over classes of the population
/// variance (÷ M) across members; H(p) = −Σ p log p with 0·log 0 = 0 (log of max(p, tiny)); MI = H(p̄) −
/// mean_m H(p_m). One pass over the rows, sums per row in Double; MI ≥ 0 up to rounding (it is clamped at
/// 0 only when the Double rounding makes it negative by less than 1e-12). O(M·N·C) logarithms.
public struct EnsembleUncertainty: Sendable {
    /// Per sample.
    public var predictiveEntropy: [Double]
    public var expectedEntropy: [Double]
    public var mutualInformation: [Double]
    public var meanVariance: [Double]
    /// Share of members whose argmax differs from the argmax of the mean (the variation ratio).
    public var variationRatio: [Double]
    /// The mean probabilities (N × C).
    public var mean: Matrix<Float>

    /// Throws `ReliabilityError` for no members, members of different shapes (naming the member), or
    /// rows that are not probability vectors.
    public static func compute(members: [Matrix<Float>]) throws -> EnsembleUncertainty {
        guard let first = members.first else { throw ReliabilityError.invalidInput("no ensemble members") }
        let n = first.rows, c = first.columns, m = members.count
        for (k, p) in members.enumerated() {
            guard p.rows == n, p.columns == c else {
                throw ReliabilityError.invalidInput("member \(k) is \(p.rows)×\(p.columns), member 0 is \(n)×\(c)")
            }
            try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: n, classes: c, name: "member \(k)") }
        }
        var result = EnsembleUncertainty(predictiveEntropy: .init(repeating: 0, count: n), expectedEntropy: .init(repeating: 0, count: n),
                                         mutualInformation: .init(repeating: 0, count: n), meanVariance: .init(repeating: 0, count: n),
                                         variationRatio: .init(repeating: 0, count: n), mean: Matrix(rows: n, columns: c))
        let tiny = Double(Float.leastNormalMagnitude)
        let pointers = members.map { member in member.withUnsafeBufferPointer { $0.baseAddress! } }  // storage outlives the loop
        var rowMean = [Double](repeating: 0, count: c)
        result.mean.withUnsafeMutableBufferPointer { meanOut in
            for i in 0..<n {
                for j in 0..<c { rowMean[j] = 0 }
                var expected = 0.0
                for p in pointers {
                    let row = p + i * c
                    var h = 0.0
                    for j in 0..<c {
                        let v = Double(row[j])
                        rowMean[j] += v
                        h -= v * log(max(v, tiny))
                    }
                    expected += h
                }
                var total = 0.0, variance = 0.0, best = 0
                for j in 0..<c {
                    rowMean[j] /= Double(m)
                    total -= rowMean[j] * log(max(rowMean[j], tiny))
                    if rowMean[j] > rowMean[best] { best = j }
                    meanOut[i * c + j] = Float(rowMean[j])
                }
                var disagree = 0
                for p in pointers {
                    let row = p + i * c
                    var memberBest = 0
                    for j in 0..<c {
                        let d = Double(row[j]) - rowMean[j]
                        variance += d * d
                        if row[j] > row[memberBest] { memberBest = j }
                    }
                    if memberBest != best { disagree += 1 }
                }
                expected /= Double(m)
                let mi = total - expected
                result.predictiveEntropy[i] = total
                result.expectedEntropy[i] = expected
                result.mutualInformation[i] = mi < 0 && mi > -1e-12 ? 0 : mi
                result.meanVariance[i] = variance / Double(m * c)
                result.variationRatio[i] = Double(disagree) / Double(m)
            }
        }
        withExtendedLifetime(members) {}
        return result
    }
}
