import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Bias-corrected temperature scaling (BCTS, Alexandari, Kundaje & Shrikumar 2020): calibrated logits
/// z/T + b_c, one temperature and one bias per class, fitted by minimising the mean negative
/// log-likelihood with Newton's method on the C + 1 parameters (exact Hessian, backtracking, a 1e-9
/// ridge for the flat direction softmax leaves: adding a constant to every b), in Double, from T = 1,
/// b = 0. O(N·C²) per iteration. The biases make the calibrated model's mean probability of each class
/// equal that class's frequency in the fitting labels (the stationarity condition Σᵢ (pᵢ_c − 1[yᵢ = c]) = 0),
/// which is what label-shift estimation by maximum likelihood (MLLS) needs from the source model.
public struct BiasCorrectedTemperatureScaling: Sendable, Codable, Equatable {
    /// T > 0.
    public var temperature: Double
    /// b_c, one per class.
    public var bias: [Double]
    /// The mean NLL at T = 1, b = 0.
    public var nllBefore: Double
    /// The mean NLL at the fit.
    public var nllAfter: Double
    /// Newton iterations used.
    public var iterations: Int

    /// Throws for empty or non-finite logits or bad labels (`ReliabilityError`), and `notIdentifiable` when
    /// the best inverse temperature is not positive (logits that rank the labels worse than chance).
    /// Separable data (the NLL keeps falling as T → 0) stops after `maxIterations` with a small T.
    public init(logits: Matrix<Float>, labels: [Int], maxIterations: Int = 100) throws {
        guard logits.rows > 0, logits.columns > 0 else { throw ReliabilityError.invalidInput("logits are empty (\(logits.rows)×\(logits.columns))") }
        guard logits.isFinite else { throw ReliabilityError.invalidInput("logits contain NaN or infinite values") }
        try Check.labels(labels, rows: logits.rows, classes: logits.columns)
        let c = logits.columns, n = logits.rows, p = c + 1
        let z = logits.converted(to: Double.self)
        // θ = (a = 1/T, b_0 … b_{C−1}).
        func nll(_ theta: [Double]) -> Double {
            var total = 0.0
            var u = [Double](repeating: 0, count: c)
            for i in 0..<n {
                var m = -Double.infinity
                for k in 0..<c { u[k] = theta[0] * z[i, k] + theta[1 + k]; m = max(m, u[k]) }
                var s = 0.0
                for k in 0..<c { s += exp(u[k] - m) }
                total += m + log(s) - u[labels[i]]
            }
            return total / Double(n)
        }
        var theta = [1.0] + [Double](repeating: 0, count: c)
        let before = nll(theta)
        var current = before, iterations = 0
        var prob = [Double](repeating: 0, count: c)
        for _ in 0..<maxIterations {
            iterations += 1
            var gradient = [Double](repeating: 0, count: p)
            var hessian = Matrix<Double>(rows: p, columns: p)
            hessian.withUnsafeMutableBufferPointer { h in
                for i in 0..<n {
                    var m = -Double.infinity
                    for k in 0..<c { prob[k] = theta[0] * z[i, k] + theta[1 + k]; m = max(m, prob[k]) }
                    var s = 0.0
                    for k in 0..<c { prob[k] = exp(prob[k] - m); s += prob[k] }
                    var meanZ = 0.0
                    for k in 0..<c { prob[k] /= s; meanZ += prob[k] * z[i, k] }
                    for k in 0..<c {
                        let r = prob[k] - (k == labels[i] ? 1 : 0)
                        gradient[0] += r * z[i, k]
                        gradient[1 + k] += r
                    }
                    // ∂²/∂u_k∂u_l = p_k δ_kl − p_k p_l, with ∂u_k/∂a = z_k and ∂u_k/∂b_l = δ_kl.
                    var zz = 0.0
                    for k in 0..<c { zz += prob[k] * z[i, k] * z[i, k] }
                    h[0] += zz - meanZ * meanZ
                    for l in 0..<c {
                        let cross = prob[l] * (z[i, l] - meanZ)
                        h[1 + l] += cross
                        h[(1 + l) * p] += cross
                        for k in 0..<c { h[(1 + k) * p + 1 + l] += (k == l ? prob[k] : 0) - prob[k] * prob[l] }
                    }
                }
            }
            let scaleN = 1 / Double(n)
            gradient = gradient.map { $0 * scaleN }
            hessian = hessian.map { $0 * scaleN }
            for j in 0..<p { hessian[j, j] += 1e-9 }
            if gradient.map(abs).max()! < 1e-11 { break }
            guard let l = try? Linalg.cholesky(hessian) else { break }
            let step = try Linalg.choleskySolve(l, Matrix(rows: p, columns: 1, elements: gradient)).elements
            var t = 1.0, next = nll(zip(theta, step).map { $0 - $1 })
            while !(next <= current) && t > 1e-8 {
                t /= 2
                next = nll(zip(theta, step).map { $0 - t * $1 })
            }
            if !(next <= current) { break }
            theta = zip(theta, step).map { $0 - t * $1 }
            let improvement = current - next
            current = next
            if improvement <= 1e-16 * max(1, current) && gradient.map(abs).max()! < 1e-8 { break }
        }
        guard theta[0] > 0, theta[0].isFinite else {
            throw ReliabilityError.notIdentifiable("the fitted inverse temperature is \(theta[0]) ≤ 0: the logits rank the labels worse than chance")
        }
        temperature = 1 / theta[0]
        // Biases are defined up to a constant: report them with mean 0.
        let mean = theta.dropFirst().reduce(0, +) / Double(c)
        bias = theta.dropFirst().map { $0 - mean }
        nllBefore = before
        nllAfter = current
        self.iterations = iterations
    }

    /// The calibrated logits z/T + b.
    public func apply(_ logits: Matrix<Float>) -> Matrix<Float> {
        var out = logits
        for i in 0..<logits.rows { for k in 0..<logits.columns { out[i, k] = Float(Double(logits[i, k]) / temperature + bias[k]) } }
        return out
    }
}
