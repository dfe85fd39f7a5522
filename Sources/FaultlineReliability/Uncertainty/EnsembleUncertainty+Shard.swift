import FaultlineLinalg

extension EnsembleUncertainty {
    /// The values of no samples (a rank of a distributed job that holds no rows of C classes): every
    /// per-sample array empty, the mean 0 × C.
    public static func empty(classes: Int) -> EnsembleUncertainty {
        EnsembleUncertainty(predictiveEntropy: [], expectedEntropy: [], mutualInformation: [], meanVariance: [], variationRatio: [], prediction: [],
                            mean: Matrix(rows: 0, columns: classes))
    }
}
