import FaultlineLinalg

extension DetectorFile.Detector {
    /// The detectors `fit` builds, by their command-line names.
    public enum Kind: String, CaseIterable, Sendable {
        /// Tied Mahalanobis (`mahalanobis`), per-class covariances (`per-class`), relative Mahalanobis (`relative`), k nearest neighbours (`knn`).
        case mahalanobis, perClass = "per-class", relative, knn
    }

    /// How the covariance of a Mahalanobis detector is shrunk towards a scaled identity.
    public enum Shrinkage: Sendable, Equatable {
        /// Ledoit–Wolf's estimate (tied detector only; per class it means no shrinkage, as scikit-learn's
        /// per-class `EmpiricalCovariance`).
        case ledoitWolf
        /// The OAS estimate (tied and relative detectors).
        case oas
        /// A fixed coefficient in [0, 1).
        case fixed(Double)
    }

    /// Fits a detector on training features (and labels, for the Mahalanobis family): the tied
    /// Mahalanobis detector, the per-class one (with `logDeterminant`, log det Σ_k is added to each class's
    /// distance), the relative one (the class distance minus the pooled background's; its shrinkage is
    /// capped at 1 − 10⁻⁶) or KNN on the reference rows with `k` neighbours. The class count is
    /// max(label) + 1; the labels were checked by the caller against its own bound.
    /// - Accuracy/cost: those of `GaussianFit` (N·d²/2 multiply-adds) and of the detector's factorisation.
    /// - Throws: `ShiftError.invalidInput` for missing or mismatched labels, k outside 1…N, a shrinkage the
    ///   detector does not take, non-finite features; the detectors' `ShiftError.singular`.
    public static func fit(_ kind: Kind, features x: Matrix<Float>, labels: [Int]?, shrinkage: Shrinkage = .ledoitWolf,
                           accumulation: GaussianFit.Accumulation = .float64, logDeterminant: Bool = false, k: Int = 50) throws -> Self {
        if kind == .knn {
            guard k >= 1 && k <= x.rows else { throw ShiftError.invalidInput("k = \(k) neighbours needs 1 ≤ k ≤ \(x.rows) reference rows") }
            return .knn(try KNNDetector(reference: x, k: k))
        }
        guard let y = labels else { throw ShiftError.invalidInput("the \(kind.rawValue) detector needs labels") }
        guard y.count == x.rows else { throw ShiftError.invalidInput("\(x.rows) feature rows but \(y.count) labels") }
        if case .fixed(let s) = shrinkage, !(s >= 0 && s < 1) { throw ShiftError.invalidInput("the shrinkage \(s) must lie in [0, 1)") }
        var fit = GaussianFit(dimension: x.columns, classes: (y.max() ?? 0) + 1, accumulation: accumulation, perClassCovariance: kind == .perClass)
        try fit.update(x, labels: y)
        return try detector(kind, fit: fit, shrinkage: shrinkage, logDeterminant: logDeterminant) { try .ledoitWolf(fit, x: x, labels: y) }
    }

    /// The detector of `kind` from a finished fit (one process's or a job's merged one), with the
    /// shrinkage rule of `fit`; `ledoitWolf` builds the tied detector with Ledoit–Wolf shrinkage (it needs
    /// the rows' fourth moment, which the caller sums over its rows).
    static func detector(_ kind: Kind, fit: GaussianFit, shrinkage: Shrinkage, logDeterminant: Bool,
                         ledoitWolf: () throws -> MahalanobisDetector) throws -> Self {
        switch (kind, shrinkage) {
        case (.mahalanobis, .ledoitWolf): return .mahalanobis(try ledoitWolf())
        case (.mahalanobis, .oas): return .mahalanobis(try .oas(fit))
        case (.mahalanobis, .fixed(let s)): return .mahalanobis(try MahalanobisDetector(fit, shrinkage: s))
        case (.perClass, .ledoitWolf), (.perClass, .fixed):
            let s = if case .fixed(let s) = shrinkage { s } else { 0.0 }
            return .perClassMahalanobis(try PerClassMahalanobisDetector(fit, shrinkage: s, includeLogDeterminant: logDeterminant))
        case (.relative, .oas), (.relative, .fixed):
            let s = if case .fixed(let s) = shrinkage { s } else { CovarianceShrinkage.oas(covariance: fit.covariance, samples: fit.total) }
            return .relativeMahalanobis(try RelativeMahalanobisDetector(fit, shrinkage: min(s, 0.999_999)))
        default:
            throw ShiftError.invalidInput("the \(kind.rawValue) detector does not take \(shrinkage) shrinkage (per-class: a number; relative: oas or a number)")
        }
    }
}
