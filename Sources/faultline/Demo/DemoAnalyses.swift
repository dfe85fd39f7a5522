import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import Foundation

extension DemoCommand {
    /// Shifted copies of the test set and how well each score separates them from the clean test set:
    /// Mahalanobis on the inputs (tied covariance fitted on the training split, shrinkage 0.01: the
    /// corner pixels are constant), maximum softmax probability and energy of member 1, and the ensemble's
    /// mutual information.
    /// Rows of the shift table, the ROC curves of the Mahalanobis score per shift (subsampled), the
    /// fitted detector, and the shifted inputs (for the failure attribution under shift).
    struct ShiftAnalysis {
        var rows: [ShiftRow]
        var roc: [String: [[Double]]]
        var detector: MahalanobisDetector
        var shifted: [(name: String, x: Matrix<Float>)]
    }

    func shiftAnalysis(models: [Sequential], split: LabeledDataset.Split) throws -> ShiftAnalysis {
        var fit = GaussianFit(dimension: 64, classes: 10)
        try fit.update(split.train.features, labels: split.train.labels)
        let detector = try MahalanobisDetector(fit, shrinkage: 0.01)
        let test = split.test
        var rng = Philox(seed: seed, stream: 99)
        let noisy = test.features.map { min(max($0 + Float(0.3 * rng.normal()), 0), 1) }
        var rotated = test.features
        for i in 0..<test.count { for r in 0..<8 { for c in 0..<8 { rotated[i, r * 8 + c] = test.features[i, (7 - c) * 8 + r] } } }
        func scores(_ x: Matrix<Float>) throws -> (maha: [Float], msp: [Float], energy: [Float], mi: [Float], accuracy: Double) {
            let probabilities = try models.map { try Linalg.softmaxRows($0.logits(x)) }
            let u = try EnsembleUncertainty.compute(members: probabilities.map { $0.normalizedRows() })
            let logits = try models[0].logits(x)
            let lse = try Linalg.reduceRows(logits, .logSumExp)
            let predicted = try Linalg.rowArgmax(u.mean)
            return (try detector.score(x), (0..<x.rows).map { -probabilities[0].row($0).max()! }, lse.map { -$0 },  // energy = −logsumexp
                    u.mutualInformation.map(Float.init), Double(zip(predicted, test.labels).filter { $0 == $1 }.count) / Double(x.rows))
        }
        let clean = try scores(test.features)
        let shifted = [("Gaussian noise σ = 0.3", noisy), ("rotated 90°", rotated)]
        var roc: [String: [[Double]]] = [:]
        let rows = try shifted.map { name, x in
            let s = try scores(x)
            let maha = try DetectionMetrics.compute(inDistribution: clean.maha, outOfDistribution: s.maha)
            roc[name] = StandardFigures.subsample(try DetectionMetrics.rocCurve(inDistribution: clean.maha, outOfDistribution: s.maha).map { [$0.fpr, $0.tpr] })
            return ShiftRow(shift: name, ensembleAccuracy: s.accuracy, mahalanobisAUROC: maha.auroc, mahalanobisFPR95: maha.fprAt95TPR,
                            mspAUROC: try DetectionMetrics.compute(inDistribution: clean.msp, outOfDistribution: s.msp).auroc,
                            energyAUROC: try DetectionMetrics.compute(inDistribution: clean.energy, outOfDistribution: s.energy).auroc,
                            mutualInformationAUROC: try DetectionMetrics.compute(inDistribution: clean.mi, outOfDistribution: s.mi).auroc)
        }
        return ShiftAnalysis(rows: rows, roc: roc, detector: detector, shifted: shifted.map { (name: $0.0, x: $0.1) })
    }

