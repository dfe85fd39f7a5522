import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// The uncertainty of an ensemble (or of MC-dropout passes) from the members' class probabilities:
/// predictive entropy (total) = expected member entropy (aleatoric) + mutual information (epistemic,
/// BALD), the mean per-class variance across members, and the members' disagreement.
///
/// Definitions (Benchmarks/WORKLOADS.md W4): p̄ = mean of the M members; var = mean over classes of the population
/// variance (÷ M) across members; H(p) = −Σ p log p with 0·log 0 = 0 (log of max(p, tiny)); MI = H(p̄) −
/// mean_m H(p_m). One pass over the rows: entropies in Double, the mean p̄ accumulated in float32 (so
/// H(p̄) carries float32 rounding, ~1e-7); MI ≥ 0 up to that rounding and is clamped to 0 only when it
/// is negative by less than 1e-6 (a larger negative value is returned as it is: a sign of bad input).
/// Every output is a function of its own row, so results do not depend on the thread count. O(M·N·C)
/// logarithms.
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
    /// than 1e-3; a bad member and row are named, the first in member order within a block of 32 rows). `includeMean: false` skips the N × C mean.
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

    /// One fused pass over blocks of rows (SIMD over classes, the vectorised log, entropies summed in
    /// Double per member row), blocks split across threads. Validation rides along the same pass.
    static func compute(pointers: [UnsafePointer<Float>], rows n: Int, classes c: Int, includeMean: Bool) throws -> EnsembleUncertainty {
        let m = pointers.count
        guard n > 0, c > 0 else { throw ReliabilityError.invalidInput("empty ensemble output (\(n)×\(c))") }
        var result = EnsembleUncertainty(predictiveEntropy: .init(repeating: 0, count: n), expectedEntropy: .init(repeating: 0, count: n),
                                         mutualInformation: .init(repeating: 0, count: n), meanVariance: .init(repeating: 0, count: n),
                                         variationRatio: .init(repeating: 0, count: n),
                                         mean: includeMean ? Matrix(uninitializedRows: n, columns: c) : Matrix(rows: 0, columns: c))
        let blocks = min(n, Linalg.reductionParts)
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
                                        failPointer[b] = kernel(pointers, rows: Linalg.partition(n, parts: blocks, part: b), classes: c, members: m, out: out)
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

    /// Rows `rows` of the decomposition in blocks of `blockRows` rows, member by member inside a block:
    /// each member contributes one contiguous run of rows (a prefetcher-friendly stream) to the block's
    /// Σ p (kept in L1) and entropies; the variance pass then re-reads the block from cache. Returns a
    /// message for the first invalid row, else nil.
    static func kernel(_ p: [UnsafePointer<Float>], rows: Range<Int>, classes c: Int, members m: Int, out: Outputs) -> String? {
        let blockRows = 32
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * c)
        defer { sums.deallocate() }
        // On the blas backend with AVX2+FMA the row primitives run in the C shim's 8-wide FMA kernels;
        // the pure-Swift SIMD versions are the simd backend (and the fallback).
        let ops: RowOperations = Backend.default == .blas && Linalg.hasAVX2Kernels ? .avx2 : .swift
        let inverseM = 1 / Float(m)
        var expected = [Double](repeating: 0, count: blockRows), best = [Int](repeating: 0, count: blockRows)
        var variance = [Double](repeating: 0, count: blockRows), disagree = [Int](repeating: 0, count: blockRows)
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
            let count = min(blockRows, rows.upperBound - start)
            sums.update(repeating: 0, count: count * c)
            for t in 0..<count { expected[t] = 0; variance[t] = 0; disagree[t] = 0 }
            for k in 0..<m {
                for t in 0..<count {
                    let r = ops.accumulateEntropy(p[k] + (start + t) * c, into: sums + t * c, count: c)
                    if r.invalid { return "member \(k) row \(start + t) holds a value outside [0, 1] or NaN; pass probabilities, not logits" }
                    if abs(r.total - 1) > 1e-3 { return "member \(k) row \(start + t) sums to \(r.total), off by \(abs(r.total - 1)) (tolerance 0.001)" }
                    expected[t] -= r.xlogx
                }
            }
            for t in 0..<count {
                let i = start + t, mean = sums + t * c
                let totalH = -ops.scaleAndEntropy(mean, count: c, scale: inverseM)
                var top = 0
                for q in 1..<c where mean[q] > mean[top] { top = q }
                best[t] = top
                if let meanOut = out.mean { (meanOut + i * c).update(from: mean, count: c) }
                out.total[i] = totalH
                out.expected[i] = expected[t] / Double(m)
            }
            // Variance across members and disagreement with the ensemble's prediction.
            for k in 0..<m {
                for t in 0..<count {
                    let (squares, memberBest) = ops.squaredDifferenceAndArgmax(p[k] + (start + t) * c, sums + t * c, count: c)
                    variance[t] += squares
                    if memberBest != best[t] { disagree[t] += 1 }
                }
            }
            for t in 0..<count {
                let i = start + t
                let information = out.total[i] - out.expected[i]
                out.mi[i] = information < 0 && information > -1e-6 ? 0 : information
                out.variance[i] = variance[t] / Double(m * c)
                out.ratio[i] = Double(disagree[t]) / Double(m)
            }
        }
        return nil
    }

    /// The three row primitives of the kernel, in the C shim's AVX2 kernels or in Swift SIMD.
    enum RowOperations {
        case avx2, swift
        typealias V = SIMD8<Float>

        /// Σ p log max(p, tiny) and Σ p of one member row, which is added into `sum`; `invalid` for
        /// values outside [0, 1] or NaN.
        func accumulateEntropy(_ row: UnsafePointer<Float>, into sum: UnsafeMutablePointer<Float>, count c: Int) -> (xlogx: Double, total: Double, invalid: Bool) {
            if self == .avx2 { return Linalg.xlogxAccumulate(row, into: sum, count: c) }
            let tiny = V(repeating: .leastNormalMagnitude), vectorEnd = c - c % 8
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
            var hs = Double(h.sum()), s = Double(rowSum.sum()), invalid = any(bad)
            while j < c {
                let v = row[j]
                if !(v >= 0 && v <= 1) { invalid = true }
                s += Double(v)
                hs += Double(v) * Double.log(Double(max(v, .leastNormalMagnitude)))
                sum[j] += v
                j += 1
            }
            return (hs, s, invalid)
        }

        /// Scales `values` in place and returns Σ v log max(v, tiny) of the scaled values.
        func scaleAndEntropy(_ values: UnsafeMutablePointer<Float>, count c: Int, scale: Float) -> Double {
            if self == .avx2 { return Linalg.xlogxScale(values, count: c, scale: scale) }
            let tiny = V(repeating: .leastNormalMagnitude), vectorEnd = c - c % 8
            var j = 0, hv = V()
            while j < vectorEnd {
                let v = UnsafeRawPointer(values + j).loadUnaligned(as: V.self) * scale
                UnsafeMutableRawPointer(values + j).storeBytes(of: v, as: V.self)
                hv = hv + v * Linalg.log8(v.replacing(with: tiny, where: v .< tiny))
                j += 8
            }
            var h = Double(hv.sum())
            while j < c {
                values[j] *= scale
                h += Double(values[j]) * Double.log(Double(max(values[j], .leastNormalMagnitude)))
                j += 1
            }
            return h
        }

        /// Σ (row − mean)² and the first argmax of the row.
        func squaredDifferenceAndArgmax(_ row: UnsafePointer<Float>, _ mean: UnsafePointer<Float>, count c: Int) -> (Double, Int) {
            if self == .avx2 {
                let r = Linalg.squaredDifferenceAndArgmax(row, mean, count: c)
                return (r.squaredDifference, r.argmax)
            }
            let vectorEnd = c - c % 8
            var acc = V(), q = 0
            while q < vectorEnd {
                let d = UnsafeRawPointer(row + q).loadUnaligned(as: V.self) - UnsafeRawPointer(mean + q).loadUnaligned(as: V.self)
                acc = acc + d * d
                q += 8
            }
            var squares = Double(acc.sum())
            while q < c { let d = row[q] - mean[q]; squares += Double(d * d); q += 1 }
            var top = 0
            for j in 1..<c where row[j] > row[top] { top = j }
            return (squares, top)
        }
    }
}
