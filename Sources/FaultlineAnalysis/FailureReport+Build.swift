import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import FaultlineShift
import FaultlineStatistics
import Foundation

extension FailureReport {
    /// The ROC-plot key of the mild shift `build` adds (Gaussian-noise corruption at severity 1, σ 0.04).
    public static let mildShiftName = "noise σ 0.04 (sev. 1)"

    /// The stages `build` reports progress for, in order.
    public static let stages = ["reliability", "shift", "robustness", "corruptions", "attribution"]

    /// The whole failure analysis of one model.
    ///
    /// Reliability: accuracy with a Clopper–Pearson interval, calibration (ECE/MCE/NLL/Brier, 15 bins) before
    /// and after temperature scaling on the calibration set, selective risk, predictive entropy on right vs
    /// wrong predictions, conformal coverage vs α. Shift: a Mahalanobis detector fitted on the training rows
    /// (Ledoit–Wolf unless `options.mahalanobisShrinkage`), MSP and energy, AUROC against the clean test
    /// rows for each shifted set, and the split of each set's errors into flagged and silent ones; the accuracy
    /// on each shifted set predicted without its labels (ATC and DoC, `AccuracyWithoutLabels`).
    /// Robustness: PGD and APGD-CE (and optionally FGSM and the AutoAttack-style ensemble) per ε, with
    /// CROWN-certified accuracy beside them through `TwoSidedEvaluation`, whose soundness check must find
    /// nothing; the corruption sweep for images in [0, 1]. Attribution: every test row, see
    /// `FailureAttribution`.
    ///
    /// - Parameters:
    ///   - progress: called as the build advances: the stage, the step running and the share done, inside
    ///     every stage (see `Progress`; at most about ten reports a second, on the calling thread).
    /// - Complexity: dominated by the attacks: (steps + 1) forward/backward passes per ε and attack over the
    ///   robustness rows, plus one PGD run over all test rows for the attribution.
    /// - Throws: `AnalysisError.invalidInput` when the data does not fit the model or the options are out
    ///   of range; what the kernels throw otherwise. Nothing is computed on bad input.
    /// Any `DifferentiableClassifier` can be analysed (a `Sequential`, an imported graph). Two sections
    /// need more than the protocol: CROWN certification (bound rules for every layer: a `Sequential`; for
    /// other models a note says it was skipped) and Monte Carlo dropout (a `Sequential` with dropout).
    ///
    /// On several ranks (`communicator`, e.g. MPI's world under `mpirun`), every rank passes the same model,
    /// data and options; the per-row work that dominates the cost — the attacks and certification of the
    /// robustness table, the minimal ε and the attribution's attack — is split by rows (`RowSplit.even`),
    /// every random draw keyed by the row's index, and the counts summed and the per-row results
    /// all-gathered, so every rank returns the one-process report (bit-identical on the simd backend; on
    /// blas a GEMM rounds a row by its batch's size, which may move an attack's example by a few ulps). The
    /// rest (reliability, the shift detectors, the corruption sweep) is repeated on every rank.
    public static func build(model: some DifferentiableClassifier, data: Data, options: Options = Options(),
                             communicator: any Communicator = SingleProcessCommunicator(),
                             progress: ((Progress) -> Void)? = nil) throws -> FailureReport {
        try build(model: model, ensemble: nil, data: data, options: options, communicator: communicator, progress: progress)
    }

    /// The failure analysis of an ensemble: as `build(model:…)` for its first member (the member that is
    /// attacked, certified and attributed), plus the ensemble section (mean-probability accuracy and
    /// calibration, member disagreement, mutual information) and mutual information as a shift score.
    /// Conformal rows use the ensemble's mean probabilities.
    public static func build(ensemble: DeepEnsemble, data: Data, options: Options = Options(),
                             communicator: any Communicator = SingleProcessCommunicator(),
                             progress: ((Progress) -> Void)? = nil) throws -> FailureReport {
        guard let first = ensemble.members.first else { throw AnalysisError.invalidInput("the ensemble has no members") }
        return try build(model: first, ensemble: ensemble.members.count > 1 ? ensemble : nil, data: data, options: options,
                         communicator: communicator, progress: progress)
    }

