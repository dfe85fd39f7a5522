import FaultlineLinalg
#if canImport(Glibc)
import Glibc
#endif

/// Label-shift estimation by maximum likelihood and the correction of predictions for a label shift.
///
/// Under label shift the class-conditional inputs stay the same (p(x | y) = q(x | y)) and only the class
/// priors move from p(y) to q(y). A classifier's posterior then becomes, by Bayes' rule,
/// q(y | x) ∝ w(y)·p(y | x) with w(y) = q(y)/p(y) (`correct`). The weights come from `LabelShiftEstimate`
/// (BBSE, hard predictions) or `maximumLikelihood` (MLLS: EM of Saerens, Latinne & Decaestecker 2002).
public enum LabelShift {
    /// The result of `maximumLikelihood`.
    public struct MaximumLikelihoodEstimate: Sendable, Codable, Equatable {
        /// w(y) = q(y) / p(y).
        public var weights: [Double]
        /// p(y), as given.
        public var sourceDistribution: [Double]
        /// The estimated target priors q(y) (summing to 1).
        public var targetDistribution: [Double]
        /// EM iterations run, and whether max_y |q_t+1(y) − q_t(y)| fell below the tolerance.
        public var iterations: Int
        /// Whether the change in q fell below the tolerance before the iteration limit.
        public var converged: Bool
        /// Mean target log-likelihood gain (1/m) Σᵢ log Σ_y w(y) p(y | xᵢ) ≥ 0 of the estimate over w = 1.
        public var logLikelihoodGain: Double
    }

    /// Class frequencies of `labels` (the source priors p(y) of a labelled validation set). Throws for
    /// no labels or one outside 0..<`classes`.
    public static func priors(labels: [Int], classes k: Int) throws -> [Double] {
        guard !labels.isEmpty, k > 0 else { throw ShiftError.invalidInput("need at least one label and one class") }
        var p = [Double](repeating: 0, count: k)
        for y in labels {
            guard y >= 0 && y < k else { throw ShiftError.invalidInput("label \(y) lies outside 0..<\(k)") }
            p[y] += 1
        }
        return p.map { $0 / Double(labels.count) }
    }

    /// The mean of the rows of `probabilities` (in Double): the prior a model itself implies on a source
    /// set. As MLLS's source priors it makes the estimate self-consistent — EM on the source rows themselves
    /// stops at w = 1 (to the rows' float32 rounding) — whereas label frequencies differ from what a slightly miscalibrated model
    /// implies and bias the weights (Alexandari et al. 2020). Throws for an empty matrix or a value that is
    /// NaN or negative.
    public static func priors(probabilities f: Matrix<Float>) throws -> [Double] {
        guard f.rows > 0, f.columns > 0 else { throw ShiftError.invalidInput("the probabilities are empty (\(f.rows)×\(f.columns))") }
        var mean = [Double](repeating: 0, count: f.columns)
        try f.withUnsafeBufferPointer { buffer in
            for i in 0..<f.rows {
                for y in 0..<f.columns {
                    let v = Double(buffer[i * f.columns + y])
                    guard v.isFinite, v >= 0 else { throw ShiftError.invalidInput("probability [\(i), \(y)] = \(v) is not a probability") }
                    mean[y] += v
                }
            }
        }
        let total = mean.reduce(0, +)
        guard total > 0 else { throw ShiftError.invalidInput("the probabilities sum to 0") }
        return mean.map { $0 / total }
    }

