import FaultlineLinalg

extension DetectorFile.Detector {
    /// `fit` on the rows of every rank of a job, on every rank: rank r passes its shard of the training
    /// features and labels (any contiguous or non-contiguous split: the fit is a sum over rows). Each rank
    /// fits its rows, the fits are merged with `GaussianFit.allMerged` (one state per rank sent: O(C·d + d²)
    /// doubles, independent of N), and every rank builds the same detector; Ledoit–Wolf's fourth moment is
    /// summed over the ranks in rank order with the merged means. Equal to the one-process `fit` up to
    /// rounding (fit ≤ 1e-12 relative; float32 scores tested ≤ 1e-5 relative). The class count is max(label) + 1
    /// over all ranks. KNN keeps every reference row and is not distributed.
    /// - Throws: `RankFailure` on every rank when a rank's shard is invalid (labels, non-finite features,
    ///   dimension); `ShiftError` as `fit` (KNN, shrinkage, singular covariance); `CommunicatorError`.
    public static func fit(_ kind: Kind, shard x: Matrix<Float>, labels: [Int]?, shrinkage: Shrinkage = .ledoitWolf,
                           accumulation: GaussianFit.Accumulation = .float64, logDeterminant: Bool = false,
                           communicator: some Communicator) throws -> Self {
        guard kind != .knn else { throw ShiftError.invalidInput("the knn detector keeps every reference row and is not distributed; fit it in one process") }
        guard let y = labels else { throw ShiftError.invalidInput("the \(kind.rawValue) detector needs labels") }
        if case .fixed(let s) = shrinkage, !(s >= 0 && s < 1) { throw ShiftError.invalidInput("the shrinkage \(s) must lie in [0, 1)") }
        let largest = try communicator.agree { () -> Int in
            guard y.count == x.rows else { throw ShiftError.invalidInput("\(x.rows) feature rows but \(y.count) labels") }
            if let bad = y.firstIndex(where: { $0 < 0 }) { throw ShiftError.invalidInput("label \(y[bad]) at row \(bad) of this rank is negative") }
            return y.max() ?? 0
        }
        let shape = try communicator.allreduce([largest, x.columns, -x.columns], .max)
        guard shape[1] == -shape[2] else { throw ShiftError.invalidInput("the ranks' features have different dimensions (\(-shape[2])…\(shape[1]))") }
        var fit = GaussianFit(dimension: x.columns, classes: shape[0] + 1, accumulation: accumulation, perClassCovariance: kind == .perClass)
        try communicator.agree { try fit.update(x, labels: y) }
        fit = try fit.allMerged(over: communicator)
        return try detector(kind, fit: fit, shrinkage: shrinkage, logDeterminant: logDeterminant) {
            let means = fit.means, d = fit.dimension
            var fourth = 0.0
            for i in 0..<x.rows {
                var norm = 0.0
                for j in 0..<d { let r = Double(x[i, j]) - means[y[i], j]; norm += r * r }
                fourth += norm * norm
            }
            let total = try communicator.allgatherv([fourth]).reduce(0, +)
            let s = CovarianceShrinkage.ledoitWolf(covariance: fit.covariance, samples: fit.total, fourthMoment: total)
            return try MahalanobisDetector(fit, shrinkage: min(s, 0.999_999))
        }
    }
}
