#if canImport(Glibc)
import Glibc
#endif
import FaultlineLinalg

/// Finite-sample Kolmogorov–Smirnov distributions, as SciPy evaluates them: the one-sample two-sided
/// D_n (`scipy.stats.kstwo`), the one-sample one-sided D⁺_n (`scipy.special.smirnov`) and the exact
/// two-sample D_{m,n} (`ks_2samp(method="exact")`).
extension Distributions {
    /// P(D_n ≥ x) for the two-sided one-sample statistic (`scipy.stats.kstwo.sf(x, n)`), by the
    /// Simard–L'Ecuyer (2011) choice of method per region, which SciPy follows: Ruben–Gambino closed
    /// forms near x = 1/(2n) and x = 1, 2·P(D⁺_n ≥ x) where the two tails cannot overlap (x ≥ ½) or
    /// where that is accurate (n·x² ≥ 2.2 for n > 140), the Durbin matrix (Marsaglia–Tsang–Wang) for
    /// small n·x², Pomeranz's recursion for n ≤ 140, and the Pelz–Good series otherwise. Accuracy
    /// ~1e-12 absolute where exact methods apply; Pelz–Good is an asymptotic series (≈ 1e-7 and
    /// better, the same approximation SciPy makes). NaN for n < 1 or NaN x, as SciPy.
    public static func kolmogorovSurvival(n: Int, x: Double) -> Double {
        if n < 1 || x.isNaN { return .nan }
        if x >= 1 { return 0 }
        if x <= 0 { return 1 }
        let nn = Double(n), t = nn * x
        if t <= 1 {  // Ruben–Gambino: P(D_n ≤ x) = n!/nⁿ·(2t − 1)ⁿ for 1/(2n) ≤ x ≤ 1/n
            if t <= 0.5 { return 1 }
            let cdf = n <= 140
                ? (1...n).reduce(1.0) { $0 * Double($1) / nn * (2 * t - 1) }
                : exp(logFactorialOverPower(n) + nn * log(2 * t - 1))
            return clamp01(1 - cdf)
        }
        if t >= nn - 1 { return clamp01(2 * pow(1 - x, nn)) }  // Ruben–Gambino near x = 1
        if x >= 0.5 { return clamp01(2 * smirnovSurvival(n: n, x: x)) }
        let nxSquared = t * x
        if n <= 140 {
            if nxSquared <= 0.754693 { return clamp01(1 - durbinMatrixCDF(n: n, d: x)) }
            if nxSquared <= 4 { return clamp01(1 - pomeranzCDF(n: n, x: x)) }
            return clamp01(2 * smirnovSurvival(n: n, x: x))
        }
        if nxSquared >= 370 { return 0 }
        if nxSquared >= 2.2 { return clamp01(2 * smirnovSurvival(n: n, x: x)) }
        if n <= 100_000 && nn * pow(x, 1.5) <= 1.4 { return clamp01(1 - durbinMatrixCDF(n: n, d: x)) }
        return clamp01(1 - pelzGoodCDF(n: n, x: x))
    }

    /// P(D⁺_n ≥ x) for the one-sided one-sample statistic (`scipy.special.smirnov(n, x)`), by the
    /// Birnbaum–Tingey sum x·Σ_{j=0}^{⌊n(1−x)⌋} C(n, j)(x + j/n)^{j−1}(1 − x − j/n)^{n−j}, whose terms are
    /// all positive (no cancellation); each is formed in logarithms with C(n, j) updated incrementally.
    /// O(n(1 − x)). NaN for n < 1 or NaN x, as SciPy.
    public static func smirnovSurvival(n: Int, x: Double) -> Double {
        if n < 1 || x.isNaN { return .nan }
        if x <= 0 { return 1 }
        if x >= 1 { return 0 }
        let nn = Double(n)
        let last = Int((nn * (1 - x)).rounded(.down))
        var logBinomial = 0.0, sum = 0.0
        for j in 0...max(last, 0) {
            if j > 0 { logBinomial += log(Double(n - j + 1)) - log(Double(j)) }
            let low = x + Double(j) / nn, high = Double(n - j) / nn - x
            if high <= 0 { continue }  // 0^(n−j) with n − j > 0
            sum += exp(logBinomial + Double(j - 1) * log(low) + Double(n - j) * log(high))
        }
        return clamp01(x * sum)
    }