    /// MLLS: the target priors q that maximise the likelihood of the unlabelled target rows,
    /// L(q) = Σᵢ log Σ_y (q(y)/p(y))·f_y(xᵢ), where f(x) are the source model's (calibrated) probabilities
    /// and p the source priors, by the EM fixed point of Saerens et al. (2002):
    ///
    ///     q_{t+1}(y) = (1/m) Σᵢ w_t(y) f_y(xᵢ) / Σ_k w_t(k) f_k(xᵢ),   w_t = q_t / p,   q_0 = p.
    ///
    /// L is concave in q, so the fixed point (where q(y) > 0) is its maximum on the simplex. EM stops when
    /// max_y |q_{t+1}(y) − q_t(y)| ≤ `tolerance` or after `maxIterations` (then `converged` is false).
    /// Accuracy: Double throughout; at convergence the fixed-point equations hold to ~`tolerance`.
    /// Complexity O(m·K) per iteration. The estimate is only as good as the calibration of f (Alexandari
    /// et al. 2020: calibrate first, e.g. temperature scaling on the source validation set).
    ///
    /// Throws `ShiftError.invalidInput` for no rows, priors that are not a distribution with every
    /// p(y) > 0, a class count that differs, a probability that is NaN or negative, a row summing to 0,
    /// or a tolerance/iteration count out of range.
    public static func maximumLikelihood(targetProbabilities f: Matrix<Float>, sourcePriors p: [Double],
                                         tolerance: Double = 1e-10, maxIterations: Int = 10_000) throws -> MaximumLikelihoodEstimate {
        let k = f.columns, m = f.rows
        guard m > 0, k > 0 else { throw ShiftError.invalidInput("the target probabilities are empty (\(m)×\(k))") }
        guard p.count == k else { throw ShiftError.invalidInput("\(p.count) source priors for \(k) classes") }
        if let bad = p.firstIndex(where: { !($0 > 0 && $0 <= 1) }) {
            throw ShiftError.invalidInput("source prior of class \(bad) is \(p[bad]); every class needs a prior in (0, 1] (a class absent from the source cannot be reweighted)")
        }
        guard abs(p.reduce(0, +) - 1) <= 1e-6 else { throw ShiftError.invalidInput("the source priors sum to \(p.reduce(0, +)), not 1") }
        guard tolerance > 0, tolerance.isFinite, maxIterations >= 1 else {
            throw ShiftError.invalidInput("need a finite tolerance > 0 and at least one iteration")
        }
        // The rows divided by the priors, in Double: f_y(x)/p(y), so that Σ_y q(y)·g_y(x) is the likelihood ratio.
        var g = [Double](repeating: 0, count: m * k)
        try f.withUnsafeBufferPointer { buffer in
            for i in 0..<m {
                var sum = 0.0
                for y in 0..<k {
                    let v = Double(buffer[i * k + y])
                    guard v.isFinite, v >= 0 else { throw ShiftError.invalidInput("target probability [\(i), \(y)] = \(v) is not a probability") }
                    g[i * k + y] = v / p[y]
                    sum += v
                }
                guard sum > 0 else { throw ShiftError.invalidInput("target probability row \(i) sums to 0") }
            }
        }
        var q = p, iterations = 0, converged = false
        var next = [Double](repeating: 0, count: k)
        while iterations < maxIterations {
            iterations += 1
            for y in 0..<k { next[y] = 0 }
            for i in 0..<m {
                var d = 0.0
                for y in 0..<k { d += q[y] * g[i * k + y] }
                guard d > 0 else { continue }  // every class with mass has q = 0: the row has no likelihood left
                for y in 0..<k { next[y] += q[y] * g[i * k + y] / d }
            }
            let total = next.reduce(0, +)
            var change = 0.0
            for y in 0..<k {
                let v = total > 0 ? next[y] / total : q[y]
                change = max(change, abs(v - q[y]))
                q[y] = v
            }
            if change <= tolerance { converged = true; break }
        }
        var gain = 0.0
        for i in 0..<m {
            var d = 0.0, base = 0.0
            for y in 0..<k { d += q[y] * g[i * k + y]; base += p[y] * g[i * k + y] }
            if d > 0 && base > 0 { gain += log(d / base) }
        }
        return MaximumLikelihoodEstimate(weights: zip(q, p).map { $0 / $1 }, sourceDistribution: p, targetDistribution: q,
                                         iterations: iterations, converged: converged, logLikelihoodGain: gain / Double(m))
    }

    /// Prior correction of predicted probabilities for a label shift: p'(y | x) = w(y)·p(y | x) /
    /// Σ_k w(k)·p(k | x), per row, in Double, rounded once to Float. A row whose weighted sum is 0 (all its
    /// mass on classes of weight 0) is returned unchanged — no class is supported by both. O(N·K).
    /// Throws for a weight count that differs from the columns, or a weight that is negative, NaN or ∞.
    public static func correct(_ probabilities: Matrix<Float>, weights w: [Double]) throws -> Matrix<Float> {
        let k = probabilities.columns
        guard w.count == k else { throw ShiftError.invalidInput("\(w.count) weights for \(k) classes") }
        if let bad = w.firstIndex(where: { !($0 >= 0 && $0.isFinite) }) {
            throw ShiftError.invalidInput("weight of class \(bad) is \(w[bad]); weights must be finite and ≥ 0")
        }
        var out = probabilities
        out.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<probabilities.rows {
                var d = 0.0
                for y in 0..<k { d += w[y] * Double(buffer[i * k + y]) }
                guard d > 0, d.isFinite else { continue }
                for y in 0..<k { buffer[i * k + y] = Float(w[y] * Double(buffer[i * k + y]) / d) }
            }
        }
        return out
    }
}

