#if canImport(Glibc)
import Glibc
#endif

/// Special functions of the normal, beta and binomial distributions, in Double, shared by the
/// statistical bounds here and the certificates of FaultlineRobustness.
public enum Distributions {
    /// Φ(x), the standard normal CDF, via erfc (full relative accuracy in both tails).
    public static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// Two-sided exact binomial test of k successes in n trials at success probability p, as
    /// scipy.stats.binomtest: the total probability of outcomes no more likely than k (relative
    /// tolerance 1e-7). O(n).
    public static func binomialTestPValue(successes k: Int, trials n: Int, p: Double = 0.5) -> Double {
        precondition(n >= 0 && k >= 0 && k <= n && p > 0 && p < 1, "binomial test needs 0 ≤ k ≤ n and p in (0, 1)")
        func logPMF(_ i: Int) -> Double {
            lgamma(Double(n) + 1) - lgamma(Double(i) + 1) - lgamma(Double(n - i) + 1) + Double(i) * log(p) + Double(n - i) * log1p(-p)
        }
        let threshold = logPMF(k) + log1p(1e-7)
        var total = 0.0
        for i in 0...n where logPMF(i) <= threshold { total += exp(logPMF(i)) }
        return min(1, total)
    }

    /// Regularised incomplete beta I_x(a, b) by Lentz's continued fraction (using the symmetry
    /// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges fastest).
    public static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x))
        if x < (a + 1) / (a + b + 2) { return front * continuedFraction(x, a, b) / a }
        return 1 - front * continuedFraction(1 - x, b, a) / b
    }

    static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var f = d
        for m in 1...10_000 {
            let mm = Double(m)
            var numerator = mm * (b - mm) * x / ((a + 2 * mm - 1) * (a + 2 * mm))
            d = 1 + numerator * d; if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            f *= d * c
            numerator = -(a + mm) * (a + b + mm) * x / ((a + 2 * mm) * (a + 2 * mm + 1))
            d = 1 + numerator * d; if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            f *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return f
    }

    /// The p-quantile of Beta(a, b) by bisection on I_x(a, b) to machine precision.
    public static func betaQuantile(_ p: Double, _ a: Double, _ b: Double) -> Double {
        var lo = 0.0, hi = 1.0
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if mid <= lo || mid >= hi { break }
            if incompleteBeta(mid, a, b) < p { lo = mid } else { hi = mid }
        }
        return 0.5 * (lo + hi)
    }

    /// The standard normal quantile (Acklam's rational approximation refined by one Halley step on
    /// erfc; ~1e-15 relative).
    public static func normalQuantile(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        var x: Double
        if p < 0.02425 {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - 0.02425 {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        return x - u / (1 + x * u / 2)
    }
}

extension Distributions {
    /// The Kolmogorov limiting distribution's survival function P(K > z) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²z²}
    /// (scipy.stats.kstwobign.sf); for z < 1 through the Jacobi form
    /// 1 − √(2π)/z Σ_{k≥1} e^{−(2k−1)²π²/(8z²)}. Absolute error < 1e-15.
    public static func kolmogorovSurvival(_ z: Double) -> Double {
        if z <= 0 { return 1 }
        if z < 1 {
            var s = 0.0
            for k in 1...20 {
                let j = Double(2 * k - 1)
                s += exp(-j * j * Double.pi * Double.pi / (8 * z * z))
            }
            return 1 - (2 * Double.pi).squareRoot() / z * s
        }
        var s = 0.0, sign = 1.0
        for k in 1...100 {
            let term = exp(-2 * Double(k * k) * z * z)
            s += sign * term
            sign = -sign
            if term < 1e-18 { break }
        }
        return min(max(2 * s, 0), 1)
    }

    /// The regularised upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a): series for x < a + 1, Lentz's
    /// continued fraction otherwise (relative error ~1e-14).
    public static func upperIncompleteGamma(_ a: Double, _ x: Double) -> Double {
        if x <= 0 { return 1 }
        let logPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, n = a
            for _ in 0..<10_000 {
                n += 1
                term *= x / n
                sum += term
                if abs(term) < abs(sum) * 1e-16 { break }
            }
            return max(0, 1 - sum * exp(logPrefix))
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b; if abs(d) < tiny { d = tiny }
            c = b + an / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return min(1, exp(logPrefix) * h)
    }

    /// P(χ²_k > x).
    public static func chiSquaredSurvival(_ x: Double, degreesOfFreedom k: Int) -> Double {
        upperIncompleteGamma(Double(k) / 2, x / 2)
    }
}