    static func build(model: some DifferentiableClassifier, ensemble: DeepEnsemble?, data: Data, options: Options,
                      communicator: any Communicator, progress: ((Progress) -> Void)?) throws -> FailureReport {
        let started = Date()
        try validate(model: model, ensemble: ensemble, data: data, options: options)
        var data = data
        if let m = options.maxSamples {
            data.test = data.test.sample(m, seed: options.seed)
            data.shifted = data.shifted.map { set in
                let rows = LabeledDataset.sampleRows(m, of: set.features.rows, seed: options.seed)
                guard rows.count < set.features.rows else { return set }
                return ShiftedSet(name: set.name, features: set.features.gatherRows(rows), labels: set.labels.map { l in rows.map { l[$0] } })
            }
        }
        let test = data.test, n = test.count
        let heldOut = data.calibration ?? data.train
        let penultimate = options.inputSpaceOOD == true ? nil : PenultimateFeatures(model)
        let rows = min(options.robustnessSamples ?? n, n)
        let work = PlannedWork(model: model, ensemble: ensemble, data: data, options: options, featureWidth: penultimate?.width, robustnessRows: rows)
        let tracker = ProgressTracker(plan: work.stages, callback: progress)
        tracker.enter(0)

        // Reliability of the analysed model.
        let logits = try tracker.step("predictions and calibration", work: work.predictions) { try model.logits(test.features) }
        let model1 = try Prediction(probabilities: Linalg.softmaxRows(logits), labels: test.labels)
        let entropy = try LogitScores.entropy(logits).map(Double.init)
        let selective = try RiskCoverage.compute(confidence: model1.confidence, correct: model1.correct)
        let interval = try BinomialBounds.clopperPearson(errors: n - model1.correctCount, samples: n)
        let temperature = try data.calibration.map { try TemperatureScaling.fit(logits: model.logits($0.features), labels: $0.labels) }
        var reliability = Reliability(
            accuracy: model1.accuracy, testErrorInterval95: [interval.lower, interval.upper],
            calibration: try CalibrationMetrics.compute(logits: logits, labels: test.labels), temperature: temperature?.temperature,
            calibrationAfterTemperature: try temperature.map { try CalibrationMetrics.compute(logits: $0.apply(logits), labels: test.labels) },
            aurc: selective.aurc, excessAURC: selective.excessAURC, riskAt80PercentCoverage: selective.risk(atCoverage: 0.8),
            entropyCorrect: model1.mean(entropy, correct: true), entropyWrong: model1.mean(entropy, correct: false))
        if options.monteCarloDropoutPasses > 0, let model = model as? Sequential {
            let passes = try tracker.step("Monte Carlo dropout", work: work.dropout) {
                try model.monteCarloDropout(test.features, passes: options.monteCarloDropoutPasses, seed: options.seed)
            }
            var agree = 0
            for p in passes { agree += zip(try Linalg.rowArgmax(p), model1.predicted).filter { $0 == $1 }.count }
            reliability.monteCarloDropoutAgreement = Double(agree) / Double(max(passes.count * n, 1))
        }

        // The ensemble, when there is one.
        var ensembleSection: Ensemble?
        var uncertainty = (measure: "entropy", values: entropy, correct: model1.correct)
        var conformalInputs = (calibration: try data.calibration.map { try Linalg.softmaxRows(model.logits($0.features)) }, test: model1.probabilities)
        if let ensemble {
            let u = try tracker.step("the ensemble's members", work: work.ensemble) { try EnsembleUncertainty.compute(members: ensemble.probabilities(test.features)) }
            let mean = try Prediction(probabilities: u.mean, labels: test.labels)
            let members = try ensemble.members.map { try Linalg.rowArgmax($0.logits(test.features)) }
            let disagreeing = (0..<n).filter { i in members.contains { $0[i] != members[0][i] } }.count
            let risk = try RiskCoverage.compute(confidence: mean.confidence, correct: mean.correct)
            ensembleSection = Ensemble(
                memberAccuracy: members.map { p in Double(zip(p, test.labels).filter { $0 == $1 }.count) / Double(n) },
                accuracy: mean.accuracy, disagreement: Double(disagreeing) / Double(n),
                calibration: try CalibrationMetrics.compute(probabilities: u.mean, labels: test.labels),
                mutualInformationCorrect: mean.mean(u.mutualInformation, correct: true), mutualInformationWrong: mean.mean(u.mutualInformation, correct: false),
                entropyCorrect: mean.mean(u.predictiveEntropy, correct: true), entropyWrong: mean.mean(u.predictiveEntropy, correct: false),
                aurc: risk.aurc, excessAURC: risk.excessAURC)
            uncertainty = ("mutual information", u.mutualInformation, mean.correct)
            conformalInputs = (try data.calibration.map { try EnsembleUncertainty.compute(members: ensemble.probabilities($0.features)).mean }, u.mean)
        }
        var conformal: [ConformalRow] = []
        if options.runs(.conformal), let calibration = data.calibration, let calibrationProbabilities = conformalInputs.calibration {
            conformal = try tracker.step("conformal prediction", work: work.conformal) { try options.conformalAlphas.map { alpha in
                let cp = try SplitConformal(calibration: calibrationProbabilities, labels: calibration.labels, alpha: alpha, score: .lac, seed: options.seed)
                let r = SplitConformal.evaluate(sets: try cp.predict(conformalInputs.test), labels: test.labels)
                return ConformalRow(alpha: alpha, coverage: r.coverage, meanSetSize: r.meanSize)
            } }
        }
        tracker.enter(1)

        // Shift: the detector, its threshold, and every shifted set against the clean test rows.
        let detector = try tracker.step("Mahalanobis fit on the inputs", work: work.inputFit) {
            var fit = GaussianFit(dimension: data.train.features.columns, classes: model.outputFeatures)
            try fit.update(data.train.features, labels: data.train.labels)
            return try options.mahalanobisShrinkage.map { try MahalanobisDetector(fit, shrinkage: $0) }
                ?? MahalanobisDetector.ledoitWolf(fit, x: data.train.features, labels: data.train.labels)
        }
        // The same detector on the model's penultimate features, when it has them: it then decides "out of distribution".
        let featureDetector = try penultimate.map { f -> (features: PenultimateFeatures, detector: MahalanobisDetector) in
          try tracker.step("Mahalanobis fit on the penultimate features", work: work.featureFit) {
            let x = try f(data.train.features)
            var fit = GaussianFit(dimension: f.width, classes: model.outputFeatures)
            try fit.update(x, labels: data.train.labels)
            return (f, try options.mahalanobisShrinkage.map { try MahalanobisDetector(fit, shrinkage: $0) }
                ?? MahalanobisDetector.ledoitWolf(fit, x: x, labels: data.train.labels))
          }
        }
        func featureScores(_ x: Matrix<Float>) throws -> [Float]? { try featureDetector.map { try $0.detector.score($0.features(x)) } }
        /// The score that decides "out of distribution": feature space when available, else input space.
        func oodScores(_ scores: ShiftScores) -> [Float] { scores.features ?? scores.maha }
        let (clean, threshold) = try tracker.step("scores of the clean rows", work: work.cleanScores) {
            (ShiftScores(maha: try detector.score(test.features), msp: try LogitScores.maxSoftmax(logits),
                         energy: try LogitScores.energy(logits),
                         mi: ensembleSection == nil ? nil : uncertainty.values.map(Float.init), features: try featureScores(test.features)),
             try FailureAttribution.threshold(featureScores(heldOut.features) ?? detector.score(heldOut.features), quantile: options.oodQuantile))
        }
        var roc: [ROCCurve] = []
        // Accuracy without labels: ATC/DoC fitted on the calibration rows (else the clean test rows).
        let atcSource = try data.calibration.map { (name: "calibration", p: try Linalg.softmaxRows(model.logits($0.features)), y: $0.labels) }
            ?? (name: "test", p: model1.probabilities, y: test.labels)
        var atcRows: [AccuracyWithoutLabels.Row] = []
        var atcFit: AccuracyEstimate?
        func estimateAccuracy(_ name: String, _ p: Matrix<Float>, _ accuracy: Double?) throws {
            let e = try AccuracyEstimate(source: atcSource.p, labels: atcSource.y, target: p, score: .msp)
            atcFit = e
            atcRows.append(.init(shift: name, samples: p.rows, accuracy: accuracy, atc: e.atc, doc: e.doc, averageConfidence: e.averageConfidence))
        }
        if !data.shifted.isEmpty && atcSource.name == "calibration" { try estimateAccuracy("clean test", model1.probabilities, model1.accuracy) }
        var shiftedExamples: [FailureExamples.ShiftedRows] = []
        let shiftRows = try data.shifted.map { set -> ShiftRow in
          try tracker.step("shifted set '\(set.name)'", work: work.shiftedSet(set.features.rows)) {
            let x = set.features, z = try model.logits(x)
            // The ensemble's members run once per set: its MI is a shift score, its prediction the ensemble accuracy.
            let members = try ensemble.map { try EnsembleUncertainty.compute(members: $0.probabilities(x), includeMean: false) }
            let scores = ShiftScores(maha: try detector.score(x), msp: try LogitScores.maxSoftmax(z), energy: try LogitScores.energy(z),
                                     mi: members?.mutualInformation.map(Float.init), features: try featureScores(x))
            let maha = try DetectionMetrics.compute(inDistribution: clean.maha, outOfDistribution: scores.maha)
            roc.append(ROCCurve(kind: .shiftedSet, name: set.name, points: PlotData.subsample(try DetectionMetrics.rocCurve(inDistribution: oodScores(clean), outOfDistribution: oodScores(scores))
                .map { [$0.fpr, $0.tpr] })))
            var row = ShiftRow(shift: set.name, samples: x.rows, mahalanobisAUROC: maha.auroc, mahalanobisFPR95: maha.fprAt95TPR,
                               mspAUROC: try DetectionMetrics.compute(inDistribution: clean.msp, outOfDistribution: scores.msp).auroc,
                               energyAUROC: try DetectionMetrics.compute(inDistribution: clean.energy, outOfDistribution: scores.energy).auroc)
            if let inside = clean.features, let outside = scores.features {
                let m = try DetectionMetrics.compute(inDistribution: inside, outOfDistribution: outside)
                (row.featureMahalanobisAUROC, row.featureMahalanobisFPR95) = (m.auroc, m.fprAt95TPR)
            }
            if let inside = clean.mi, let outside = scores.mi {
                row.mutualInformationAUROC = try DetectionMetrics.compute(inDistribution: inside, outOfDistribution: outside).auroc
            }
            if let labels = set.labels {
                let p = try Prediction(probabilities: Linalg.softmaxRows(z), labels: labels)
                let wrong = (0..<x.rows).filter { !p.correct[$0] }
                row.accuracy = p.accuracy
                row.errors = wrong.count
                let ood = oodScores(scores)
                row.flaggedErrors = wrong.filter { Double(ood[$0]) > threshold }.count
                row.silentConfidentErrors = wrong.filter { Double(ood[$0]) <= threshold && p.confidence[$0] >= options.confidenceThreshold }.count
                if let members {
                    row.ensembleAccuracy = Double(zip(members.prediction, labels).filter { $0 == $1 }.count) / Double(max(x.rows, 1))
                }
            }
            let probabilities = try Linalg.softmaxRows(z)
            try estimateAccuracy(set.name, probabilities, row.accuracy)
            shiftedExamples.append(.init(name: set.name, features: x, labels: set.labels, probabilities: probabilities, oodScores: oodScores(scores)))
            return row
          }
        }
        tracker.enter(2)

        // Robustness: attacks per ε with CROWN beside them, on the robustness rows.
        let rx = rows == n ? test.features : test.features.sliceRows(0..<rows)
        let ry = Array(test.labels.prefix(rows))
        var notes: [String] = []
        /// Whether the time budget is spent; when it is, notes that `what` is left out.
        func overBudget(_ what: String) -> Bool {
            guard let budget = options.timeBudget else { return false }
            let spent = Date().timeIntervalSince(started)
            guard spent >= budget else { return false }
            notes.append("\(what) skipped: the time budget of \(budget) s (--time-budget) was spent after \(String(format: "%.1f", spent)) s.")
            return true
        }
        var attacks = options.runs(.attacks)
        if !attacks { notes.append("Attacks skipped (--skip attacks): no robustness table, and no row is tested for fragility.") }
        if attacks && overBudget("Attacks (robustness table, certification, minimal ε and the fragility test)") { attacks = false }
        var robustnessOptions = options
        robustnessOptions.certify = options.runs(.certify)
        let robustness = attacks ? try RobustnessTable.evaluate(model, rx, labels: ry, options: robustnessOptions, notes: &notes, tracker: tracker, work: work,
                                                                communicator: communicator) : []
        let minimal = attacks && options.minimalEpsilon
            ? try tracker.step("median minimal ε (8 bisection rounds)", work: work.minimalEpsilon) { try RobustnessTable.medianMinimalEpsilon(model, rx, labels: ry, options: options, communicator: communicator) }
            : nil
        tracker.enter(3)
        let corruptions = try data.imageShape.flatMap { shape -> CorruptionSweep.Report? in
            options.box == .unit && options.runs(.corruptions) && !overBudget("The corruption sweep")
                ? try tracker.step("corruption sweep", work: work.corruptions) { report in
                    try CorruptionSweep.evaluate(model, rx, labels: ry, shape: shape, seed: options.seed, progress: report)
                } : nil
        }
        // A mild shift beside the given ones in the ROC plot: the test rows with the lowest-severity
        // Gaussian-noise corruption (images in [0, 1], with the sweep and at least one shifted set).
        if corruptions != nil, !data.shifted.isEmpty, let shape = data.imageShape {
            let mild = try Corruption.gaussianNoise.apply(to: test.features, shape: shape, severity: 1, seed: options.seed)
            let scores = try tracker.step("the mild shift's scores", work: work.mildShift) { try featureScores(mild) ?? detector.score(mild) }
            roc.append(ROCCurve(kind: .mildShift, name: mildShiftName, points: PlotData.subsample(try DetectionMetrics.rocCurve(inDistribution: oodScores(clean), outOfDistribution: scores)
                .map { [$0.fpr, $0.tpr] })))
        }
        tracker.enter(4)

        // Attribution of every test row.
        let epsilon = options.resolvedAttributionEpsilon
        let attack = attacks ? try tracker.step("PGD-\(options.pgdSteps) at ε \(epsilon) on every test row", work: work.attribution) { report in
            try RobustnessTable.attribution(model, test.features, labels: test.labels, epsilon: epsilon, options: options,
                                            communicator: communicator, progress: report)
        } : nil
        let flipped = attack?.success ?? [Bool](repeating: false, count: n)
        let attribution = FailureAttribution(correct: model1.correct, confidence: model1.confidence, oodScore: oodScores(clean), oodThreshold: threshold,
                                             confident: options.confidenceThreshold, flipped: flipped, epsilon: epsilon,
                                             attack: "PGD-\(options.pgdSteps) (L∞, early stop)", oodQuantile: options.oodQuantile)
        // A few rows of each failure, with their pixels (images) or most deviating features.
        let shape = data.imageShape ?? ImageShape.infer(model: model, features: model.inputFeatures)
        let shapeSource = shape != nil && model.inputImageShape == shape ? "model" : (data.imageShape != nil ? "given" : "square")
        let examples = try tracker.step("failing examples", work: work.examples) { FailureExamples(test: test.features, labels: test.labels, probabilities: model1.probabilities, attribution: attribution,
                                       adversarial: try attack.map { ($0.adversarial, try Linalg.softmaxRows(model.logits($0.adversarial))) },
                                       shifted: shiftedExamples, train: data.train.features, image: shape, imageSource: shapeSource, box: options.box) }
        let histogram = PlotData.splitHistogram(uncertainty.values, uncertainty.correct)
        let accuracyWithoutLabels = atcFit.map {
            AccuracyWithoutLabels(source: atcSource.name, score: $0.score.rawValue, sourceAccuracy: $0.sourceAccuracy, threshold: $0.threshold,
                                  tieWeight: $0.tieWeight, rows: atcRows)
        }
        var report = FailureReport(
            schema: currentSchema, title: "Faultline report", dataset: data.description,
            model: ModelSummary(spec: model.spec, parameters: model.parameterCount,
                                inputFeatures: model.inputFeatures, classes: model.outputFeatures, members: ensemble?.members.count ?? 1),
            samples: Samples(train: data.train.count, calibration: data.calibration?.count ?? 0, test: n),
            reliability: reliability, ensemble: ensembleSection, conformal: conformal, shift: shiftRows, heldOutClass: nil,
            robustness: robustness, robustnessNotes: notes, medianMinimalEpsilon: minimal, corruptions: corruptions, attribution: attribution,
            plots: Plots(reliabilityBins: reliability.calibration.bins, riskCoverage: PlotData.riskCoveragePoints(selective),
                         uncertaintyMeasure: uncertainty.measure, uncertaintyEdges: histogram.edges, uncertaintyCorrect: histogram.yes,
                         uncertaintyWrong: histogram.no, roc: roc),
            setup: Setup(options: options, seconds: Date().timeIntervalSince(started), system: SystemReport.current()))
        report.accuracyWithoutLabels = accuracyWithoutLabels
        report.featureSpace = penultimate?.description
        report.examples = examples
        report.dataQuality = tracker.step("label issues and duplicates", work: work.dataQuality) {
            dataQualitySection(probabilities: model1.probabilities, test: test, train: data.train, given: data.labelProbabilities, options: options)
        }
        report.setup.seconds = Date().timeIntervalSince(started)
        report.setup.stageSeconds = tracker.stageSeconds
        tracker.finish()
        return report
    }