    /// P(D_{m,n} ≥ h / lcm(m, n)) for the two-sided two-sample statistic under the null (continuous
    /// data), exactly: the probability that a uniformly random lattice path from (0, 0) to (m, n)
    /// touches |n·i − m·j| ≥ h·gcd(m, n). One pass over the band of inside cells with the path's
    /// transition probabilities, accumulating the mass absorbed by the boundary (all positive terms,
    /// so small p-values keep their relative accuracy). O(m·(band width)) ≈ O(2·h·gcd) cells.
    /// NaN for m < 1, n < 1 or h < 0.
    public static func twoSampleKolmogorovSurvival(_ m: Int, _ n: Int, h: Int) -> Double {
        if m < 1 || n < 1 || h < 0 { return .nan }
        if h == 0 { return 1 }
        var a = m, b = n
        while b != 0 { (a, b) = (b, a % b) }
        let bound = h * a  // h·gcd: inside ⇔ |n·i − m·j| < bound
        func inside(_ i: Int, _ j: Int) -> Bool { abs(n * i - m * j) < bound }
        // Row i holds the mass of the paths at (i, j) that have stayed inside, j in the band.
        var current = [Double](repeating: 0, count: n + 1), next = [Double](repeating: 0, count: n + 1)
        current[0] = 1
        var absorbed = 0.0
        for i in 0...m {
            // Band of inside j for this i: m·j in (n·i − bound, n·i + bound).
            let low = max(0, (n * i - bound) / m - 1), high = min(n, (n * i + bound) / m + 1)
            for j in low...high where current[j] != 0 {
                let mass = current[j]
                current[j] = 0
                let remaining = Double(m - i + n - j)
                if remaining == 0 { continue }  // (m, n): the path ends inside
                if i < m {
                    let flow = mass * Double(m - i) / remaining
                    if inside(i + 1, j) { next[j] += flow } else { absorbed += flow }
                }
                if j < n {
                    let flow = mass * Double(n - j) / remaining
                    if inside(i, j + 1) { current[j + 1] += flow } else { absorbed += flow }
                }
            }
            swap(&current, &next)
        }
        return clamp01(absorbed)
    }

    // MARK: - The methods behind `kolmogorovSurvival(n:x:)`

    /// log(n!/nⁿ) by Stirling's series with n·log n removed up front (no cancellation).
    private static func logFactorialOverPower(_ n: Int) -> Double {
        let nn = Double(n), r = 1 / nn, r2 = r * r
        // Σ B_{2j}/(2j(2j − 1))·r^{2j−1}, j = 1…8, in Horner form over r².
        let coefficients = [-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
                            8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
                            -2.7777777777777777778e-3, 8.3333333333333333333e-2]
        let series = coefficients.reduce(0.0) { $0 * r2 + $1 }
        return log(nn) / 2 - nn + log(2 * Double.pi) / 2 + r * series
    }