    /// Robust accuracy of member 1 at each ε under FGSM, PGD-20, APGD-CE (100 steps) and the
    /// AutoAttack-style ensemble (APGD-CE, APGD-T, Square with 1,000 queries), next to the share of
    /// test samples CROWN certifies (a lower bound on the true robust accuracy).
    func robustnessAnalysis(_ model: Sequential, _ test: LabeledDataset, bar: ProgressBar) throws -> [AttackRow] {
        let bounds = try BoundPropagation(model)
        return try Self.budgets.enumerated().map { k, e in
            let fgsm = try GradientAttack.fgsm(epsilon: e).run(model, test.features, labels: test.labels)
            var pgd = GradientAttack.pgd(epsilon: e, stepSize: max(2.5 * e / 20, 1e-4), steps: 20, seed: seed)
            pgd.earlyStop = true
            let p = try pgd.run(model, test.features, labels: test.labels)
            var apgd = APGDAttack(epsilon: e)
            (apgd.seed, apgd.earlyStop) = (seed, true)
            let a = try apgd.run(model, test.features, labels: test.labels)
            var ensemble = AutoAttack.standard(epsilon: e, classes: 10, seed: seed)
            ensemble.attacks = ensemble.attacks.map { member in
                if var square = member as? SquareAttack { square.queries = 1000; return square }
                if var apgd = member as? APGDAttack { apgd.earlyStop = true; return apgd }
                return member
            }
            let auto = try ensemble.run(model, test.features, labels: test.labels)
            let certified = try bounds.certify(test.features, labels: test.labels, region: .init(epsilon: e), method: .crown)
            bar.update(k + 1)
            return AttackRow(epsilon: e, fgsm: fgsm.robustAccuracy, pgd20: p.robustAccuracy, apgdCE: a.robustAccuracy,
                             autoAttack: auto.robustAccuracy, certifiedCROWN: Double(certified.filter { $0 }.count) / Double(test.count))
        }
    }

    /// A model trained without one class, and how well each score flags that class at test time.
    func heldOutClassAnalysis(split: LabeledDataset.Split, heldOut: Int = 9) throws -> HeldOutRow {
        let keep = split.train.labels.indices.filter { split.train.labels[$0] != heldOut }
        let train = split.train.subset(keep)
        var model = try ModelSpec.build(Self.spec, seed: seed &+ 100)
        try model.train(on: train, options: TrainingOptions(epochs: 30, batchSize: 32, optimizer: .adam(learningRate: 2e-3), seed: seed &+ 100))
        var fit = GaussianFit(dimension: 64, classes: 10)
        try fit.update(train.features, labels: train.labels)
        // Class 9 has no samples in this fit: rebuild it over the nine seen classes (labels 0…8).
        var seen = GaussianFit(dimension: 64, classes: 9)
        try seen.update(train.features, labels: train.labels.map { $0 > heldOut ? $0 - 1 : $0 })
        let detector = try MahalanobisDetector(seen, shrinkage: 0.01)
        let knn = try KNNDetector(reference: train.features, k: 10)
        let test = split.test
        let inside = test.labels.indices.filter { test.labels[$0] != heldOut }, outside = test.labels.indices.filter { test.labels[$0] == heldOut }
        let logits = try model.logits(test.features)
        func auroc(_ score: [Float]) throws -> Double {
            try DetectionMetrics.compute(inDistribution: inside.map { score[$0] }, outOfDistribution: outside.map { score[$0] }).auroc
        }
        return HeldOutRow(heldOutClass: heldOut, mahalanobisAUROC: try auroc(detector.score(test.features)), knnAUROC: try auroc(knn.score(test.features)),
                          mspAUROC: try auroc(LogitScores.maxSoftmax(logits)), energyAUROC: try auroc(LogitScores.energy(logits)))
    }

    /// Empirical coverage and mean set size of split conformal (LAC) at several α.
    static func conformalSweep(calibration: Matrix<Float>, calibrationLabels: [Int], test: Matrix<Float>, labels: [Int], seed: UInt64) throws -> [ConformalRow] {
        try [0.02, 0.05, 0.1, 0.2, 0.3].map { alpha in
            let cp = try SplitConformal(calibration: calibration, labels: calibrationLabels, alpha: alpha, score: .lac, seed: seed)
            let r = SplitConformal.evaluate(sets: try cp.predict(test), labels: labels)
            return ConformalRow(alpha: alpha, coverage: r.coverage, meanSetSize: r.meanSize)
        }
    }

    /// Median over correctly classified test samples of the smallest ε (bisection, 8 rounds in [0, 0.5])
    /// at which PGD-20 with early stopping breaks the sample; nil if more than half are never broken.
    func minimalEpsilon(_ model: Sequential, _ test: LabeledDataset) throws -> Float? {
        let minimal = try RobustnessCurve.minimalEpsilon(model, test.features, labels: test.labels, upper: 0.5) { e in
            var a = GradientAttack.pgd(epsilon: e, stepSize: 2.5 * e / 20, steps: 20, seed: seed)
            a.earlyStop = true
            return a
        }
        let correct = minimal.filter { $0 != 0 }  // 0 marks samples misclassified without perturbation
        let sorted = correct.map { $0 ?? .infinity }.sorted()
        guard !sorted.isEmpty, sorted[sorted.count / 2].isFinite else { return nil }
        return sorted[sorted.count / 2]
    }
}