    /// The checks `build` runs before any work, alone: the data fits the model and each other (shapes,
    /// label ranges, the box, distinct shifted-set names) and the options are in range. Lets a caller on
    /// several ranks refuse bad input once, before the collectives of `build`.
    /// - Throws: `AnalysisError.invalidInput` naming the set or option.
    public static func check(model: some DifferentiableClassifier, data: Data, options: Options = Options()) throws {
        try validate(model: model, ensemble: nil, data: data, options: options)
    }

    /// Shapes, label ranges, the box and the options, checked before any work.
    static func validate(model: some DifferentiableClassifier, ensemble: DeepEnsemble?, data: Data, options: Options) throws {
        guard options.box.isFinite else { throw AnalysisError.invalidInput("the box \(options.box) must be finite") }
        if let budget = options.timeBudget, !(budget > 0 && budget.isFinite) {
            throw AnalysisError.invalidInput("the time budget \(budget) must be a positive, finite number of seconds")
        }
        let (lo, hi): ([Float], [Float])
        do { (lo, hi) = try options.box.perFeature(features: model.inputFeatures, image: model.inputImageShape) } catch ModelError.shapeMismatch(let message) {
            throw AnalysisError.invalidInput(message)
        }
        func check(_ x: Matrix<Float>, _ labels: [Int]?, _ name: String) throws {
            guard x.rows > 0 else { throw AnalysisError.invalidInput("\(name) has no rows") }
            guard x.columns == model.inputFeatures else {
                throw AnalysisError.invalidInput("\(name) has \(x.columns) features, the model takes \(model.inputFeatures)")
            }
            let d = x.columns
            if let bad = x.withUnsafeBufferPointer({ p in p.indices.first { !(p[$0] >= lo[$0 % d] && p[$0] <= hi[$0 % d]) } }) {
                let (i, j) = (bad / d, bad % d)
                throw AnalysisError.invalidInput("\(name) row \(i) column \(j) is \(x[i, j]), outside the box \(lo[j])…\(hi[j]) of that feature (box \(options.box))")
            }
            if let labels {
                guard labels.count == x.rows else { throw AnalysisError.invalidInput("\(name) has \(labels.count) labels for \(x.rows) rows") }
                if let i = labels.firstIndex(where: { !(0..<model.outputFeatures).contains($0) }) {
                    throw AnalysisError.invalidInput("\(name) label \(labels[i]) at row \(i) is not a class of the model (0..<\(model.outputFeatures))")
                }
            }
        }
        try check(data.train.features, data.train.labels, "the training set")
        try check(data.test.features, data.test.labels, "the test set")
        if let c = data.calibration { try check(c.features, c.labels, "the calibration set") }
        for set in data.shifted { try check(set.features, set.labels, "the shifted set '\(set.name)'") }
        if Set(data.shifted.map(\.name)).count != data.shifted.count { throw AnalysisError.invalidInput("two shifted sets have the same name") }
        if let ensemble, let bad = ensemble.members.first(where: { $0.inputFeatures != model.inputFeatures || $0.outputFeatures != model.outputFeatures }) {
            throw AnalysisError.invalidInput("ensemble member \(bad.spec) does not have the first member's shape")
        }
        if let shape = data.imageShape, shape.features != model.inputFeatures {
            throw AnalysisError.invalidInput("image shape \(shape) has \(shape.features) features, the model takes \(model.inputFeatures)")
        }
        guard !options.epsilons.isEmpty, options.epsilons.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw AnalysisError.invalidInput("epsilons must be a non-empty list of finite values ≥ 0")
        }
        guard options.resolvedAttributionEpsilon.isFinite, options.resolvedAttributionEpsilon > 0 else {
            throw AnalysisError.invalidInput("the attribution ε must be finite and > 0")
        }
        guard (0...1).contains(options.confidenceThreshold) else { throw AnalysisError.invalidInput("the confidence threshold must lie in [0, 1]") }
        guard options.oodQuantile > 0, options.oodQuantile <= 1 else { throw AnalysisError.invalidInput("the OOD quantile must lie in (0, 1]") }
        guard options.pgdSteps >= 1, options.squareQueries >= 1, options.monteCarloDropoutPasses >= 0 else {
            throw AnalysisError.invalidInput("PGD steps and Square queries must be ≥ 1, Monte Carlo passes ≥ 0")
        }
        guard options.conformalAlphas.allSatisfy({ $0 > 0 && $0 < 1 }) else { throw AnalysisError.invalidInput("conformal α must lie in (0, 1)") }
        guard options.robustnessSamples.map({ $0 >= 1 }) ?? true else { throw AnalysisError.invalidInput("robustness samples must be ≥ 1") }
        guard options.maxSamples.map({ $0 >= 1 }) ?? true else { throw AnalysisError.invalidInput("max samples must be ≥ 1") }
        guard options.mahalanobisShrinkage.map({ (0...1).contains($0) }) ?? true else { throw AnalysisError.invalidInput("the shrinkage must lie in [0, 1]") }
    }
}

