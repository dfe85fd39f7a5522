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
///
/// Accuracy against float64 (tested): on the avx2 and avx512 tiers the logarithm is table-driven, |error| ≤
/// 1.5e-7·max(1, |ln p|), so each entropy is off by ≤ 1.5e-7·(1 + H) + float32 summation (~1e-7·C/16
/// relative), and |MI − MI₆₄| ≤ 2·(1.5e-7·(1 + ln C)) + the float32 rounding of p̄ ≈ 1e-6 for C ≤ 1000
/// (W4, C = 100: measured max |err| in `faultline bench ensemble`). The variance comes from the same
/// single read of each member row: var = (Σₘ Σⱼ (pₘⱼ − aⱼ)² − M·Σⱼ (p̄ⱼ − aⱼ)²)/(M·C) with the anchor a =
/// member 0's row, which cancels only on the members' spread (not on Σ p²), clamped at 0.
public struct EnsembleUncertainty: Sendable {
    /// Per sample.
    public var predictiveEntropy: [Double]
    /// Expected member entropy mean_m H(p_m): the aleatoric part.
    public var expectedEntropy: [Double]
    /// H(p̄) − mean_m H(p_m): the epistemic part (BALD), ≥ 0 up to float32 rounding.
    public var mutualInformation: [Double]
    /// The population variance across members, averaged over classes.
    public var meanVariance: [Double]
    /// Share of members whose argmax differs from the argmax of the mean (the variation ratio).
    public var variationRatio: [Double]
    /// The class of the largest mean probability per sample (first on ties), kept also without the mean.
    public var prediction: [Int]
    /// The mean probabilities (N × C; 0 × C when computed with `includeMean: false`).
    public var mean: Matrix<Float>

    /// Throws `ReliabilityError` for no members, members of different shapes (naming the member), or
    /// rows that are not probability vectors (values outside [0, 1] or NaN, or a row sum off by more
    /// than 1e-3; a bad member and row are named: the first bad row, and its first bad member, on every tier).
    /// `includeMean: false` skips the N × C mean. `backend` selects the row kernels' tier
    /// (`Linalg.kernelTier`): reference, simd, or the C shim's AVX2/AVX-512 kernels on blas.
    public static func compute(members: [Matrix<Float>], includeMean: Bool = true, backend: Backend? = nil) throws -> EnsembleUncertainty {
        guard let first = members.first else { throw ReliabilityError.invalidInput("no ensemble members") }
        for (k, p) in members.enumerated() where p.rows != first.rows || p.columns != first.columns {
            throw ReliabilityError.invalidInput("member \(k) is \(p.rows)×\(p.columns), member 0 is \(first.rows)×\(first.columns)")
        }
        return try withExtendedLifetime(members) {
            try compute(pointers: members.map { m in m.withUnsafeBufferPointer { $0.baseAddress! } },
                        rows: first.rows, classes: first.columns, includeMean: includeMean, backend: backend)
        }
    }

    /// The same on an explicit tier of the row kernels (`Linalg.KernelTier`, stepped down to what the CPU
    /// runs): for comparing the tiers side by side.
    public static func compute(members: [Matrix<Float>], includeMean: Bool = true, tier: Linalg.KernelTier) throws -> EnsembleUncertainty {
        guard let first = members.first else { throw ReliabilityError.invalidInput("no ensemble members") }
        for (k, p) in members.enumerated() where p.rows != first.rows || p.columns != first.columns {
            throw ReliabilityError.invalidInput("member \(k) is \(p.rows)×\(p.columns), member 0 is \(first.rows)×\(first.columns)")
        }
        return try withExtendedLifetime(members) {
            try compute(pointers: members.map { m in m.withUnsafeBufferPointer { $0.baseAddress! } },
                        rows: first.rows, classes: first.columns, includeMean: includeMean, tier: Linalg.runnable(tier))
        }
    }

    /// The same from one contiguous array of M member blocks, each N × C row-major (the [M, N, C]
    /// layout of a stacked `.npy`, e.g. read with `NPY.readMatrix` as M × (N·C)), without copying.
    public static func compute(stacked: Matrix<Float>, members m: Int, classes c: Int, includeMean: Bool = true,
                               backend: Backend? = nil) throws -> EnsembleUncertainty {
        guard m > 0, c > 0, stacked.count % (m * c) == 0 else {
            throw ReliabilityError.invalidInput("\(stacked.count) values do not split into \(m) members of rows of \(c) classes")
        }
        let n = stacked.count / (m * c)
        return try stacked.withUnsafeBufferPointer { base in
            try compute(pointers: (0..<m).map { base.baseAddress! + $0 * n * c }, rows: n, classes: c, includeMean: includeMean, backend: backend)
        }
    }

