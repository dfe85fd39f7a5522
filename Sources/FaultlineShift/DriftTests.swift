import FaultlineLinalg
import FaultlineStatistics

/// Univariate two-sample drift tests and their multiple-testing corrections, as alibi-detect applies
/// them: a Kolmogorov–Smirnov test per feature, a chi-square test on predicted labels, and the
/// Bonferroni or Benjamini–Hochberg decision over features.
public enum DriftTests {
    /// A test statistic and its p-value.
    public struct TestResult: Sendable, Codable, Equatable {
        /// The statistic (KS: D = sup |F₁ − F₂|; χ²: Pearson's).
        public var statistic: Double
        /// The p-value under the null of no drift.
        public var pValue: Double
    }

    /// Where the p-value of the two-sample KS test comes from.
    public enum KolmogorovSmirnovMethod: String, Sendable, Codable, CaseIterable {
        /// SciPy's `ks_2samp` default: `exact` when both samples have at most 10,000 values, else `asymptotic`.
        case auto
        /// The exact null distribution of D_{m,n} (`ks_2samp(method="exact")`).
        case exact
        /// The one-sample finite-n distribution at n = round(m·n/(m+n)), `kstwo.sf(D, n)`
        /// (`ks_2samp(method="asymp")`, what alibi-detect's KSDrift calls).
        case asymptotic
        /// Kolmogorov's limit P(K > √(m·n/(m+n))·D) (`kstwobign`; SciPy before 1.5).
        case limiting
    }

    /// Two-sided two-sample KS test: D = sup |F₁ − F₂| computed exactly in integers (ties handled as
    /// SciPy: both empirical CDFs evaluated at every observed value; D = h / lcm(m, n)), and its p-value
    /// by `method` (default SciPy's `auto`; see `KolmogorovSmirnovMethod`). Equal to `ks_2samp` to
    /// ~1e-12 (statistic) and ~1e-10 (p, where SciPy uses exact methods). O((m + n) log(m + n)) plus the
    /// p-value (exact: O(2·h·gcd(m, n)) lattice cells). Throws for empty or non-finite samples.
    public static func kolmogorovSmirnov(_ a: [Double], _ b: [Double], method: KolmogorovSmirnovMethod = .auto) throws -> TestResult {
        guard !a.isEmpty, !b.isEmpty else { throw ShiftError.invalidInput("KS needs two non-empty samples") }
        guard a.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else { throw ShiftError.invalidInput("KS samples contain NaN or infinite values") }
        return kolmogorovSmirnovOfSorted(a.sorted(), b.sorted(), method: method)
    }

    /// The KS statistic and p-value of two non-empty samples sorted ascending: the one kernel behind
    /// `kolmogorovSmirnov` (which sorts first) and `kolmogorovSmirnovSorted` (saved references).
    static func kolmogorovSmirnovOfSorted<C: RandomAccessCollection>(_ x: C, _ y: C, method: KolmogorovSmirnovMethod) -> TestResult
        where C.Element: BinaryFloatingPoint, C.Index == Int {
        let n1 = x.count, n2 = y.count
        var g = n1, r = n2
        while r != 0 { (g, r) = (r, g % r) }
        let step1 = n2 / g, step2 = n1 / g  // i/n1 − j/n2 = (i·step1 − j·step2) / lcm
        var i = 0, j = 0, h = 0
        while i < n1 || j < n2 {
            let v = min(i < n1 ? x[x.startIndex + i] : .infinity, j < n2 ? y[y.startIndex + j] : .infinity)
            while i < n1 && x[x.startIndex + i] == v { i += 1 }
            while j < n2 && y[y.startIndex + j] == v { j += 1 }
            h = max(h, abs(i * step1 - j * step2))
        }
        let lcm = Double(step2) * Double(n2), d = Double(h) / lcm
        let resolved: KolmogorovSmirnovMethod = method == .auto ? (max(n1, n2) <= 10_000 ? .exact : .asymptotic) : method
        let (larger, smaller) = (Double(max(n1, n2)), Double(min(n1, n2)))
        let effective = larger * smaller / (larger + smaller)
        let p: Double
        switch resolved {
        case .exact: p = Distributions.twoSampleKolmogorovSurvival(n1, n2, h: h)
        case .asymptotic: p = Distributions.kolmogorovSurvival(n: max(1, Int(effective.rounded(.toNearestOrEven))), x: d)
        case .limiting, .auto: p = Distributions.kolmogorovSurvival(effective.squareRoot() * d)
        }
        return TestResult(statistic: d, pValue: p)
    }

