import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Vector scaling (Guo et al. 2017): calibrated logits wᶜ·zᶜ + bᶜ per class, fitted by minimising the
/// mean negative log-likelihood with Newton's method on the 2C parameters (exact Hessian, backtracking,
/// a 1e-9 ridge for the flat directions softmax leaves: adding a constant to every b), in Double,
/// starting from w = 1, b = 0 (temperature 1). O(N·C²) per iteration.
public struct VectorScaling: Sendable, Codable, Equatable {
    /// wᶜ, one per class.
    public var scale: [Double]
    /// bᶜ, one per class.
    public var bias: [Double]
    /// The mean NLL at w = 1, b = 0.
    public var nllBefore: Double
    /// The mean NLL at the fit.
    public var nllAfter: Double
    /// Newton iterations used.
    public var iterations: Int

    /// Throws for bad logits or labels (`ReliabilityError`).
    public init(logits: Matrix<Float>, labels: [Int], maxIterations: Int = 50) throws {
        guard logits.isFinite else { throw ReliabilityError.invalidInput("logits contain NaN or infinite values") }
        try Check.labels(labels, rows: logits.rows, classes: logits.columns)
        let c = logits.columns, n = logits.rows
        var w = [Double](repeating: 1, count: c), b = [Double](repeating: 0, count: c)
        func nll(_ w: [Double], _ b: [Double]) -> Double {
            var total = 0.0
            for i in 0..<n {
                var m = -Double.infinity
                var u = [Double](repeating: 0, count: c)
                for k in 0..<c { u[k] = w[k] * Double(logits[i, k]) + b[k]; m = max(m, u[k]) }
                total += m + log(u.reduce(0.0) { $0 + exp($1 - m) }) - u[labels[i]]
            }
            return total / Double(n)
        }
        let before = nll(w, b)
        var current = before, iterations = 0
        let p = 2 * c
        for _ in 0..<maxIterations {
            iterations += 1
            var gradient = [Double](repeating: 0, count: p)
            var hessian = Matrix<Double>(rows: p, columns: p)
            hessian.withUnsafeMutableBufferPointer { h in
                var prob = [Double](repeating: 0, count: c), z = [Double](repeating: 0, count: c)
                for i in 0..<n {
                    var m = -Double.infinity
                    for k in 0..<c { z[k] = Double(logits[i, k]); prob[k] = w[k] * z[k] + b[k]; m = max(m, prob[k]) }
                    var s = 0.0
                    for k in 0..<c { prob[k] = exp(prob[k] - m); s += prob[k] }
                    for k in 0..<c { prob[k] /= s }
                    for k in 0..<c {
                        let r = prob[k] - (k == labels[i] ? 1 : 0)
                        gradient[k] += r * z[k]
                        gradient[c + k] += r
                    }
                    // ∂²/∂u_a∂u_b = p_a δ_ab − p_a p_b; u_a depends on (w_a, b_a) through (z_a, 1).
                    for a in 0..<c {
                        for bb in 0..<c {
                            let hu = (a == bb ? prob[a] : 0) - prob[a] * prob[bb]
                            h[a * p + bb] += hu * z[a] * z[bb]
                            h[a * p + c + bb] += hu * z[a]
                            h[(c + a) * p + bb] += hu * z[bb]
                            h[(c + a) * p + c + bb] += hu
                        }
                    }
                }
            }
            let scaleN = 1 / Double(n)
            gradient = gradient.map { $0 * scaleN }
            hessian = hessian.map { $0 * scaleN }
            for j in 0..<p { hessian[j, j] += 1e-9 }
            if gradient.map(abs).max()! < 1e-10 { break }
            guard let l = try? Linalg.cholesky(hessian) else { break }
            let step = try Linalg.choleskySolve(l, Matrix(rows: p, columns: 1, elements: gradient)).elements
            var t = 1.0, next = nll(zip(w, step.prefix(c)).map { $0 - $1 }, zip(b, step.suffix(c)).map { $0 - $1 })
            while next > current && t > 1e-8 {
                t /= 2
                next = nll(zip(w, step.prefix(c)).map { $0 - t * $1 }, zip(b, step.suffix(c)).map { $0 - t * $1 })
            }
            if next > current { break }
            w = zip(w, step.prefix(c)).map { $0 - t * $1 }
            b = zip(b, step.suffix(c)).map { $0 - t * $1 }
            let improvement = current - next
            current = next
            if improvement <= 1e-15 * max(1, current) { break }
        }
        scale = w
        bias = b
        nllBefore = before
        nllAfter = current
        self.iterations = iterations
    }

    /// The calibrated logits.
    public func apply(_ logits: Matrix<Float>) -> Matrix<Float> {
        var out = logits
        for i in 0..<logits.rows { for k in 0..<logits.columns { out[i, k] = Float(scale[k] * Double(logits[i, k]) + bias[k]) } }
        return out
    }
}
