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
    /// rows that are not probability vectors (values outside [0, 1] or NaN, or a row sum off by more
    /// than 1e-3; the first bad member and row are named). `includeMean: false` skips the N × C mean.
    public static func compute(members: [Matrix<Float>], includeMean: Bool = true) throws -> EnsembleUncertainty {
        guard let first = members.first else { throw ReliabilityError.invalidInput("no ensemble members") }
        for (k, p) in members.enumerated() where p.rows != first.rows || p.columns != first.columns {
            throw ReliabilityError.invalidInput("member \(k) is \(p.rows)×\(p.columns), member 0 is \(first.rows)×\(first.columns)")
        }
        return try withExtendedLifetime(members) {
            try compute(pointers: members.map { m in m.withUnsafeBufferPointer { $0.baseAddress! } },
                        rows: first.rows, classes: first.columns, includeMean: includeMean)
        }
    }

    /// The same from one contiguous array of M member blocks, each N × C row-major (the [M, N, C]
    /// layout of a stacked `.npy`, e.g. read with `NPY.readMatrix` as M × (N·C)), without copying.
    public static func compute(stacked: Matrix<Float>, members m: Int, classes c: Int, includeMean: Bool = true) throws -> EnsembleUncertainty {
        guard m > 0, c > 0, stacked.count % (m * c) == 0 else {
            throw ReliabilityError.invalidInput("\(stacked.count) values do not split into \(m) members of rows of \(c) classes")
        }
        let n = stacked.count / (m * c)
        return try stacked.withUnsafeBufferPointer { base in
            try compute(pointers: (0..<m).map { base.baseAddress! + $0 * n * c }, rows: n, classes: c, includeMean: includeMean)
        }
    }

    /// One fused pass per row over the members (SIMD over classes, the vectorised log, entropies summed
    /// in Double per member row), rows split across threads. Validation rides along the same pass.
    static func compute(pointers: [UnsafePointer<Float>], rows n: Int, classes c: Int, includeMean: Bool) throws -> EnsembleUncertainty {
        let m = pointers.count
        guard n > 0, c > 0 else { throw ReliabilityError.invalidInput("empty ensemble output (\(n)×\(c))") }
        var result = EnsembleUncertainty(predictiveEntropy: .init(repeating: 0, count: n), expectedEntropy: .init(repeating: 0, count: n),
                                         mutualInformation: .init(repeating: 0, count: n), meanVariance: .init(repeating: 0, count: n),
                                         variationRatio: .init(repeating: 0, count: n),
                                         mean: includeMean ? Matrix(uninitializedRows: n, columns: c) : Matrix(rows: 0, columns: c))
        let blocks = min(n, max(1, Linalg.simdThreads * 4))
        var failures = [String?](repeating: nil, count: blocks)
        result.predictiveEntropy.withUnsafeMutableBufferPointer { total in
            result.expectedEntropy.withUnsafeMutableBufferPointer { expected in
                result.mutualInformation.withUnsafeMutableBufferPointer { mi in
                    result.meanVariance.withUnsafeMutableBufferPointer { variance in
                        result.variationRatio.withUnsafeMutableBufferPointer { ratio in
                            result.mean.withUnsafeMutableBufferPointer { meanOut in
                                failures.withUnsafeMutableBufferPointer { fail in
                                    let out = Outputs(total: total.baseAddress!, expected: expected.baseAddress!, mi: mi.baseAddress!,
                                                      variance: variance.baseAddress!, ratio: ratio.baseAddress!,
                                                      mean: includeMean ? meanOut.baseAddress! : nil)
                                    let failPointer = fail.baseAddress!
                                    Linalg.parallelForEach(blocks) { b in
                                        let lo = b * n / blocks, hi = (b + 1) * n / blocks
                                        failPointer[b] = kernel(pointers, rows: lo..<hi, classes: c, members: m, out: out)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let failure = failures.compactMap({ $0 }).first { throw ReliabilityError.invalidInput(failure) }
        return result
    }

    struct Outputs: @unchecked Sendable {
        let total, expected, mi, variance, ratio: UnsafeMutablePointer<Double>
        let mean: UnsafeMutablePointer<Float>?
    }

    /// Rows `rows` of the decomposition; returns a message for the first invalid row, else nil.
    static func kernel(_ p: [UnsafePointer<Float>], rows: Range<Int>, classes c: Int, members m: Int, out: Outputs) -> String? {
        typealias V = SIMD8<Float>
        let tiny = V(repeating: .leastNormalMagnitude)
        let vectorEnd = c - c % 8
        let sum = UnsafeMutablePointer<Float>.allocate(capacity: c)
        defer { sum.deallocate() }
        let inverseM = 1 / Float(m)
        // On the blas backend with AVX2+FMA the entropy sums run in the C shim's 8-wide FMA kernels;
        // the pure-Swift SIMD path below is the simd backend (and the fallback).
        let avx2 = Backend.default == .blas && Linalg.hasAVX2Kernels
        for i in rows {
            sum.update(repeating: 0, count: c)
            var expected = 0.0, totalH = 0.0, best = 0
            if avx2 {
                for k in 0..<m {
                    let r = Linalg.xlogxAccumulate(p[k] + i * c, into: sum, count: c)
                    if r.invalid { return "member \(k) row \(i) holds a value outside [0, 1] or NaN; pass probabilities, not logits" }
                    if abs(r.total - 1) > 1e-3 { return "member \(k) row \(i) sums to \(r.total), off by \(abs(r.total - 1)) (tolerance 0.001)" }
                    expected -= r.xlogx
                }
                expected /= Double(m)
                totalH = -Linalg.xlogxScale(sum, count: c, scale: inverseM)
            } else {
                for k in 0..<m {
                    let row = p[k] + i * c
                    var h = V(), rowSum = V(), bad = SIMDMask<V.MaskStorage>()
                    var j = 0
                    while j < vectorEnd {
                        let v = UnsafeRawPointer(row + j).loadUnaligned(as: V.self)
                        bad = bad .| (v .< 0) .| (v .> 1) .| (v .!= v)
                        rowSum = rowSum + v
                        h = h + v * Linalg.log8(v.replacing(with: tiny, where: v .< tiny))
                        UnsafeMutableRawPointer(sum + j).storeBytes(of: UnsafeRawPointer(sum + j).loadUnaligned(as: V.self) + v, as: V.self)
                        j += 8
                    }
                    var hs = Double(h.sum()), s = Double(rowSum.sum())
                    while j < c {
                        let v = row[j]
                        if !(v >= 0 && v <= 1) { bad = SIMDMask(repeating: true) }
                        s += Double(v)
                        hs += Double(v) * Double.log(Double(max(v, .leastNormalMagnitude)))
                        sum[j] += v
                        j += 1
                    }
                    if any(bad) { return "member \(k) row \(i) holds a value outside [0, 1] or NaN; pass probabilities, not logits" }
                    if abs(s - 1) > 1e-3 { return "member \(k) row \(i) sums to \(s), off by \(abs(s - 1)) (tolerance 0.001)" }
                    expected -= hs
                }
                expected /= Double(m)
                // Entropy of the mean and its argmax.
                var j = 0
                var hv = V()
                while j < vectorEnd {
                    let mean = UnsafeRawPointer(sum + j).loadUnaligned(as: V.self) * inverseM
                    UnsafeMutableRawPointer(sum + j).storeBytes(of: mean, as: V.self)
                    hv = hv + mean * Linalg.log8(mean.replacing(with: tiny, where: mean .< tiny))
                    j += 8
                }
                totalH = -Double(hv.sum())
                while j < c {
                    sum[j] *= inverseM
                    totalH -= Double(sum[j]) * Double.log(Double(max(sum[j], .leastNormalMagnitude)))
                    j += 1
                }
            }
            for q in 1..<c where sum[q] > sum[best] { best = q }
            if let mean = out.mean { (mean + i * c).update(from: sum, count: c) }
            // Variance across members and disagreement with the ensemble's prediction.
            var variance = 0.0, disagree = 0
            for k in 0..<m {
                let row = p[k] + i * c
                if avx2 {
                    let (squares, memberBest) = Linalg.squaredDifferenceAndArgmax(row, sum, count: c)
                    variance += squares
                    if memberBest != best { disagree += 1 }
                    continue
                }
                var acc = V()
                var q = 0
                while q < vectorEnd {
                    let d = UnsafeRawPointer(row + q).loadUnaligned(as: V.self) - UnsafeRawPointer(sum + q).loadUnaligned(as: V.self)
                    acc = acc + d * d
                    q += 8
                }
                variance += Double(acc.sum())
                while q < c { let d = row[q] - sum[q]; variance += Double(d * d); q += 1 }
                var memberBest = 0
                for q in 1..<c where row[q] > row[memberBest] { memberBest = q }
                if memberBest != best { disagree += 1 }
            }
            let information = totalH - expected
            out.total[i] = totalH
            out.expected[i] = expected
            out.mi[i] = information < 0 && information > -1e-6 ? 0 : information
            out.variance[i] = variance / Double(m * c)
            out.ratio[i] = Double(disagree) / Double(m)
        }
        return nil
    }
}
