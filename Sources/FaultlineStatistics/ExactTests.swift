#if canImport(Glibc)
import Glibc
#endif

/// Exact tests on counts.
public enum ExactTests {
    /// One-sided Fisher exact test that a group's error rate exceeds the rest's: with N samples of which
    /// K are errors, and a group of n samples with k errors, the p-value P(X ≥ k) for X hypergeometric
    /// (N, K, n) — scipy's `hypergeom.sf(k − 1, N, K, n)`, equal to `fisher_exact(…, alternative="greater")`
    /// on the 2×2 table. The first term is formed from log-Gamma values and the rest by the pmf's ratio
    /// recurrence, in Double: relative accuracy ~1e-10 for N up to 10⁹. O(min(n, K) − k) time.
    /// Throws unless 0 ≤ k ≤ n ≤ N, 0 ≤ K ≤ N.
    public static func fisherGreater(groupErrors k: Int, groupSize n: Int, totalErrors K: Int, total N: Int) throws -> Double {
        guard N >= 0, n >= 0, n <= N, K >= 0, K <= N, k >= 0, k <= n else {
            throw StatisticsError.invalidInput("need 0 ≤ k ≤ n ≤ N and 0 ≤ K ≤ N, got k = \(k), n = \(n), K = \(K), N = \(N)")
        }
        let low = max(0, n - (N - K)), high = min(n, K)
        if k <= low { return 1 }
        if k > high { return 0 }
        func logChoose(_ a: Int, _ b: Int) -> Double { lgamma(Double(a) + 1) - lgamma(Double(b) + 1) - lgamma(Double(a - b) + 1) }
        var term = exp(logChoose(K, k) + logChoose(N - K, n - k) - logChoose(N, n))
        var sum = term
        var x = k
        while x < high {
            // pmf(x + 1) / pmf(x) = (K − x)(n − x) / ((x + 1)(N − K − n + x + 1))
            term *= Double(K - x) * Double(n - x) / (Double(x + 1) * Double(N - K - n + x + 1))
            sum += term
            x += 1
            if term < sum * 1e-17 && term > 0 { break }
            if term == 0 { break }
        }
        return min(1, sum)
    }
}
