import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import FaultlineShift

/// Out-of-distribution detection of a class the model never saw: a model of `spec` is trained without
/// one class, then Mahalanobis (fitted on the seen classes), KNN (k = 10 on the training rows), MSP and
/// energy scores tell that class's test rows from the others (AUROC, 1 = perfect); the Mahalanobis ROC
/// curve is kept for the report's ROC plot (`HeldOutClassRow.roc`).
public enum HeldOutClassStudy {
    /// - Throws: `AnalysisError.invalidInput` when `heldOut` is not a class of the data or leaves no
    ///   test row on either side; what training and the detectors throw.
    public static func run(spec: String, train: LabeledDataset, test: LabeledDataset, heldOut: Int, training: TrainingOptions,
                           seed: UInt64, shrinkage: Double = 0.01) throws -> FailureReport.HeldOutClassRow {
        guard (0..<train.classCount).contains(heldOut) else {
            throw AnalysisError.invalidInput("held-out class \(heldOut) is not a class of the data (0..<\(train.classCount))")
        }
        let kept = train.subset(train.labels.indices.filter { train.labels[$0] != heldOut })
        var model = try ModelSpec.build(spec, seed: seed)
        try model.train(on: kept, options: training)
        // The Gaussian is fitted over the seen classes only, renumbered 0..<classes-1.
        var fit = GaussianFit(dimension: kept.features.columns, classes: train.classCount - 1)
        try fit.update(kept.features, labels: kept.labels.map { $0 > heldOut ? $0 - 1 : $0 })
        let detector = try MahalanobisDetector(fit, shrinkage: shrinkage)
        let knn = try KNNDetector(reference: kept.features, k: 10)
        let inside = test.labels.indices.filter { test.labels[$0] != heldOut }, outside = test.labels.indices.filter { test.labels[$0] == heldOut }
        guard !inside.isEmpty, !outside.isEmpty else { throw AnalysisError.invalidInput("the test set needs rows of class \(heldOut) and of others") }
        let logits = try model.logits(test.features)
        func auroc(_ score: [Float]) throws -> Double {
            try DetectionMetrics.compute(inDistribution: inside.map { score[$0] }, outOfDistribution: outside.map { score[$0] }).auroc
        }
        let maha = try detector.score(test.features)
        var row = FailureReport.HeldOutClassRow(heldOutClass: heldOut, mahalanobisAUROC: try auroc(maha),
                                                knnAUROC: try auroc(knn.score(test.features)), mspAUROC: try auroc(LogitScores.maxSoftmax(logits)),
                                                energyAUROC: try auroc(LogitScores.energy(logits)))
        row.roc = PlotData.subsample(try DetectionMetrics.rocCurve(inDistribution: inside.map { maha[$0] }, outOfDistribution: outside.map { maha[$0] })
            .map { [$0.fpr, $0.tpr] })
        return row
    }
}
