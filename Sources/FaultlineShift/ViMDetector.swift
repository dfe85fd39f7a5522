import FaultlineLinalg

#if canImport(Glibc)
import Glibc
#endif

/// Virtual-logit matching (ViM, Wang et al. 2022) as pytorch-ood's `ViM`, oriented higher = more
/// out-of-distribution: score(f) = α·‖(f − u)·R‖₂ − log Σ_c exp(logit_c), logits = W f + b.
///
/// Fit on in-distribution features: origin u = −W⁺ b (pseudo-inverse through the Cholesky factor of
/// W Wᵀ or Wᵀ W), covariance of f − u divided by n, R = the eigenvectors of its D − `principal`
/// smallest eigenvalues (the residual space), α = mean max logit / mean residual norm over the fit
/// features. Fitting is in Double (one D×D eigendecomposition); scoring is two GEMMs per call.
public struct ViMDetector: Sendable {
    /// W, C × D: the classifier's last layer.
    public let weight: Matrix<Float>  // C × D
    /// b, the last layer's bias (C values).
    public let bias: [Float]
    /// u = −W⁺ b, the origin the features are centred on.
    public let origin: [Float]
    /// R, D × (D − principal): the residual space's basis.
    public let residualBasis: Matrix<Float>  // D × (D − principal)
    /// α = mean max logit / mean residual norm over the fit features.
    public let alpha: Double

    /// A detector from its stored parts (see `DetectorFile`).
    init(weight: Matrix<Float>, bias: [Float], origin: [Float], residualBasis: Matrix<Float>, alpha: Double) {
        (self.weight, self.bias, self.origin, self.residualBasis, self.alpha) = (weight, bias, origin, residualBasis, alpha)
    }

    /// Throws when shapes disagree, `principal` is outside 1..<D, W has dependent rows or columns, or
    /// features are not finite.
    public init(features: Matrix<Float>, weight: Matrix<Float>, bias: [Float], principal: Int) throws {
        let d = weight.columns, c = weight.rows
        guard features.columns == d, bias.count == c else {
            throw ShiftError.invalidInput("features have \(features.columns) dimensions and the bias \(bias.count) entries; W is \(c)×\(d)")
        }
        guard principal >= 1, principal < d else { throw ShiftError.invalidInput("principal dimension \(principal) must lie in 1..<\(d)") }
        guard features.rows > 0, features.isFinite, weight.isFinite else { throw ShiftError.invalidInput("features or weights are empty or not finite") }
        let w = weight.converted(to: Double.self)
        let b = try Matrix<Double>(rows: c, columns: 1, elements: bias.map(Double.init))
        // u = −W⁺ b: W⁺ = Wᵀ (W Wᵀ)⁻¹ for C ≤ D, (Wᵀ W)⁻¹ Wᵀ otherwise.
        let u: Matrix<Double>
        do {
            if c <= d {
                let gram = try Linalg.matmul(w, w, transB: .transposed)
                u = try Linalg.matmul(w, Linalg.choleskySolve(Linalg.cholesky(gram), b), transA: .transposed)
            } else {
                let gram = try Linalg.matmul(w, w, transA: .transposed)
                u = try Linalg.choleskySolve(Linalg.cholesky(gram), Linalg.matmul(w, b, transA: .transposed))
            }
        } catch is LinalgError {
            throw ShiftError.singular("the last layer's weight matrix is rank deficient; ViM needs W with independent rows (or columns)")
        }
        let origin = u.elements.map { -$0 }
        var centred = features.converted(to: Double.self)
        centred.withUnsafeMutableBufferPointer { p in
            for i in 0..<features.rows { for j in 0..<d { p[i * d + j] -= origin[j] } }
        }
        let covariance = try Linalg.matmul(centred, centred, transA: .transposed).map { $0 / Double(features.rows) }
        let eigen = try Linalg.symmetricEigen(covariance)  // ascending
        var basis = Matrix<Double>(rows: d, columns: d - principal)
        for i in 0..<d { for j in 0..<(d - principal) { basis[i, j] = eigen.vectors[i, j] } }
        let residual = try Linalg.matmul(centred, basis)
        var meanNorm = 0.0
        for i in 0..<features.rows { meanNorm += residual.row(i).reduce(0) { $0 + $1 * $1 }.squareRoot() }
        meanNorm /= Double(features.rows)
        let logits = try Linalg.matmul(features.converted(to: Double.self), w, transB: .transposed)
        var meanMax = 0.0
        for i in 0..<features.rows { meanMax += (0..<c).map { logits[i, $0] + Double(bias[$0]) }.max()! }
        meanMax /= Double(features.rows)
        guard meanNorm > 0 else { throw ShiftError.singular("the fit features have no residual outside the principal space; lower `principal`") }
        self.weight = weight
        self.bias = bias
        self.origin = origin.map(Float.init)
        residualBasis = basis.converted(to: Float.self)
        alpha = meanMax / meanNorm
    }

    /// Scores every row of `features`. Throws on a dimension mismatch or non-finite features.
    public func score(_ features: Matrix<Float>) throws -> [Float] {
        let d = weight.columns, c = weight.rows
        guard features.columns == d else { throw ShiftError.invalidInput("features have \(features.columns) dimensions, the detector \(d)") }
        guard features.isFinite else { throw ShiftError.invalidInput("features contain NaN or infinite values") }
        let logits = try Linalg.matmul(features, weight, transB: .transposed)
        var centred = features
        centred.withUnsafeMutableBufferPointer { p in
            for i in 0..<features.rows { for j in 0..<d { p[i * d + j] -= origin[j] } }
        }
        let residual = try Linalg.matmul(centred, residualBasis)
        return (0..<features.rows).map { i in
            let z = (0..<c).map { Double(logits[i, $0]) + Double(bias[$0]) }
            let m = z.max()!
            let energy = m + log(z.reduce(0.0) { $0 + exp($1 - m) })
            let norm = residual.row(i).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return Float(alpha * norm - energy)
        }
    }
}
