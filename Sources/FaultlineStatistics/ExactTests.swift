#if canImport(Glibc)
import Glibc
#endif

/// Exact tests on counts.
public enum ExactTests {
    /// One-sided Fisher exact test that a group's error rate exceeds the rest's: with N samples of which
    /// K are errors, and a group of n samples with k errors, the p-value P(X ≥ k) for X hypergeometric
    /// (N, K, n) — scipy's `hypergeom.sf(k − 1, N, K, n)`, equal to `fisher_exact(…, alternative="greater")`
    /// on the 2×2 table. The first term is a ratio of binomial densities (Loader 2000), the rest follow by
    /// the pmf's ratio recurrence, in Double, summing the tail beyond the mode (the complement when k is
    /// below it): within 1e-11 relative of 40-digit mpmath sums at N = 10⁹ (where SciPy 1.17's hypergeom.sf
    /// is off by 2e-7) and of SciPy for N ≤ 10⁵; time O(√Var X) in practice.
    /// Throws unless 0 ≤ k ≤ n ≤ N, 0 ≤ K ≤ N.
    public static func fisherGreater(groupErrors k: Int, groupSize n: Int, totalErrors K: Int, total N: Int) throws -> Double {
        guard N >= 0, n >= 0, n <= N, K >= 0, K <= N, k >= 0, k <= n else {
            throw StatisticsError.invalidInput("need 0 ≤ k ≤ n ≤ N and 0 ≤ K ≤ N, got k = \(k), n = \(n), K = \(K), N = \(N)")
        }
        let low = max(0, n - (N - K)), high = min(n, K)
        if k <= low { return 1 }
        if k > high { return 0 }
        // The pmf as three binomial densities at p = n/N (Loader's saddle-point form, as R's dhyper), which
        // keeps full relative accuracy where differences of log-Gamma values of 10⁹ would lose five digits.
        let p = Double(n) / Double(N), q = Double(N - n) / Double(N)
        func pmf(_ x: Int) -> Double {
            binomialDensity(x, K, p, q) * binomialDensity(n - x, N - K, p, q) / binomialDensity(n, N, p, q)
        }
        // pmf(x + 1) / pmf(x) = (K − x)(n − x) / ((x + 1)(N − K − n + x + 1))
        func ratio(_ x: Int) -> Double { Double(K - x) * Double(n - x) / (Double(x + 1) * Double(N - K - n + x + 1)) }
        // Sum the tail on the far side of the mode, where the terms fall geometrically, so the loop is short
        // for any N: P(X ≥ k) upwards from k above the mode, else 1 − P(X ≤ k − 1) downwards from k − 1.
        let mode = Int((Double(n + 1) * Double(K + 1) / Double(N + 2)).rounded(.down))
        if k > mode {
            var term = pmf(k), sum = term, x = k
            while x < high && term > sum * 1e-17 {
                term *= ratio(x)
                sum += term
                x += 1
            }
            return min(1, sum)
        }
        var term = pmf(k - 1), sum = term, x = k - 1
        while x > low && term > sum * 1e-17 {
            term /= ratio(x - 1)
            sum += term
            x -= 1
        }
        return min(1, max(0, 1 - sum))
    }

    /// The binomial density C(n, x) pᵡ qⁿ⁻ˣ by Loader's saddle-point expansion (stirlerr and bd0).
    static func binomialDensity(_ x: Int, _ n: Int, _ p: Double, _ q: Double) -> Double {
        if x < 0 || x > n { return 0 }
        if p == 0 { return x == 0 ? 1 : 0 }
        if q == 0 { return x == n ? 1 : 0 }
        if x == 0 { return n == 0 ? 1 : exp(Double(n) * log1p(-p)) }
        if x == n { return exp(Double(n) * log(p)) }
        let nn = Double(n), xx = Double(x)
        let lc = stirlingError(nn) - stirlingError(xx) - stirlingError(nn - xx) - deviance(xx, nn * p) - deviance(nn - xx, nn * q)
        let lf = log(2 * Double.pi) + log(xx) + log1p(-xx / nn)
        return exp(lc - 0.5 * lf)
    }

    /// log(n!) − log(√(2π n) (n/e)ⁿ).
    static func stirlingError(_ n: Double) -> Double {
        if n <= 15 { return lgamma(n + 1) - (n + 0.5) * log(n) + n - 0.5 * log(2 * Double.pi) }
        let s0 = 1.0 / 12, s1 = 1.0 / 360, s2 = 1.0 / 1260, s3 = 1.0 / 1680, s4 = 1.0 / 1188
        let nn = n * n
        if n > 500 { return (s0 - s1 / nn) / n }
        if n > 80 { return (s0 - (s1 - s2 / nn) / nn) / n }
        if n > 35 { return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n }
        return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n
    }

    /// x log(x / m) + m − x, by a series when x is near m.
    static func deviance(_ x: Double, _ m: Double) -> Double {
        if abs(x - m) < 0.1 * (x + m) {
            var v = (x - m) / (x + m)
            var s = (x - m) * v, ej = 2 * x * v
            v *= v
            for j in 1..<1000 {
                ej *= v
                let next = s + ej / Double(2 * j + 1)
                if next == s { return next }
                s = next
            }
            return s
        }
        return x * log(x / m) + m - x
    }
}