extension LabelShift {
    /// The result of `regularized` (RLLS).
    public struct RegularizedEstimate: Sendable, Codable, Equatable {
        /// θ̂, the regularised solution; `rawWeights` = 1 + λθ̂; `weights`: those clipped at 0 and rescaled so
        /// that Σ_y p(y) w(y) = 1 (the shrinkage need not keep q a distribution; a common scale changes neither
        /// the corrected probabilities nor weighted conformal sets).
        public var theta: [Double]
        /// 1 + λθ̂, before clipping (may be negative).
        public var rawWeights: [Double]
        /// `rawWeights` clipped at 0 and rescaled so that Σ_y p(y) w(y) = 1.
        public var weights: [Double]
        /// p(y) (validation label frequencies) and q(y) = w(y) p(y).
        public var sourceDistribution: [Double]
        /// q(y) = w(y) p(y).
        public var targetDistribution: [Double]
        /// The regulariser ρ (Δ_C) used.
        public var regularization: Double
    }

    /// Regularized learning under label shift (RLLS, Azizzadenesheli, Liu, Yang & Anandkumar 2019):
    /// θ̂ = argmin_θ ‖Ĉθ − b̂‖₂ + ρ‖θ‖₂ with Ĉ the validation confusion matrix (prediction × label, counts/n),
    /// b̂ = μ̂ − Ĉ·1 (μ̂ the target's predicted-class distribution), and w = 1 + λθ̂ (see `RegularizedEstimate`).
    /// The default ρ shrinks hard on small validation sets (0.25 for n = 2000, k = 3): w stays near 1 unless
    /// the shift is large relative to the estimation error. ρ defaults to the
    /// paper's bound on ‖Ĉ − C‖, Δ_C = 3(2 ln(2k/δ)/(3n) + √(2 ln(2k/δ)/n)); with ρ = 0 and an invertible Ĉ
    /// this is BBSE (`LabelShiftEstimate`).
    ///
    /// The minimiser is found exactly up to a 1-D root: θ = 0 when ‖Ĉᵀb̂‖ ≤ ρ‖b̂‖; the exact fit Ĉ⁻¹b̂ when
    /// ρ‖Ĉ⁻ᵀθ‖/‖θ‖ ≤ 1; otherwise the ridge path θ(μ) = (ĈᵀĈ + μI)⁻¹Ĉᵀb̂ at the μ where μ‖θ(μ)‖ = ρ‖Ĉθ(μ) − b̂‖
    /// (the optimality condition; the ratio is increasing in μ), by bisection on log μ to relative 1e-13.
    /// Double throughout; O(k³ · 200). Throws `ShiftError.invalidInput` for empty or mismatched inputs, a
    /// label outside 0..<k, ρ < 0, λ outside [0, 1] or δ outside (0, 1).
    public static func regularized(validationPredictions predicted: [Int], validationLabels labels: [Int], targetPredictions target: [Int],
                                   classes k: Int, regularization: Double? = nil, delta: Double = 0.01, lambda: Double = 1) throws -> RegularizedEstimate {
        guard k > 0, predicted.count == labels.count, !labels.isEmpty, !target.isEmpty else {
            throw ShiftError.invalidInput("need matching, non-empty validation predictions and labels, and target predictions")
        }
        guard (predicted + labels + target).allSatisfy({ $0 >= 0 && $0 < k }) else { throw ShiftError.invalidInput("a label lies outside 0..<\(k)") }
        guard delta > 0 && delta < 1, lambda >= 0 && lambda <= 1 else { throw ShiftError.invalidInput("need δ in (0, 1) and λ in [0, 1]") }
        let n = Double(labels.count)
        let log2k = log(2 * Double(k) / delta)
        let rho = regularization ?? 3 * (2 * log2k / (3 * n) + (2 * log2k / n).squareRoot())
        guard rho >= 0, rho.isFinite else { throw ShiftError.invalidInput("the regularisation ρ = \(rho) must be finite and ≥ 0") }
        var c = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for (p, y) in zip(predicted, labels) { c[p][y] += 1 / n }
        var b = [Double](repeating: 0, count: k)
        for p in target { b[p] += 1 / Double(target.count) }
        for i in 0..<k { b[i] -= c[i].reduce(0, +) }
        let source = (0..<k).map { j in (0..<k).reduce(0) { $0 + c[$1][j] } }
        let theta = minimizeNormPlusNorm(c, b, rho)
        let raw = theta.map { 1 + lambda * $0 }
        var weights = raw.map { max($0, 0) }
        let mass = zip(weights, source).reduce(0) { $0 + $1.0 * $1.1 }
        if mass > 0 { weights = weights.map { $0 / mass } }
        return RegularizedEstimate(theta: theta, rawWeights: raw, weights: weights, sourceDistribution: source,
                                   targetDistribution: zip(weights, source).map { $0 * $1 }, regularization: rho)
    }

