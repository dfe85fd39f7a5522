import FaultlineLinalg
import FaultlineReliability

/// Univariate two-sample drift tests and their multiple-testing corrections, as alibi-detect applies
/// them: a Kolmogorov–Smirnov test per feature, a chi-square test on predicted labels, and the
/// Bonferroni or Benjamini–Hochberg decision over features.
public enum DriftTests {
    public struct TestResult: Sendable, Codable, Equatable {
        public var statistic: Double
        public var pValue: Double
    }

    /// Two-sided two-sample KS statistic D = sup |F₁ − F₂| (exact, ties handled as scipy: both
    /// empirical CDFs evaluated at every observed value) and its p-value from the Kolmogorov limiting
    /// distribution, P(K > √(n·m/(n+m))·D) — scipy's `ks_2samp(mode="asymp")` before SciPy 1.5 and
    /// `kstwobign.sf`. (Current SciPy uses the finite-n distribution `kstwo` in asymp mode; the two
    /// differ by O(1/√n).) O((n + m) log(n + m)). Throws for empty or non-finite samples.
    public static func kolmogorovSmirnov(_ a: [Double], _ b: [Double]) throws -> TestResult {
        guard !a.isEmpty, !b.isEmpty else { throw ShiftError.invalidInput("KS needs two non-empty samples") }
        guard a.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else { throw ShiftError.invalidInput("KS samples contain NaN or infinite values") }
        let x = a.sorted(), y = b.sorted()
        let n = Double(x.count), m = Double(y.count)
        var i = 0, j = 0, d = 0.0
        while i < x.count || j < y.count {
            let v = min(i < x.count ? x[i] : .infinity, j < y.count ? y[j] : .infinity)
            while i < x.count && x[i] == v { i += 1 }
            while j < y.count && y[j] == v { j += 1 }
            d = max(d, abs(Double(i) / n - Double(j) / m))
        }
        let en = n * m / (n + m)
        return TestResult(statistic: d, pValue: Distributions.kolmogorovSurvival(en.squareRoot() * d))
    }

    /// KS per column of two feature matrices (columns must agree).
    public static func kolmogorovSmirnov(reference: Matrix<Float>, test: Matrix<Float>) throws -> [TestResult] {
        guard reference.columns == test.columns else {
            throw ShiftError.invalidInput("reference has \(reference.columns) features, test \(test.columns)")
        }
        return try (0..<reference.columns).map { c in
            try kolmogorovSmirnov((0..<reference.rows).map { Double(reference[$0, c]) }, (0..<test.rows).map { Double(test[$0, c]) })
        }
    }

    /// Pearson chi-square test of homogeneity on the 2 × K table of label counts (reference vs test),
    /// over the K classes seen in either sample; Yates' continuity correction when K = 2 (scipy's
    /// `chi2_contingency` default). Throws for empty samples or labels outside 0..<classes.
    public static func chiSquare(reference: [Int], test: [Int], classes: Int) throws -> TestResult {
        guard !reference.isEmpty, !test.isEmpty else { throw ShiftError.invalidInput("chi-square needs two non-empty label samples") }
        guard (reference + test).allSatisfy({ $0 >= 0 && $0 < classes }) else { throw ShiftError.invalidInput("a label lies outside 0..<\(classes)") }
        var counts = [[Double]](repeating: [Double](repeating: 0, count: classes), count: 2)
        for y in reference { counts[0][y] += 1 }
        for y in test { counts[1][y] += 1 }
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

    public enum Correction: String, Sendable, Codable {
        /// Drift if any p < α/F.
        case bonferroni
        /// Benjamini–Hochberg at false-discovery rate α: drift if any sorted p₍ᵢ₎ < α·i/F (strict, as alibi-detect).
        case benjaminiHochberg = "fdr"
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