    /// One fused pass over blocks of rows (SIMD over classes, the vectorised log, entropies summed in
    /// Double per member row), blocks split across threads. Validation rides along the same pass.
    static func compute(pointers: [UnsafePointer<Float>], rows n: Int, classes c: Int, includeMean: Bool, backend: Backend?) throws -> EnsembleUncertainty {
        try compute(pointers: pointers, rows: n, classes: c, includeMean: includeMean, tier: Linalg.kernelTier(backend))
    }

    static func compute(pointers: [UnsafePointer<Float>], rows n: Int, classes c: Int, includeMean: Bool, tier: Linalg.KernelTier) throws -> EnsembleUncertainty {
        let m = pointers.count
        guard n > 0, c > 0 else { throw ReliabilityError.invalidInput("empty ensemble output (\(n)×\(c))") }
        var result = EnsembleUncertainty(predictiveEntropy: .init(repeating: 0, count: n), expectedEntropy: .init(repeating: 0, count: n),
                                         mutualInformation: .init(repeating: 0, count: n), meanVariance: .init(repeating: 0, count: n),
                                         variationRatio: .init(repeating: 0, count: n), prediction: .init(repeating: 0, count: n),
                                         mean: includeMean ? Matrix(uninitializedRows: n, columns: c) : Matrix(rows: 0, columns: c))
        let blocks = min(n, Linalg.reductionParts)
        var failures = [String?](repeating: nil, count: blocks)
        result.predictiveEntropy.withUnsafeMutableBufferPointer { total in
            result.expectedEntropy.withUnsafeMutableBufferPointer { expected in
                result.mutualInformation.withUnsafeMutableBufferPointer { mi in
                    result.meanVariance.withUnsafeMutableBufferPointer { variance in
                        result.variationRatio.withUnsafeMutableBufferPointer { ratio in
                            result.prediction.withUnsafeMutableBufferPointer { predictionOut in
                            result.mean.withUnsafeMutableBufferPointer { meanOut in
                                failures.withUnsafeMutableBufferPointer { fail in
                                    let out = Outputs(total: total.baseAddress!, expected: expected.baseAddress!, mi: mi.baseAddress!,
                                                      variance: variance.baseAddress!, ratio: ratio.baseAddress!, prediction: predictionOut.baseAddress!,
                                                      mean: includeMean ? meanOut.baseAddress! : nil)
                                    let failPointer = fail.baseAddress!
                                    Linalg.parallelForEach(blocks) { b in
                                        failPointer[b] = kernel(pointers, rows: Linalg.partition(n, parts: blocks, part: b), classes: c, members: m, out: out, tier: tier)
                                    }
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
        let prediction: UnsafeMutablePointer<Int>
        let mean: UnsafeMutablePointer<Float>?
    }

    /// Rows `rows` of the decomposition in one read of each member row (the simd and C tiers): one
    /// `Linalg.ensembleSample` per row (every member row, then the mean row, in one call: Σ p ln p, Σ p
    /// and validation, the spread about member 0's row, each member's argmax, the mean written straight
    /// into the output). The rows are walked in order, M member streams side by side, each prefetched
    /// ahead by the kernel. Returns a message for the first invalid row (its first bad member), else
    /// nil. The reference tier runs `kernelTwoPass`, the textbook variance about the mean.
    static func kernel(_ p: [UnsafePointer<Float>], rows: Range<Int>, classes c: Int, members m: Int, out: Outputs, tier: Linalg.KernelTier) -> String? {
        if tier == .reference { return kernelTwoPass(p, rows: rows, classes: c, members: m, out: out, tier: tier) }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: c)
        let best = UnsafeMutablePointer<Int>.allocate(capacity: m + 1)
        defer { scratch.deallocate(); best.deallocate() }
        let inverseM = 1 / Float(m)
        return p.withUnsafeBufferPointer { members -> String? in
            for i in rows {
                let mean = out.mean.map { $0 + i * c } ?? scratch
                let r = Linalg.ensembleSample(members.baseAddress!, memberCount: m, offset: i * c, count: c, scale: inverseM,
                                              mean: mean, argmax: best, tier: tier)
                if let f = r.failure { return badRowMessage(member: f.member, row: i, total: f.total, invalid: f.invalid) }
                let prediction = best[m]
                out.prediction[i] = prediction
                let totalH = -r.meanXlogx, expectedH = -r.xlogx / Double(m)
                out.total[i] = totalH
                out.expected[i] = expectedH
                let information = totalH - expectedH
                out.mi[i] = information < 0 && information > -1e-6 ? 0 : information
                out.variance[i] = max(r.spread - Double(m) * r.meanSpread, 0) / Double(m * c)
                var disagree = 0
                for k in 0..<m where best[k] != prediction { disagree += 1 }
                out.ratio[i] = Double(disagree) / Double(m)
            }
            return nil
        }
    }

    /// The error for member `member`'s row `row`: a value outside [0, 1] or NaN, else a sum off by more
    /// than `Linalg.ensembleSumTolerance`.
    static func badRowMessage(member: Int, row: Int, total: Double, invalid: Bool) -> String {
        invalid
            ? "member \(member) row \(row) holds a value outside [0, 1] or NaN; pass probabilities, not logits"
            : "member \(member) row \(row) sums to \(total), off by \(abs(total - 1)) (tolerance \(Linalg.ensembleSumTolerance))"
    }

    /// The two-pass form (the reference tier): rows `rows` in blocks of `blockRows` rows, member by member inside a block:
    /// each member contributes one contiguous run of rows (a prefetcher-friendly stream) to the block's
    /// Σ p (kept in L1) and entropies; the variance pass then re-reads the block from cache. Returns a
    /// message for the first invalid row (its first bad member), else nil.
    static func kernelTwoPass(_ p: [UnsafePointer<Float>], rows: Range<Int>, classes c: Int, members m: Int, out: Outputs, tier: Linalg.KernelTier) -> String? {
        let blockRows = 32
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * c)
        defer { sums.deallocate() }
        let inverseM = 1 / Float(m)
        var expected = [Double](repeating: 0, count: blockRows), best = [Int](repeating: 0, count: blockRows)
        var variance = [Double](repeating: 0, count: blockRows), disagree = [Int](repeating: 0, count: blockRows)
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
            let count = min(blockRows, rows.upperBound - start)
            sums.update(repeating: 0, count: count * c)
            for t in 0..<count { expected[t] = 0; variance[t] = 0; disagree[t] = 0 }
            // Validation reports the first bad row of the block and its first bad member, as the one-pass
            // tiers do (members are walked outside rows here, so the block is finished first).
            var firstBad: (row: Int, message: String)?
            for k in 0..<m {
                for t in 0..<count {
                    let r = Linalg.xlogxAccumulate(p[k] + (start + t) * c, into: sums + t * c, count: c, tier: tier)
                    if r.invalid || abs(r.total - 1) > Linalg.ensembleSumTolerance, firstBad.map({ start + t < $0.row }) ?? true {
                        firstBad = (start + t, badRowMessage(member: k, row: start + t, total: r.total, invalid: r.invalid))
                    }
                    expected[t] -= r.xlogx
                }
            }
            if let firstBad { return firstBad.message }
            for t in 0..<count {
                let i = start + t, mean = sums + t * c
                let totalH = -Linalg.xlogxScale(mean, count: c, scale: inverseM, tier: tier)
                var top = 0
                for q in 1..<c where mean[q] > mean[top] { top = q }
                best[t] = top
                out.prediction[i] = top
                if let meanOut = out.mean { (meanOut + i * c).update(from: mean, count: c) }
                out.total[i] = totalH
                out.expected[i] = expected[t] / Double(m)
            }
            // Variance across members and disagreement with the ensemble's prediction.
            for k in 0..<m {
                for t in 0..<count {
                    let (squares, memberBest) = Linalg.squaredDifferenceAndArgmax(p[k] + (start + t) * c, sums + t * c, count: c, tier: tier)
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
}

extension EnsembleUncertainty {
    /// Means of the per-sample measures over a group of samples (all, the correct ones, the wrong ones…).
    public struct Summary: Codable, Equatable, Sendable {
        /// Samples in the group.
        public var samples: Int
        /// Mean predictive entropy (total).
        public var entropy: Double
        /// Mean expected entropy (aleatoric).
        public var aleatoric: Double
        /// Mean mutual information (epistemic).
        public var epistemic: Double
        /// Mean of the mean variance.
        public var variance: Double
        /// Mean variation ratio.
        public var variationRatio: Double
    }

    /// The mean of each measure over `rows` (indices into the samples; all zero for an empty group), summed
    /// in Double in the order given. O(|rows|).
    public func summary(of rows: [Int]) -> Summary {
        func mean(_ v: [Double]) -> Double { rows.isEmpty ? 0 : rows.reduce(0) { $0 + v[$1] } / Double(rows.count) }
        return Summary(samples: rows.count, entropy: mean(predictiveEntropy), aleatoric: mean(expectedEntropy), epistemic: mean(mutualInformation),
                       variance: mean(meanVariance), variationRatio: mean(variationRatio))
    }
}