    /// argmin_θ ‖Cθ − b‖ + ρ‖θ‖ (see `regularized`).
    static func minimizeNormPlusNorm(_ c: [[Double]], _ b: [Double], _ rho: Double) -> [Double] {
        let k = b.count
        func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        func times(_ v: [Double]) -> [Double] { (0..<k).map { i in (0..<k).reduce(0) { $0 + c[i][$1] * v[$1] } } }
        let ctb = (0..<k).map { j in (0..<k).reduce(0) { $0 + c[$1][j] * b[$1] } }
        let bNorm = norm(b)
        guard bNorm > 0, norm(ctb) > rho * bNorm else { return [Double](repeating: 0, count: k) }
        // (CᵀC + μI)⁻¹ Cᵀb by Cholesky; nil when not positive definite (μ = 0 and C singular).
        func ridge(_ mu: Double) -> [Double]? {
            var a = (0..<k).map { i in (0..<k).map { j in (0..<k).reduce(0) { $0 + c[$1][i] * c[$1][j] } + (i == j ? mu : 0) } }
            for j in 0..<k {
                var d = a[j][j]
                for p in 0..<j { d -= a[j][p] * a[j][p] }
                guard d > 1e-300 else { return nil }
                a[j][j] = d.squareRoot()
                for i in (j + 1)..<max(j + 1, k) {
                    var s = a[i][j]
                    for p in 0..<j { s -= a[i][p] * a[j][p] }
                    a[i][j] = s / a[j][j]
                }
            }
            var y = ctb
            for i in 0..<k { for p in 0..<i { y[i] -= a[i][p] * y[p] }; y[i] /= a[i][i] }
            for i in stride(from: k - 1, through: 0, by: -1) { for p in (i + 1)..<max(i + 1, k) { y[i] -= a[p][i] * y[p] }; y[i] /= a[i][i] }
            return y
        }
        // The exact fit, when ρ is small enough for the residual's subgradient to absorb ρθ/‖θ‖.
        let scale = c.flatMap { $0 }.reduce(0) { $0 + $1 * $1 }
        if let exact = ridge(0), norm(exact) > 0 {
            // Cᵀg = −ρθ/‖θ‖ with ‖g‖ ≤ 1: g = −ρ C⁻ᵀθ/‖θ‖, i.e. solve Cᵀg = θ/‖θ‖ (g = C⁻ᵀθ/‖θ‖ = C(CᵀC)⁻¹θ/‖θ‖).
            let unit = exact.map { $0 / norm(exact) }
            // C⁻ᵀu = C(CᵀC)⁻¹u: solve (CᵀC)v = u, then take Cv.
            if let v = solveNormal(c, unit), rho * norm(times(v)) <= 1 + 1e-12 { return exact }
        }
        func ratio(_ mu: Double) -> Double {
            guard let t = ridge(mu) else { return 0 }
            let r = zip(times(t), b).map { $0 - $1 }
            return mu * norm(t) / max(norm(r), 1e-300)
        }
        var lo = log(max(scale, 1e-300) * 1e-16), hi = log(max(scale, 1e-300) * 1e16)
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if ratio(exp(mid)) < rho { lo = mid } else { hi = mid }
            if hi - lo < 1e-13 { break }
        }
        return ridge(exp((lo + hi) / 2)) ?? [Double](repeating: 0, count: k)
    }

    /// (CᵀC)⁻¹u by Gaussian elimination with partial pivoting; nil when singular.
    static func solveNormal(_ c: [[Double]], _ u: [Double]) -> [Double]? {
        let k = u.count
        var a = (0..<k).map { i in (0..<k).map { j in (0..<k).reduce(0) { $0 + c[$1][i] * c[$1][j] } } }
        var rhs = u
        for col in 0..<k {
            let pivot = (col..<k).max { abs(a[$0][col]) < abs(a[$1][col]) }!
            guard abs(a[pivot][col]) > 1e-300 else { return nil }
            a.swapAt(col, pivot); rhs.swapAt(col, pivot)
            for r in (col + 1)..<max(col + 1, k) {
                let f = a[r][col] / a[col][col]
                for j in col..<k { a[r][j] -= f * a[col][j] }
                rhs[r] -= f * rhs[col]
            }
        }
        var x = [Double](repeating: 0, count: k)
        for r in stride(from: k - 1, through: 0, by: -1) {
            var s = rhs[r]
            for j in (r + 1)..<max(r + 1, k) { s -= a[r][j] * x[j] }
            x[r] = s / a[r][r]
        }
        return x
    }
}