    /// P(D_n ≤ d) by Durbin's matrix: with d = (k − h)/n, 0 ≤ h < 1, the (k, k) entry of Hⁿ times
    /// n!/nⁿ for the (2k − 1)-square matrix H of Marsaglia, Tsang and Wang (2003), powered by repeated
    /// squaring (BLAS GEMM) with power-of-two rescaling. O(m³ log n), m = 2k − 1.
    private static func durbinMatrixCDF(n: Int, d: Double) -> Double {
        let nd = Double(n) * d
        if nd <= 0.5 { return 0 }
        let k = Int(nd.rounded(.up)), h = Double(k) - nd, m = 2 * k - 1
        var inverseFactorial = [Double](repeating: 1, count: m + 1)  // 1/j!
        for j in 1...m { inverseFactorial[j] = inverseFactorial[j - 1] / Double(j) }
        var matrix = Matrix<Double>(rows: m, columns: m)
        for i in 0..<m { for j in 0..<m where i - j + 1 >= 0 { matrix[i, j] = inverseFactorial[i - j + 1] } }
        for i in 0..<m {
            matrix[i, 0] = (1 - pow(h, Double(i + 1))) * inverseFactorial[i + 1]
            matrix[m - 1, i] = (1 - pow(h, Double(m - i))) * inverseFactorial[m - i]
        }
        matrix[m - 1, 0] = (1 - 2 * pow(h, Double(m)) + pow(max(2 * h - 1, 0), Double(m))) * inverseFactorial[m]
        let scale = 128, big = scalbn(1.0, scale), small = scalbn(1.0, -scale)
        var power = Matrix<Double>.identity(m), powerExponent = 0, matrixExponent = 0, remaining = n
        while remaining > 0 {
            if remaining % 2 == 1 {
                power = try! Linalg.matmul(power, matrix)
                powerExponent += matrixExponent
                if abs(power[k - 1, k - 1]) > big { power = power.map { $0 * small }; powerExponent += scale }
            }
            remaining /= 2
            if remaining > 0 {
                matrix = try! Linalg.matmul(matrix, matrix)
                matrixExponent *= 2
                if abs(matrix[k - 1, k - 1]) > big { matrix = matrix.map { $0 * small }; matrixExponent += scale }
            }
        }
        var p = power[k - 1, k - 1]
        for i in 1...n {
            p = Double(i) * p / Double(n)
            if abs(p) < small { p *= big; powerExponent -= scale }
        }
        return scalbn(p, powerExponent)
    }

    /// P(D_n ≤ x) by Pomeranz's (1974) recursion: 2n + 1 rows, each the convolution of the previous
    /// row's band with one of three Poisson-like weight sequences; n!·(last entry). O(n·t²), t = n·x.
    private static func pomeranzCDF(n: Int, x: Double) -> Double {
        let t = Double(n) * x, whole = Int(t.rounded(.down)), f = t - Double(whole)
        let g = min(f, 1 - f), ceilF = f > 0 ? 1 : 0, roundF = f > 0.5 ? 1 : 0
        let width = 2 * (whole + 1)
        func weights(_ rate: Double) -> [Double] {  // rate^j / j!
            var w = [Double](repeating: 1, count: width)
            for j in 1..<width { w[j] = w[j - 1] * rate / Double(j) }
            return w
        }
        let gWeights = weights(g / Double(n)), twoGWeights = weights(2 * g / Double(n)), restWeights = weights((1 - 2 * g) / Double(n))
        func band(_ i: Int) -> (Int, Int) {  // inclusive column range of row i
            var j1: Int, j2: Int
            if i == 0 {
                (j1, j2) = (-whole - ceilF - 1, whole + ceilF - 1)
            } else {
                let half = (i + 1) / 2
                if (i + 1) % 2 == 0 {
                    (j1, j2) = half == n + 1 ? (n - whole - ceilF - 1, n + whole + ceilF - 1)
                                             : (half - 1 - whole - roundF - 1, half + whole - 1 + ceilF - 1)
                } else {
                    (j1, j2) = (half - 1 - whole - 1, half + whole + roundF - 1)
                }
            }
            return (max(j1 + 2, 0), min(j2, n))
        }
        let scale = 128, big = scalbn(1.0, scale), small = scalbn(1.0, -scale)
        var previous = [Double](repeating: 0, count: width), row = [Double](repeating: 0, count: width)
        row[0] = 1
        var previousStart = 0, rowStart = 0, exponent = 0
        var (j1, j2) = band(0)
        for i in 1...(2 * n + 1) {
            let k1 = j1
            swap(&previous, &row)
            swap(&previousStart, &rowStart)
            for c in row.indices { row[c] = 0 }
            (j1, j2) = band(i)
            let w = (i == 1 || i == 2 * n + 1) ? gWeights : (i % 2 == 1 ? twoGWeights : restWeights)
            let length = j2 - k1 + 1
            guard length > 0 else { continue }
            // row[c] = Σ_s previous[k1 − previousStart + s]·w[(j1 − k1 + c) − s] for c in 0...(j2 − j1).
            // (NumPy's convolve of the two length-`length` slices, the first cut at the row's end.)
            let offset = j1 - k1, base = k1 - previousStart
            let aLength = min(length, width - base), bLength = min(length, width)
            for c in 0...(j2 - j1) {
                let target = offset + c
                var sum = 0.0
                var s = max(0, target - bLength + 1)
                while s <= min(target, aLength - 1) { sum += previous[base + s] * w[target - s]; s += 1 }
                row[c] = sum
            }
            if let largest = row.max(), largest > 0, largest < small {
                for c in row.indices { row[c] *= big }
                exponent -= scale
            }
            rowStart = previousStart + j1 - k1
        }
        var answer = row[n - rowStart]
        for j in 1...n {
            if abs(answer) > big { answer *= small; exponent += scale }
            answer *= Double(j)
        }
        return scalbn(answer, exponent)
    }

