import FaultlineLinalg
import Foundation

/// The Mahalanobis score with one covariance per class (untied; the quadratic-discriminant model):
/// min_k (x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k), or with `includeLogDeterminant` the class-conditional Gaussian
/// negative log-likelihood up to constants, min_k [(x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k) + log det Σ_k]
/// (higher = more out-of-distribution in both).
///
/// Each Σ_k (normalised by n_k, optionally shrunk towards (tr Σ_k/d)·I) is factored in Double and kept
/// as W_k = L_k⁻¹ in float32 with its centre c_k = μ_k (Double); scoring forms x − μ_k in Double, rounds
/// it once and whitens it with one TRMM per class and block of rows, so the distance ‖W_k(x − μ_k)‖² is
/// formed from differences (translation invariant, no cancellation) and costs K times the tied detector:
/// K·N·d² flops. Each class needs more informative samples than dimensions unless shrunk; the error
/// names the class.
public struct PerClassMahalanobisDetector: Sendable {
    /// W_k = L_k⁻¹, one d × d lower-triangular matrix per class.
    public let whitenings: [Matrix<Float>]
    /// c_k, the point class k's features are centred on before whitening: μ_k (zeros for detector files
    /// written before centres existed).
    public let centres: [[Double]]
    /// m_k = W_k·(μ_k − c_k) as the single row of a 1 × d matrix per class: zero for a fitted detector,
    /// W_k·μ_k in files written before centres existed.
    public let whitenedMeans: [Matrix<Float>]
    /// log det Σ_k (after shrinkage).
    public let logDeterminants: [Double]
    /// The shrinkage α applied to every class covariance (0: none).
    public let shrinkage: Double
    /// Whether the score adds log det Σ_k (the Gaussian negative log-likelihood up to constants) or is the untied Mahalanobis distance alone.
    public let includeLogDeterminant: Bool

    /// Throws `ShiftError.invalidInput` when the fit kept no per-class covariances or a class is empty,
    /// `ShiftError.singular` naming the class whose covariance is not positive definite.
    public init(_ fit: GaussianFit, shrinkage: Double = 0, includeLogDeterminant: Bool = false) throws {
        guard shrinkage >= 0 && shrinkage < 1 else { throw ShiftError.invalidInput("shrinkage \(shrinkage) must lie in [0, 1)") }
        let means = fit.means
        var whitenings: [Matrix<Float>] = [], logDeterminants: [Double] = []
        for k in 0..<fit.classes {
            let raw = try fit.classCovariance(k)
            let sigma = shrinkage > 0 ? CovarianceShrinkage.shrunk(raw, by: shrinkage) : raw
            let (l, w) = try MahalanobisDetector.whiteningFactors(sigma, of: "the covariance of class \(k) (\(fit.counts[k]) samples, \(fit.dimension) dimensions)")
            whitenings.append(w.converted(to: Float.self))
            logDeterminants.append((0..<fit.dimension).reduce(0.0) { $0 + 2 * Foundation.log(l[$1, $1]) })
        }
        self.init(whitenings: whitenings, centres: (0..<fit.classes).map { Array(means.row($0)) },
                  whitenedMeans: [Matrix<Float>](repeating: Matrix(rows: 1, columns: fit.dimension), count: fit.classes),
                  logDeterminants: logDeterminants,
                  shrinkage: shrinkage, includeLogDeterminant: includeLogDeterminant)
    }

    /// A detector from its stored parts (see `DetectorFile`).
    init(whitenings: [Matrix<Float>], centres: [[Double]], whitenedMeans: [Matrix<Float>], logDeterminants: [Double], shrinkage: Double,
         includeLogDeterminant: Bool) {
        self.whitenings = whitenings
        self.centres = centres
        self.whitenedMeans = whitenedMeans
        self.logDeterminants = logDeterminants
        self.shrinkage = shrinkage
        self.includeLogDeterminant = includeLogDeterminant
    }

    /// Features per row.
    public var dimension: Int { whitenings[0].rows }
    /// The number of classes.
    public var classes: Int { whitenings.count }

    /// Scores every row of `x`. Throws on a dimension mismatch or non-finite features (detected from
    /// the distances, which NaN and ±∞ make non-finite: no separate scan of the input). Per class, blocks
    /// of `blockRows` rows are whitened in parallel (`MahalanobisDetector.whitenedProduct`), so the scores
    /// are bit-identical for any thread count; `backend` runs the TRMMs on that backend.
    public func score(_ x: Matrix<Float>, blockRows: Int = Linalg.productBlockRows, backend: Backend? = nil) throws -> [Float] {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the detector \(dimension)") }
        var scores = [Float](repeating: .infinity, count: x.rows)
        let d = dimension
        scores.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            for k in 0..<classes {
                let offset = includeLogDeterminant ? Float(logDeterminants[k]) : 0
                whitenedMeans[k].withUnsafeBufferPointer { mean in
                    let m = mean.baseAddress!
                    // No product: the epilogue gets the whitened block alone.
                    MahalanobisDetector.whitenedProduct(x, by: whitenings[k], centre: centres[k], against: MatrixPointer(m, rows: 0, columns: d),
                                                        blockRows: blockRows, backend: backend) { tile in
                        for r in 0..<tile.rows.count {
                            let i = tile.rows.lowerBound + r
                            let distance = MahalanobisDetector.squaredDistance(tile.a.base + r * tile.a.rowStride, m, d)
                            // NaN never wins a min: keep it so the check below names the row.
                            o[i] = distance.isNaN ? .nan : min(o[i], distance + offset)
                        }
                    }
                }
            }
        }
        try MahalanobisDetector.requireFinite(scores)
        return scores
    }
}
