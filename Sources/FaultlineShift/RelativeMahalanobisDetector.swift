import FaultlineLinalg

/// Relative Mahalanobis distance (Ren et al. 2021): min_k MD_k(x) − MD_0(x), where MD_0 is the
/// distance under one background Gaussian fitted to all classes pooled (mean of all rows, covariance
/// about it normalised by n). Higher = more out-of-distribution.
///
/// pytorch-ood's `RMD` leaves its background covariance unnormalised (Σ (z − μ)(z − μ)ᵀ + 1e-6·I),
/// which scales MD_0 by 1/n; we normalise by n like the class covariance.
public struct RelativeMahalanobisDetector: Sendable {
    /// The tied-covariance detector of the classes (min_k MD_k).
    public let classes: MahalanobisDetector
    /// The detector of the background Gaussian (MD_0).
    public let background: MahalanobisDetector

    /// Both covariances shrunk by the same fixed `shrinkage`. Throws like `MahalanobisDetector`.
    public init(_ fit: GaussianFit, shrinkage: Double = 0) throws {
        classes = try MahalanobisDetector(fit, shrinkage: shrinkage)
        background = try MahalanobisDetector(fit.pooled(), shrinkage: shrinkage)
    }

    init(classes: MahalanobisDetector, background: MahalanobisDetector) {
        self.classes = classes
        self.background = background
    }

    /// min_k MD_k(x) − MD_0(x) per row. Throws what `MahalanobisDetector.score` throws (a width other than the fit's, non-finite features).
    public func score(_ x: Matrix<Float>) throws -> [Float] {
        zip(try classes.score(x), try background.score(x)).map { $0 - $1 }
    }
}