    /// P(D_n ≤ x) by the Pelz–Good (1976) asymptotic series K₀ + K₁/√n + K₂/n + K₃/n^{3/2} in z = x√n,
    /// each term in its Jacobi-theta (small-z) form.
    private static func pelzGoodCDF(n: Int, x: Double) -> Double {
        let z = Double(n).squareRoot() * x
        let z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2
        let qLog = -Double.pi * Double.pi / 8 / z2
        if qLog < -708 { return 0 }
        let q = exp(qLog), pi2 = Double.pi * Double.pi, pi4 = pi2 * pi2, pi6 = pi4 * pi2
        let k1a = -z2, k1b = pi2 / 4
        let k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4, k2c = pi4 * (1 - 2 * z2) / 16
        let k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16
        let k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * z4 * z4
        var terms = [0.0, 0.0, 0.0, 0.0]
        let maxK = Int((16 * z / Double.pi).rounded(.up))
        for k in stride(from: maxK, through: 1, by: -1) {  // Horner in q^(8k) over odd m = 2k − 1
            let m2 = Double((2 * k - 1) * (2 * k - 1)), m4 = m2 * m2, m6 = m4 * m2
            let qPower = pow(q, Double(8 * k))
            let coefficients = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6]
            for t in 0..<4 { terms[t] = terms[t] * qPower + coefficients[t] }
        }
        let root2pi = (2 * Double.pi).squareRoot()
        let denominators = [z, 6 * z4, 72 * z4 * z3, 6480 * z4 * z6]
        for t in 0..<4 { terms[t] *= q * root2pi / denominators[t] }
        // The sums over all integers k in K₂ and K₃.
        let qq = exp(-pi2 / 2 / z2)
        var k2Extra = 0.0, k3Extra = 0.0
        for k in stride(from: maxK, through: 1, by: -1) {
            let kk = Double(k * k), weight = pow(qq, kk), kpi = Double.pi * Double(k), root3z = 3.0.squareRoot() * z
            k2Extra += kk * weight
            k3Extra += (root3z + kpi) * (root3z - kpi) * kk * weight
        }
        terms[2] += k2Extra * pi2 * root2pi / (-36 * z3)
        terms[3] += k3Extra * pi2 * root2pi / (216 * z6)
        let nn = Double(n)
        return terms[0] + terms[1] / nn.squareRoot() + terms[2] / nn + terms[3] / (nn * nn.squareRoot())
    }

    private static func clamp01(_ p: Double) -> Double { min(max(p, 0), 1) }
}