    /// KS per column of two feature matrices (columns must agree). The columns are gathered 8 at a time in
    /// one pass over the rows (a cache line of each row serves 8 columns, instead of one strided pass per
    /// column) as float32 (the statistic depends only on the order and ties of the values, which float32
    /// keeps exactly) and sorted in place, so the extra memory is 8 float32 columns of each sample and the
    /// traffic D/8 passes; the 8 tests of a group run as parallel tasks (each column's result is its own:
    /// independent of the thread count). Throws as `kolmogorovSmirnov(_:_:method:)` for a column.
    public static func kolmogorovSmirnov(reference: Matrix<Float>, test: Matrix<Float>, method: KolmogorovSmirnovMethod = .auto) throws -> [TestResult] {
        guard reference.columns == test.columns else {
            throw ShiftError.invalidInput("reference has \(reference.columns) features, test \(test.columns)")
        }
        /// Columns first..<first + count of m.
        func columns(_ m: Matrix<Float>, _ first: Int, _ count: Int) -> [[Float]] {
            var out = [[Float]](repeating: [], count: count)
            for k in 0..<count { out[k].reserveCapacity(m.rows) }
            m.withUnsafeBufferPointer { p in
                for i in 0..<m.rows {
                    let row = p.baseAddress! + i * m.columns + first
                    for k in 0..<count { out[k].append(row[k]) }
                }
            }
            return out
        }
        var results: [TestResult] = []
        results.reserveCapacity(reference.columns)
        for first in stride(from: 0, to: reference.columns, by: 8) {
            let count = min(8, reference.columns - first)
            var a = columns(reference, first, count), b = columns(test, first, count)
            // The columns of a group are independent tests (a sort in place and a p-value each): one task per column.
            var group = [Result<TestResult, Error>](repeating: .success(TestResult(statistic: 0, pValue: 1)), count: count)
            group.withUnsafeMutableBufferPointer { out in
                a.withUnsafeMutableBufferPointer { pa in
                    b.withUnsafeMutableBufferPointer { pb in
                        let (slots, x, y) = (UncheckedPointer(out.baseAddress!), UncheckedPointer(pa.baseAddress!), UncheckedPointer(pb.baseAddress!))
                        Linalg.parallelForEach(count) { k in
                            slots.value[k] = Result {
                                guard !x.value[k].isEmpty, !y.value[k].isEmpty else { throw ShiftError.invalidInput("KS needs two non-empty samples") }
                                guard x.value[k].allSatisfy(\.isFinite), y.value[k].allSatisfy(\.isFinite) else {
                                    throw ShiftError.invalidInput("KS samples contain NaN or infinite values")
                                }
                                x.value[k].sort()
                                y.value[k].sort()
                                return kolmogorovSmirnovOfSorted(x.value[k], y.value[k], method: method)
                            }
                        }
                    }
                }
            }
            for r in group { results.append(try r.get()) }
        }
        return results
    }

