import FaultlineIO
import FaultlineNN

/// The main job on the bundled digits (`faultline demo`, `scripts/demo`): a stratified 60/20/20 split of
/// the 8×8 digits; an ensemble of MLPs (`spec`, with dropout) trained with Adam and early stopping
/// (`DeepEnsemble.train`); then `FailureReport.build` of the ensemble with every optional analysis —
/// Monte Carlo dropout, FGSM and the AutoAttack-style ensemble beside PGD/APGD, the median minimal ε —
/// on Gaussian-noise (σ = 0.1 and 0.3) and 90°-rotated copies of the test set, plus the held-out-class study
/// (class 9, a model trained without it). Deterministic for a seed.
///
/// Cost: about 10 s on 2 cores for 5 members (training ~4 s, the analysis the rest).
public enum DigitsStudy {
    /// The members' architecture.
    public static let spec = "linear:64-128,relu,dropout:0.2,linear:128-128,relu,linear:128-10"
    /// Epochs per member (early stopping with patience 6 on the calibration split usually ends sooner).
    public static let epochs = 40

    /// Runs the study. `training(done, total)` counts member-epochs (`members · epochs`); `analysis` hears the
    /// report's progress (its fractions scaled to 0.9) and then the held-out-class study as a sixth stage.
    /// Throws what training and `FailureReport.build` throw (members must be ≥ 1).
    public static func run(seed: UInt64 = 0, members: Int = 5, training: ((Int, Int) -> Void)? = nil,
                           analysis: ((FailureReport.Progress) -> Void)? = nil) throws -> FailureReport {
        guard members >= 1 else { throw AnalysisError.invalidInput("the ensemble needs at least one member") }
        let split = try BundledDatasets.digits().stratifiedSplit(seed: seed)
        let options = TrainingOptions(epochs: epochs, batchSize: 32, optimizer: .adam(learningRate: 2e-3), seed: seed, patience: 6)
        let ensemble = try DeepEnsemble.train(spec: spec, count: members, on: split.train, validation: split.calibration,
                                              options: options, seed: seed) { member, epoch, _ in training?(member * epochs + epoch + 1, members * epochs) }
        training?(members * epochs, members * epochs)
        let data = try studyData(split, seed: seed)
        let test = split.test
        let stages = FailureReport.stages.count + 1
        var report = try FailureReport.build(ensemble: ensemble, data: data, options: reportOptions(seed: seed)) { p in
            var scaled = p
            (scaled.stageCount, scaled.fraction) = (stages, 0.9 * p.fraction)
            analysis?(scaled)
        }
        let study = FailureReport.Progress(stage: "held-out class", stageNumber: stages, stageCount: stages,
                                           step: "training without class 9", stageFraction: 0, fraction: 0.9)
        analysis?(study)
        report.heldOutClass = try HeldOutClassStudy.run(spec: spec, train: split.train, test: test, heldOut: 9,
                                                        training: TrainingOptions(epochs: 30, batchSize: 32, optimizer: .adam(learningRate: 2e-3),
                                                                                  seed: seed &+ 100),
                                                        seed: seed &+ 100)
        analysis?(FailureReport.Progress(stage: study.stage, stageNumber: stages, stageCount: stages, step: "done", stageFraction: 1, fraction: 1))
        return report
    }

    /// The same analysis of a model the caller brings (an ONNX graph from `torch.onnx.export`, a loaded
    /// state_dict) on the same split, shifted sets and report options, without training: the ensemble and
    /// the held-out-class study (both need models trained here) are left out. The model must take the
    /// digits as 64 features (pixel / 16, in [0, 1], row-major 8×8) and give 10 logits; otherwise
    /// `AnalysisError.invalidInput` says what it takes. `analysis` hears the report's progress.
    public static func run(model: some DifferentiableClassifier, seed: UInt64 = 0,
                           analysis: ((FailureReport.Progress) -> Void)? = nil) throws -> FailureReport {
        guard model.inputFeatures == 64, model.outputFeatures == 10 else {
            throw AnalysisError.invalidInput("the digits study needs a model of 64 inputs (8×8 pixels / 16) and 10 classes; "
                                             + "this one (\(model.spec)) takes \(model.inputFeatures) and gives \(model.outputFeatures)")
        }
        let split = try BundledDatasets.digits().stratifiedSplit(seed: seed)
        return try FailureReport.build(model: model, data: studyData(split, seed: seed), options: reportOptions(seed: seed), progress: analysis)
    }

    /// The report's data: the split, Gaussian-noise (σ = 0.1, a mild shift whose detection is not trivial,
    /// and σ = 0.3) and 90°-rotated copies of the test rows.
    static func studyData(_ split: LabeledDataset.Split, seed: UInt64) throws -> FailureReport.Data {
        let image = ImageShape(channels: 1, height: 8, width: 8)
        let test = split.test
        return FailureReport.Data(
            train: split.train, test: test, calibration: split.calibration,
            shifted: [.gaussianNoise(test.features, sigma: 0.1, seed: seed &+ 1, name: "Gaussian noise σ = 0.1", labels: test.labels),
                      .gaussianNoise(test.features, sigma: 0.3, seed: seed, name: "Gaussian noise σ = 0.3", labels: test.labels),
                      try .rotated90(test.features, shape: image, labels: test.labels)],
            imageShape: image, description: "digits (UCI optical recognition of handwritten digits, 8×8, CC BY 4.0)")
    }

    /// The report options of the study: ε grid 0…0.2, attribution ε 0.05, FGSM, AutoAttack (1,000 Square
    /// queries), minimal ε, 20 MC-dropout passes, fixed shrinkage 0.01 (the corner pixels are constant).
    public static func reportOptions(seed: UInt64) -> FailureReport.Options {
        var options = FailureReport.Options()
        options.epsilons = [0, 0.01, 0.02, 0.05, 0.1, 0.2]
        options.attributionEpsilon = 0.05
        (options.fgsm, options.autoAttack, options.squareQueries, options.minimalEpsilon) = (true, true, 1000, true)
        options.monteCarloDropoutPasses = 20
        options.mahalanobisShrinkage = 0.01
        options.seed = seed
        return options
    }
}
