import FaultlineLinalg
import Foundation

/// The Mahalanobis score with one covariance per class (untied; the quadratic-discriminant model):
/// min_k (x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k), or with `includeLogDeterminant` the class-conditional Gaussian
/// negative log-likelihood up to constants, min_k [(x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k) + log det Σ_k]
/// (higher = more out-of-distribution in both).
///
/// Each Σ_k (normalised by n_k, optionally shrunk towards (tr Σ_k/d)·I) is factored in Double and kept
/// as W_k = L_k⁻¹ in float32; scoring is one TRMM per class and block of rows, so it costs K times the
/// tied detector: K·N·d² flops. Each class needs more informative samples than dimensions unless
/// shrunk; the error names the class.
public struct PerClassMahalanobisDetector: Sendable {
    /// W_k = L_k⁻¹, one d × d lower-triangular matrix per class.
    public let whitenings: [Matrix<Float>]
    /// m_k = W_k·μ_k as the single row of a 1 × d matrix per class.
    public let whitenedMeans: [Matrix<Float>]
    /// log det Σ_k (after shrinkage).
    public let logDeterminants: [Double]
    public let shrinkage: Double
    public let includeLogDeterminant: Bool

    /// Throws `ShiftError.invalidInput` when the fit kept no per-class covariances or a class is empty,
    /// `ShiftError.singular` naming the class whose covariance is not positive definite.
    public init(_ fit: GaussianFit, shrinkage: Double = 0, includeLogDeterminant: Bool = false) throws {
        guard shrinkage >= 0 && shrinkage < 1 else { throw ShiftError.invalidInput("shrinkage \(shrinkage) must lie in [0, 1)") }
        let means = fit.means
        var whitenings: [Matrix<Float>] = [], whitenedMeans: [Matrix<Float>] = [], logDeterminants: [Double] = []
        for k in 0..<fit.classes {
            let raw = try fit.classCovariance(k)
            let sigma = shrinkage > 0 ? CovarianceShrinkage.shrunk(raw, by: shrinkage) : raw
            let (l, w) = try MahalanobisDetector.whiteningFactors(sigma, of: "the covariance of class \(k) (\(fit.counts[k]) samples, \(fit.dimension) dimensions)")
            whitenings.append(w.converted(to: Float.self))
            whitenedMeans.append(try Linalg.matmul(means.sliceRows(k..<(k + 1)), w, transB: .transposed).converted(to: Float.self))
            logDeterminants.append((0..<fit.dimension).reduce(0.0) { $0 + 2 * Foundation.log(l[$1, $1]) })
        }
        self.init(whitenings: whitenings, whitenedMeans: whitenedMeans, logDeterminants: logDeterminants,
                  shrinkage: shrinkage, includeLogDeterminant: includeLogDeterminant)
    }

    /// A detector from its stored parts (see `DetectorFile`).
    init(whitenings: [Matrix<Float>], whitenedMeans: [Matrix<Float>], logDeterminants: [Double], shrinkage: Double, includeLogDeterminant: Bool) {
        self.whitenings = whitenings
        self.whitenedMeans = whitenedMeans
        self.logDeterminants = logDeterminants
        self.shrinkage = shrinkage
        self.includeLogDeterminant = includeLogDeterminant
    }

    public var dimension: Int { whitenings[0].rows }
    public var classes: Int { whitenings.count }

    /// Scores every row of `x`. Throws on a dimension mismatch or non-finite features (detected from
    /// the distances, which NaN and ±∞ make non-finite: no separate scan of the input).
    public func score(_ x: Matrix<Float>, blockRows: Int = 4096) throws -> [Float] {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the detector \(dimension)") }
        var scores = [Float](repeating: .infinity, count: x.rows)
        for k in 0..<classes {
            let mean = whitenedMeans[k]
            let norm = mean.withUnsafeBufferPointer { $0.reduce(Float(0)) { $0 + $1 * $1 } }
            let offset = includeLogDeterminant ? Float(logDeterminants[k]) : 0
            try MahalanobisDetector.forEachWhitenedBlock(x, by: whitenings[k], blockRows: blockRows) { start, z in
                let distances = try MahalanobisDetector.squaredDistances(z, to: mean, meanNorms: [norm])
                distances.withUnsafeBufferPointer { pd in
                    for r in 0..<z.rows { scores[start + r] = min(scores[start + r], pd[r] + offset) }
                }
            }
        }
        try MahalanobisDetector.requireFinite(scores)
        return scores
    }
}