    /// Pearson chi-square test of homogeneity on the 2 × K table of label counts (reference vs test),
    /// over the K classes seen in either sample; Yates' continuity correction when K = 2 (scipy's
    /// `chi2_contingency` default). Throws for empty samples or labels outside 0..<classes.
    public static func chiSquare(reference: [Int], test: [Int], classes: Int) throws -> TestResult {
        guard !reference.isEmpty, !test.isEmpty else { throw ShiftError.invalidInput("chi-square needs two non-empty label samples") }
        guard (reference + test).allSatisfy({ $0 >= 0 && $0 < classes }) else { throw ShiftError.invalidInput("a label lies outside 0..<\(classes)") }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: 2)
        for y in reference { counts[0][y] += 1 }
        for y in test { counts[1][y] += 1 }
        return chiSquare(counts: counts)
    }

    /// `chiSquare(reference:test:classes:)` from the 2 × K table of label counts (row 0 the reference, row 1
    /// the test; both rows non-empty): the one kernel behind it and `DistributedDrift.chiSquare`, whose
    /// counts are sums over ranks, so the two give the same statistic bit for bit.
    static func chiSquare(counts integers: [[Int]]) -> TestResult {
        let classes = integers[0].count
        let counts = integers.map { $0.map(Double.init) }
        let seen = (0..<classes).filter { counts[0][$0] + counts[1][$0] > 0 }
        guard seen.count >= 2 else { return TestResult(statistic: 0, pValue: 1) }
        let rowTotals = counts.map { row in seen.reduce(0) { $0 + row[$1] } }, total = rowTotals[0] + rowTotals[1]
        var statistic = 0.0
        for r in 0..<2 {
            for c in seen {
                let expected = rowTotals[r] * (counts[0][c] + counts[1][c]) / total
                var difference = abs(counts[r][c] - expected)
                if seen.count == 2 { difference = max(0, difference - 0.5) }
                statistic += difference * difference / expected
            }
        }
        return TestResult(statistic: statistic, pValue: Distributions.chiSquaredSurvival(statistic, degreesOfFreedom: seen.count - 1))
    }

    /// How the per-feature p-values are combined into a decision at α.
    public enum Correction: String, Sendable, Codable {
        /// Drift if any p < α/F.
        case bonferroni
        /// Benjamini–Hochberg at false-discovery rate α: drift if any sorted p₍ᵢ₎ < α·i/F (strict, as alibi-detect).
        case benjaminiHochberg = "fdr"
    }

    /// The features (indices into `pValues`, ascending) whose null hypothesis the correction rejects at α:
    /// Bonferroni, p < α/F; Benjamini–Hochberg, the step-up rule — with p₍₁₎ ≤ … ≤ p₍F₎ and k the largest i
    /// with p₍ᵢ₎ < α·i/F (strict, as `drift`), the k smallest p-values (ties at p₍ₖ₎ included). Non-empty
    /// exactly when `drift` says drift. O(F log F).
    public static func rejected(pValues: [Double], alpha: Double = 0.05, correction: Correction = .benjaminiHochberg) -> [Int] {
        let f = Double(pValues.count)
        switch correction {
        case .bonferroni:
            return pValues.indices.filter { pValues[$0] < alpha / f }
        case .benjaminiHochberg:
            let sorted = pValues.sorted()
            guard let k = sorted.indices.last(where: { sorted[$0] < alpha * Double($0 + 1) / f }) else { return [] }
            return pValues.indices.filter { pValues[$0] <= sorted[k] }
        }
    }

    /// Whether the per-feature p-values signal drift at level α under the correction.
    public static func drift(pValues: [Double], alpha: Double = 0.05, correction: Correction = .bonferroni) -> Bool {
        let f = Double(pValues.count)
        switch correction {
        case .bonferroni:
            return pValues.contains { $0 < alpha / f }
        case .benjaminiHochberg:
            return pValues.sorted().enumerated().contains { $0.element < alpha * Double($0.offset + 1) / f }
        }
    }
}

/// Has a set of feature vectors drifted from a reference? MMD² with a permutation test (when
/// `permutations` > 0) and a two-sample KS test per feature with Bonferroni and Benjamini–Hochberg
/// decisions at α (`faultline drift`). Drift is declared when the MMD p-value is below α or the
/// Bonferroni-corrected KS test rejects. Cost: MMD's O((N + M)²·d) per permutation pass plus the KS
/// tests' O(d·(N + M) log(N + M)). Errors: those of `MMDTest.run` and `DriftTests.kolmogorovSmirnov`
/// (different widths, empty sets, non-finite values).
public struct FeatureDrift: Codable, Sendable {
    /// The MMD test, its permutation null dropped (nil without permutations).
    public var mmd: MMDTest.Result?
    /// KS statistic of each feature.
    public var ksStatistics: [Double]
    /// KS p-value of each feature (SciPy's `ks_2samp` convention, `ksMethod`).
    public var ksPValues: [Double]
    /// Whether any feature's p-value is below α / features.
    public var ksDriftBonferroni: Bool
    /// Whether the Benjamini–Hochberg procedure rejects any feature at α.
    public var ksDriftFDR: Bool
    /// The features (column indices) the Benjamini–Hochberg procedure finds drifted at α.
    public var driftedFeatures: [Int]
    /// The decision: MMD's p-value below α, or the Bonferroni-corrected KS test rejects.
    public var drift: Bool

    /// Runs the KS tests per feature and, with `permutations` > 0, the MMD permutation test (seeded by `seed`). Throws what `MMDTest.run` and `DriftTests.kolmogorovSmirnov` throw.
    public init(reference a: Matrix<Float>, current b: Matrix<Float>, alpha: Double = 0.05, ksMethod: DriftTests.KolmogorovSmirnovMethod = .auto,
                permutations: Int = 0, seed: UInt64 = 0, estimator: MMDTest.Estimator = .unbiased) throws {
        var mmd: MMDTest.Result?
        if permutations > 0 {
            var m = try MMDTest.run(a, b, count: permutations, seed: seed, estimator: estimator)
            m.null = []
            mmd = m
        }
        let ks = try DriftTests.kolmogorovSmirnov(reference: a, test: b, method: ksMethod)
        self.init(mmd: mmd, ks: ks, alpha: alpha)
    }
}