/// Predictions of one probability matrix against labels.
struct Prediction {
    var probabilities: Matrix<Float>
    var predicted: [Int]
    var correct: [Bool]
    var confidence: [Double]

    init(probabilities: Matrix<Float>, labels: [Int]) throws {
        self.probabilities = probabilities
        predicted = try Linalg.rowArgmax(probabilities)
        correct = zip(predicted, labels).map { $0 == $1 }
        confidence = (0..<probabilities.rows).map { Double(probabilities.row($0).max() ?? 0) }
    }

    var correctCount: Int { correct.filter { $0 }.count }
    var accuracy: Double { Double(correctCount) / Double(max(correct.count, 1)) }

    /// Mean of `values` over the rows predicted right (or wrong); 0 when there are none.
    func mean(_ values: [Double], correct keep: Bool) -> Double {
        var sum = 0.0, count = 0
        for (v, c) in zip(values, correct) where c == keep { sum += v; count += 1 }
        return count == 0 ? 0 : sum / Double(count)
    }
}

/// The shift scores of one set (higher = more out of distribution).
struct ShiftScores {
    var maha: [Float]
    var msp: [Float]
    var energy: [Float]
    var mi: [Float]?
    /// Mahalanobis on the penultimate features, when the model has them.
    var features: [Float]? = nil
}
