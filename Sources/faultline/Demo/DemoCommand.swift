import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import Foundation

/// `faultline demo`: the main job on the bundled digits, as far as the kernels exist today.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train a 5-member MLP ensemble on the bundled digits and measure how it fails; write ./faultline-report/.",
        discussion: """
            Steps: stratified 60/20/20 split of the 8×8 digits; five MLPs (64-128-128-10 with dropout) trained with \
            Adam and early stopping; test accuracy of each member and of the ensemble (mean probabilities); \
            calibration (ECE, NLL, Brier) before and after temperature scaling; ensemble uncertainty (entropy, mutual \
            information) on right and wrong predictions; selective prediction (AURC); a Clopper–Pearson interval on the \
            test error; split conformal sets (LAC, α = 0.1) with their coverage and size; robust accuracy of member 1 under FGSM and PGD-20 (L∞) over ε in the [0, 1] pixel scale.
            Shift: Gaussian-noise and 90°-rotated copies of the test set, scored by Mahalanobis distance on the inputs, \
            maximum softmax probability, energy and mutual information (AUROC, FPR@95TPR), with the ensemble's accuracy.
            Robustness: FGSM, PGD-20, APGD-CE and an AutoAttack-style ensemble over ε with CROWN-certified accuracy \
            beside them; accuracy under 8 corruptions × 5 severities; a held-out class. Failure attribution: each \
            test error of member 1 as a reliability or robustness failure, with the thresholds used.
            Writes report.html (self-contained, inline SVG plots), the plots as .svg, report.json (every number, \
            including what the plots draw) and report.txt into --out, atomically (a temporary directory renamed into place).
            """)

    @Option(help: "Report directory.") var out = "faultline-report"
    @Option(help: "Seed of the split, the initialisations and the attacks.") var seed: UInt64 = 0
    @Option(help: "Ensemble members.") var members = 5
    @Flag(help: "No progress output.") var quiet = false

    static let spec = "linear:64-128,relu,dropout:0.2,linear:128-128,relu,linear:128-10"
    static let budgets: [Float] = [0, 0.01, 0.02, 0.05, 0.1, 0.2]
    /// The failure attribution calls a test error "confident" at this top-class probability or more, and a
    /// correct prediction "fragile" when PGD-20 flips it within this ε.
    static let confidentThreshold = 0.9
    static let attributionEpsilon: Float = 0.05

    func run() throws {
        let started = Date()
        let report = try Inputs.guarded("demo") { () -> Report in
            try OptionCheck.count(members, "--members", 1...OptionCheck.Limit.members)
            try OptionCheck.directoryTarget(out, "--out")  // before minutes of training, not after
            let digits = try BundledDatasets.digits()
            let split = digits.stratifiedSplit(seed: seed)
            let bar = ProgressBar("training \(members) members", total: members * 40, quiet: quiet)
            var models: [Sequential] = []
            var results: [MemberResult] = []
            for m in 0..<members {
                var model = try ModelSpec.build(Self.spec, seed: seed &+ UInt64(m))
                let options = TrainingOptions(epochs: 40, batchSize: 32, optimizer: .adam(learningRate: 2e-3), seed: seed &+ UInt64(m), patience: 6)
                let r = try model.train(on: split.train, validation: split.calibration, options: options) { epoch, _ in
                    bar.update(m * 40 + epoch + 1)
                }
                models.append(model)
                results.append(MemberResult(seed: seed &+ UInt64(m), epochs: r.epochs, testAccuracy: try model.accuracy(on: split.test),
                                            trainingSeconds: r.seconds))
            }
            bar.update(members * 40)
            let test = split.test
            let probabilities = try DeepEnsemble(members: models).probabilities(test.features)
            var mean = Matrix<Float>(rows: test.count, columns: 10)
            for p in probabilities { mean = mean.zipMap(p) { $0 + $1 / Float(members) } }
            let ensemblePredictions = try Linalg.rowArgmax(mean)
            let memberPredictions = try probabilities.map { try Linalg.rowArgmax($0) }
            let disagreement = Double((0..<test.count).filter { i in Set(memberPredictions.map { $0[i] }).count > 1 }.count) / Double(test.count)
            let mc = try models[0].monteCarloDropout(test.features, passes: 20, seed: seed)
            let mcPredictions = try mc.map { try Linalg.rowArgmax($0) }
            let deterministic = try models[0].predict(test.features)
            let agreement = Double(mcPredictions.reduce(0) { total, p in total + zip(p, deterministic).filter { $0 == $1 }.count })
                / Double(mcPredictions.count * test.count)

            // Calibration: member 1 before and after temperature scaling fitted on the calibration split,
            // and the ensemble's mean probabilities.
            let memberLogits = try models[0].logits(test.features)
            let temperature = try TemperatureScaling.fit(logits: models[0].logits(split.calibration.features), labels: split.calibration.labels)
            let before = try CalibrationMetrics.compute(logits: memberLogits, labels: test.labels)
            let after = try CalibrationMetrics.compute(logits: temperature.apply(memberLogits), labels: test.labels)
            let ensembleCalibration = try CalibrationMetrics.compute(probabilities: mean.normalizedRows(), labels: test.labels)
            // Uncertainty and selective prediction from the ensemble.
            let u = try EnsembleUncertainty.compute(members: probabilities.map { $0.normalizedRows() })
            let correct = (0..<test.count).map { ensemblePredictions[$0] == test.labels[$0] }
            func average(_ v: [Double], _ keep: Bool) -> Double {
                let picked = v.indices.filter { correct[$0] == keep }.map { v[$0] }
                return picked.isEmpty ? 0 : picked.reduce(0, +) / Double(picked.count)
            }
            let confidence = (0..<test.count).map { Double(mean.row($0).max()!) }
            let selective = try RiskCoverage.compute(confidence: confidence, correct: correct)
            let interval = try BinomialBounds.clopperPearson(errors: correct.filter { !$0 }.count, samples: test.count)
            let calibrationMean = try DeepEnsemble(members: models).probabilities(split.calibration.features)
                .reduce(Matrix<Float>(rows: split.calibration.count, columns: 10)) { $0.zipMap($1) { $0 + $1 / Float(members) } }
            let conformal = try SplitConformal(calibration: calibrationMean.normalizedRows(), labels: split.calibration.labels,
                                               alpha: 0.1, score: .lac, seed: seed)
            let conformalResult = SplitConformal.evaluate(sets: try conformal.predict(mean.normalizedRows()), labels: test.labels)
            let calibration = Calibration(
                memberECE: before.ece, memberNLL: before.nll, temperature: temperature.temperature,
                memberECEAfterTemperature: after.ece, memberNLLAfterTemperature: after.nll,
                ensembleECE: ensembleCalibration.ece, ensembleNLL: ensembleCalibration.nll, ensembleBrier: ensembleCalibration.brier)
            let uncertainty = Uncertainty(
                meanMutualInformationCorrect: average(u.mutualInformation, true), meanMutualInformationWrong: average(u.mutualInformation, false),
                meanEntropyCorrect: average(u.predictiveEntropy, true), meanEntropyWrong: average(u.predictiveEntropy, false),
                aurc: selective.aurc, excessAURC: selective.excessAURC, riskAt80PercentCoverage: selective.risk(atCoverage: 0.8),
                testErrorInterval95: [interval.lower, interval.upper],
                conformalCoverage: conformalResult.coverage, conformalMeanSetSize: conformalResult.meanSize)

            let shift = try shiftAnalysis(models: models, split: split)
            let attackBar = ProgressBar("attacking and certifying member 1", total: Self.budgets.count, quiet: quiet)
            let robustness = try robustnessAnalysis(models[0], test, bar: attackBar)
            let minimal = try minimalEpsilon(models[0], test)
            let heldOut = try heldOutClassAnalysis(split: split)
            let corruptions = try CorruptionSweep.evaluate(models[0], test.features, labels: test.labels,
                                                           shape: ImageShape(channels: 1, height: 8, width: 8), seed: seed)
            let conformalSweep = try Self.conformalSweep(calibration: calibrationMean.normalizedRows(), calibrationLabels: split.calibration.labels,
                                                         test: mean.normalizedRows(), labels: test.labels, seed: seed)

            // Failure attribution of member 1's test predictions (the attacked model).
            let memberProbabilities = try Linalg.softmaxRows(memberLogits)
            let memberPredicted = try Linalg.rowArgmax(memberProbabilities)
            let memberCorrect = (0..<test.count).map { memberPredicted[$0] == test.labels[$0] }
            let memberConfidence = (0..<test.count).map { Double(memberProbabilities.row($0).max()!) }
            let threshold = FailureAttribution.threshold(try shift.detector.score(split.calibration.features))
            var attack = GradientAttack.pgd(epsilon: Self.attributionEpsilon, stepSize: 2.5 * Self.attributionEpsilon / 20, steps: 20, seed: seed)
            attack.earlyStop = true
            let flipped = try attack.run(models[0], test.features, labels: test.labels).success
            let attribution = FailureAttribution(correct: memberCorrect, confidence: memberConfidence, oodScore: try shift.detector.score(test.features),
                                                 oodThreshold: threshold, confident: Self.confidentThreshold, flipped: flipped,
                                                 epsilon: Self.attributionEpsilon, attack: "PGD-20 (L∞, early stop)")
            let shiftedAttribution = try shift.shifted.map { name, x -> ShiftedAttribution in
                let p = try Linalg.softmaxRows(models[0].logits(x))
                let scores = try shift.detector.score(x), predicted = try Linalg.rowArgmax(p)
                let wrong = (0..<x.rows).filter { predicted[$0] != test.labels[$0] }
                let flagged = wrong.filter { Double(scores[$0]) > threshold }
                let silent = wrong.filter { Double(scores[$0]) <= threshold && Double(p.row($0).max()!) >= Self.confidentThreshold }
                return ShiftedAttribution(shift: name, accuracy: 1 - Double(wrong.count) / Double(x.rows), errors: wrong.count,
                                          flaggedErrors: flagged.count, silentConfidentErrors: silent.count)
            }
            let mi = StandardFigures.splitHistogram(u.mutualInformation, correct)
            let plots = PlotData(reliabilityBins: ensembleCalibration.bins, riskCoverage: StandardFigures.riskCoveragePoints(selective),
                                 mutualInformationEdges: mi.edges, mutualInformationCorrect: mi.yes, mutualInformationWrong: mi.no,
                                 roc: shift.roc)
            return Report(
                dataset: "digits (UCI optical recognition of handwritten digits, 8×8, CC BY 4.0)",
                split: ["train": split.train.count, "calibration": split.calibration.count, "test": test.count],
                spec: Self.spec, members: results,
                ensembleTestAccuracy: Double(zip(ensemblePredictions, test.labels).filter { $0 == $1 }.count) / Double(test.count),
                memberDisagreement: disagreement, mcDropoutAgreement: agreement, calibration: calibration, uncertainty: uncertainty,
                shift: shift.rows,
                robustness: robustness,
                heldOutClass: heldOut, corruptions: corruptions, conformalByAlpha: conformalSweep,
                attribution: attribution, shiftedAttribution: shiftedAttribution, plots: plots,
                medianMinimalPGDEpsilon: minimal, seconds: Date().timeIntervalSince(started),
                system: SystemReport.current().headline)
        }
        let text = Self.render(report)
        let figures = Self.figures(report)
        try Inputs.guarded("demo") {
            var files = ["report.json": Data(try JSONOutput.string(report).utf8), "report.txt": Data(text.utf8),
                         "report.html": Data(Self.html(report, figures: figures).utf8)]
            for (name, svg) in figures { files[name] = Data(svg.utf8) }
            try ReportDirectory.write(to: out, files: files)
        }
        print(text)
        print("wrote \(out)/report.html (\(figures.count) plots), report.json and report.txt")
    }
}
