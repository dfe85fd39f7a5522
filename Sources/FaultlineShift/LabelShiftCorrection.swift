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
