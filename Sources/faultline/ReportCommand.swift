import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import Foundation

/// `faultline report`: the failure analysis of the user's own model and data.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Why does this model fail? The whole analysis of your model on your data, as report.html (plots), report.json and report.txt.",
        discussion: """
            Inputs: --weights (and --spec unless the file records it), --train-x/--train-y (fits the shift detector), \
            --test-x/--test-y, optionally --calibration-x/--calibration-y (temperature scaling, thresholds, conformal \
            sets; without it the training split provides the thresholds) and shifted sets as --shifted NAME=X.npy or \
            NAME=X.npy,Y.npy (repeatable; FILE.npz:ARRAY works everywhere). Inputs must lie in --box.
            Sections: calibration and selective risk; predictive entropy on right vs wrong predictions; Mahalanobis \
            (Ledoit–Wolf), MSP and energy detection of each shifted set; PGD-20 and APGD-CE robust accuracy over --eps with \
            CROWN-certified accuracy beside them (when the model is a ReLU network); the corruption sweep when the inputs \
            are images (--shape, a convolution, or a square count) in [0, 1]; conformal coverage vs α; and the failure \
            attribution of every test error. The directory is written atomically. Exit code 2 on bad input.
            """)

    @Option(help: "Model weights (.safetensors).") var weights: String
    @Option(help: "Architecture (default: read from the weights file).") var spec: String?
    @Option(help: "Training inputs (fit the shift detector).") var trainX: String
    @Option(help: "Training labels.") var trainY: String
    @Option(help: "Test inputs.") var testX: String
    @Option(help: "Test labels.") var testY: String
    @Option(help: "Calibration inputs (optional).") var calibrationX: String?
    @Option(help: "Calibration labels (optional).") var calibrationY: String?
    @Option(help: "A shifted set, NAME=X or NAME=X,Y (repeatable).") var shifted: [String] = []
    @Option(help: "Comma-separated L∞ budgets.") var eps = "0.01,0.02,0.05,0.1"
    @Option(help: "Image layout CxHxW for the corruption sweep.") var shape: String?
    @Option(help: "Valid input box lo,hi.") var box = "0,1"
    @Option(help: "Report directory.") var out = "faultline-report"
    @Option(help: "Seed of attacks and corruptions.") var seed: UInt64 = 0
    @Flag(help: "No progress output.") var quiet = false

    struct ShiftRow: Codable { var shift: String; var samples: Int; var accuracy: Double?; var mahalanobisAUROC: Double; var mspAUROC: Double; var energyAUROC: Double
                               var errors: Int?; var flaggedErrors: Int?; var silentConfidentErrors: Int? }
    struct RobustRow: Codable { var epsilon: Float; var pgd20: Double; var apgdCE: Double; var certifiedCROWN: Double? }
    struct Report: Codable {
        var spec: String; var samples: [String: Int]; var accuracy: Double
        var calibration: CalibrationMetrics; var temperature: Double?; var calibrationAfterTemperature: CalibrationMetrics?
        var aurc: Double; var testErrorInterval95: [Double]
        var entropyCorrect: Double; var entropyWrong: Double
        var shift: [ShiftRow]; var robustness: [RobustRow]; var certificationNote: String?
        var corruptions: CorruptionSweep.Report?; var conformal: [DemoCommand.ConformalRow]
        var attribution: FailureAttribution
        var riskCoverage: [[Double]]; var entropyEdges: [Double]; var entropyCorrectCounts: [Int]; var entropyWrongCounts: [Int]
        var roc: [String: [[Double]]]
    }

    func run() throws {
        let (report, figures) = try Inputs.guarded("report") { () -> (Report, [String: String]) in
            let box = try OptionCheck.box(self.box)
            let budgets = try OptionCheck.numbers(eps, "--eps")
            let shiftedSets = try shifted.map(Inputs.shiftedSet)
            try OptionCheck.directoryTarget(out, "--out")
            let model = try Inputs.model(weights: weights, spec: spec)
            let (trainX, trainY) = try Inputs.labeled(x: self.trainX, "--train-x", y: self.trainY, "--train-y", model: ModelShape(model))
            let (testX, testY) = try Inputs.labeled(x: self.testX, "--test-x", y: self.testY, "--test-y", model: ModelShape(model))
            guard (calibrationX == nil) == (calibrationY == nil) else { throw CLIError("--calibration-x and --calibration-y go together") }
            let calibration = try calibrationX.map { x -> (Matrix<Float>, [Int]) in
                try Inputs.labeled(x: x, "--calibration-x", y: calibrationY!, "--calibration-y", model: ModelShape(model))
            }
            let bar = ProgressBar("report", total: 5, quiet: quiet)
            // Reliability.
            let logits = try model.logits(testX)
            let probabilities = try Linalg.softmaxRows(logits)
            let predicted = try Linalg.rowArgmax(probabilities)
            let correct = (0..<testX.rows).map { predicted[$0] == testY[$0] }
            let confidence = (0..<testX.rows).map { Double(probabilities.row($0).max()!) }
            let metrics = try CalibrationMetrics.compute(logits: logits, labels: testY)
            var temperature: TemperatureScaling?
            if let (cx, cy) = calibration { temperature = try TemperatureScaling.fit(logits: model.logits(cx), labels: cy) }
            let selective = try RiskCoverage.compute(confidence: confidence, correct: correct)
            let interval = try BinomialBounds.clopperPearson(errors: correct.filter { !$0 }.count, samples: testX.rows)
            let entropy = try LogitScores.entropy(logits).map(Double.init)
            func mean(_ v: [Double], _ keep: Bool) -> Double {
                let picked = v.indices.filter { correct[$0] == keep }
                return picked.isEmpty ? 0 : picked.reduce(0) { $0 + v[$1] } / Double(picked.count)
            }
            bar.update(1)
            // Shift.
            var fit = GaussianFit(dimension: trainX.columns, classes: model.outputFeatures)
            try fit.update(trainX, labels: trainY)
            let detector = try MahalanobisDetector.ledoitWolf(fit, x: trainX, labels: trainY)
            let threshold = FailureAttribution.threshold(try detector.score(calibration?.0 ?? trainX))
            let clean = (maha: try detector.score(testX), msp: try LogitScores.maxSoftmax(logits), energy: try LogitScores.energy(logits))
            var roc: [String: [[Double]]] = [:]
            let shiftRows = try shiftedSets.map { set -> ShiftRow in
                let name = set.name
                let x = try Inputs.features(set.x, option: "--shifted \(name)", finite: true)
                try Inputs.modelInput(x, "--shifted \(name)", set.x, model: ModelShape(model))
                let y = try set.y.map { try Inputs.labels($0, option: "--shifted \(name)", classes: model.outputFeatures) }
                if let y, y.count != x.rows { throw CLIError("--shifted \(name): \(set.y!) has \(y.count) labels for \(x.rows) rows of \(set.x)") }
                let z = try model.logits(x)
                let maha = try detector.score(x)
                roc[name] = StandardFigures.subsample(try DetectionMetrics.rocCurve(inDistribution: clean.maha, outOfDistribution: maha).map { [$0.fpr, $0.tpr] })
                var row = ShiftRow(shift: name, samples: x.rows,
                                   mahalanobisAUROC: try DetectionMetrics.compute(inDistribution: clean.maha, outOfDistribution: maha).auroc,
                                   mspAUROC: try DetectionMetrics.compute(inDistribution: clean.msp, outOfDistribution: LogitScores.maxSoftmax(z)).auroc,
                                   energyAUROC: try DetectionMetrics.compute(inDistribution: clean.energy, outOfDistribution: LogitScores.energy(z)).auroc)
                if let y {
                    let p = try Linalg.softmaxRows(z), guess = try Linalg.rowArgmax(p)
                    let wrong = (0..<x.rows).filter { guess[$0] != y[$0] }
                    row.accuracy = 1 - Double(wrong.count) / Double(max(x.rows, 1))
                    row.errors = wrong.count
                    row.flaggedErrors = wrong.filter { Double(maha[$0]) > threshold }.count
                    row.silentConfidentErrors = wrong.filter { Double(maha[$0]) <= threshold && Double(p.row($0).max()!) >= DemoCommand.confidentThreshold }.count
                }
                return row
            }
            bar.update(2)
            // Robustness: attacks and, for ReLU networks, CROWN.
            let propagation = try? BoundPropagation(model)
            var note: String? = propagation == nil ? "CROWN skipped: the model has a layer without a bound rule" : nil
            let robustness = try budgets.map { e -> RobustRow in
                var pgd = GradientAttack.pgd(epsilon: e, stepSize: max(2.5 * e / 20, 1e-4), steps: 20, seed: seed)
                (pgd.earlyStop, pgd.box) = (true, box)
                var apgd = APGDAttack(epsilon: e)
                (apgd.earlyStop, apgd.seed, apgd.box) = (true, seed, box)
                var certified: Double?
                if let propagation {
                    do {
                        let flags = try propagation.certify(testX, labels: testY, region: .init(epsilon: e, box: box), method: .crown)
                        certified = Double(flags.filter { $0 }.count) / Double(testX.rows)
                    } catch let error as CertificationError {
                        note = "CROWN skipped: \(error)"
                    }
                }
                return RobustRow(epsilon: e, pgd20: try pgd.run(model, testX, labels: testY).robustAccuracy,
                                 apgdCE: try apgd.run(model, testX, labels: testY).robustAccuracy, certifiedCROWN: certified)
            }
            bar.update(3)
            // Corruptions when the inputs are images in [0, 1].
            var corruptions: CorruptionSweep.Report?
            if let layout = try Inputs.imageShape(shape, model: model, features: testX.columns), box == 0...1 {
                corruptions = try CorruptionSweep.evaluate(model, testX, labels: testY, shape: layout, seed: seed)
            }
            bar.update(4)
            var conformal: [DemoCommand.ConformalRow] = []
            if let (cx, cy) = calibration {
                conformal = try DemoCommand.conformalSweep(calibration: Linalg.softmaxRows(model.logits(cx)).normalizedRows(), calibrationLabels: cy,
                                                           test: probabilities.normalizedRows(), labels: testY, seed: seed)
            }
            let flipped: [Bool]
            let attributionEpsilon = budgets.first { $0 > 0 } ?? DemoCommand.attributionEpsilon
            var pgd = GradientAttack.pgd(epsilon: attributionEpsilon, stepSize: 2.5 * attributionEpsilon / 20, steps: 20, seed: seed)
            (pgd.earlyStop, pgd.box) = (true, box)
            flipped = try pgd.run(model, testX, labels: testY).success
            let attribution = FailureAttribution(correct: correct, confidence: confidence, oodScore: clean.maha, oodThreshold: threshold,
                                                 confident: DemoCommand.confidentThreshold, flipped: flipped, epsilon: attributionEpsilon,
                                                 attack: "PGD-20 (L∞, early stop)")
            bar.update(5)
            let histogram = StandardFigures.splitHistogram(entropy, correct)
            let report = Report(
                spec: model.spec, samples: ["train": trainX.rows, "test": testX.rows, "calibration": calibration?.0.rows ?? 0],
                accuracy: Double(correct.filter { $0 }.count) / Double(max(testX.rows, 1)), calibration: metrics,
                temperature: temperature?.temperature,
                calibrationAfterTemperature: try temperature.map { try CalibrationMetrics.compute(logits: $0.apply(logits), labels: testY) },
                aurc: selective.aurc, testErrorInterval95: [interval.lower, interval.upper],
                entropyCorrect: mean(entropy, true), entropyWrong: mean(entropy, false), shift: shiftRows, robustness: robustness,
                certificationNote: note, corruptions: corruptions, conformal: conformal, attribution: attribution,
                riskCoverage: StandardFigures.riskCoveragePoints(selective), entropyEdges: histogram.edges,
                entropyCorrectCounts: histogram.yes, entropyWrongCounts: histogram.no, roc: roc)
            return (report, Self.figures(report))
        }
        let page = Self.page(report, figures: figures)
        try Inputs.guarded("report") {
            var files = ["report.json": Data(try JSONOutput.string(report).utf8), "report.html": Data(page.render().utf8),
                         "report.txt": Data(page.renderText().utf8)]
            for (name, svg) in figures { files[name] = Data(svg.utf8) }
            try ReportDirectory.write(to: out, files: files)
        }
        print(String(format: "accuracy %.4f, ECE %.4f; ", report.accuracy, report.calibration.ece)
              + report.attribution.counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))
        print("wrote \(out)/report.html (\(figures.count) plots), report.json and report.txt")
    }

    static func figures(_ r: Report) -> [String: String] {
        var f = [
            "reliability.svg": StandardFigures.reliability(r.calibration.bins, title: "Reliability diagram"),
            "risk_coverage.svg": StandardFigures.riskCoverage(r.riskCoverage, title: "Selective risk"),
            "uncertainty.svg": StandardFigures.histograms(r.entropyEdges, [("correct", r.entropyCorrectCounts), ("wrong", r.entropyWrongCounts)],
                                                          title: "Predictive entropy: right vs wrong", xLabel: "entropy (nats)"),
            "robustness.svg": StandardFigures.robustness(r.robustness.map(\.epsilon),
                                                         [("PGD-20", r.robustness.map(\.pgd20), false), ("APGD-CE", r.robustness.map(\.apgdCE), false)]
                                                         + (r.robustness.allSatisfy { $0.certifiedCROWN != nil } ? [("CROWN certified", r.robustness.map { $0.certifiedCROWN! }, true)] : []),
                                                         title: "Robust accuracy vs ε (L∞)"),
        ]
        if !r.roc.isEmpty { f["roc.svg"] = StandardFigures.roc(r.roc, title: "Shift detection (Mahalanobis)") }
        if let c = r.corruptions { f["corruptions.svg"] = StandardFigures.corruptions(c, title: "Accuracy under corruptions") }
        if !r.conformal.isEmpty { f["conformal.svg"] = StandardFigures.conformal(r.conformal.map { ($0.alpha, $0.coverage) }, title: "Conformal coverage (LAC)") }
        return f
    }

    /// The report's sections, rendered as report.html and report.txt.
    static func page(_ r: Report, figures: [String: String]) -> HTMLReport {
        func f4(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "—" }
        let t = r.attribution.thresholds
        let sections: [HTMLReport.Section] = [
            .init(heading: "Why this model fails",
                  paragraphs: [String(format: "Test accuracy %.4f (95%% interval on the error [%.4f, %.4f]). Thresholds: out of distribution when the Mahalanobis "
                                      + "score exceeds %.2f (95th percentile of held-out in-distribution scores); confident at p ≥ %.2f; fragile when %@ flips "
                                      + "the prediction within ε = %.3f.", r.accuracy, r.testErrorInterval95[0], r.testErrorInterval95[1],
                                      t.outOfDistributionScore, t.confidence, t.attack, t.epsilon)],
                  table: (["category", "samples"], FailureAttribution.Category.allCases.map { [$0.rawValue, String(r.attribution.counts[$0.rawValue] ?? 0)] })),
            .init(heading: "Reliability",
                  paragraphs: [String(format: "ECE %.4f, NLL %.4f, Brier %.4f; AURC %.4f. Predictive entropy %.4f on correct vs %.4f on wrong predictions.",
                                      r.calibration.ece, r.calibration.nll, r.calibration.brier, r.aurc, r.entropyCorrect, r.entropyWrong)]
                      + (r.temperature.map { [String(format: "Temperature scaling (fitted on the calibration set): T = %.3f, ECE %.4f, NLL %.4f.", $0,
                                                      r.calibrationAfterTemperature!.ece, r.calibrationAfterTemperature!.nll)] } ?? []),
                  figures: ["reliability.svg", "risk_coverage.svg", "uncertainty.svg", "conformal.svg"]),
            .init(heading: "Robustness: shift",
                  paragraphs: r.shift.isEmpty ? ["No shifted sets given (--shifted NAME=X[,Y])."] : [],
                  table: r.shift.isEmpty ? nil : (["shift", "samples", "accuracy", "Mahalanobis AUROC", "MSP", "energy", "errors", "flagged", "silent & confident"],
                                                  r.shift.map { [$0.shift, String($0.samples), f4($0.accuracy), f4($0.mahalanobisAUROC), f4($0.mspAUROC), f4($0.energyAUROC),
                                                                 $0.errors.map(String.init) ?? "—", $0.flaggedErrors.map(String.init) ?? "—",
                                                                 $0.silentConfidentErrors.map(String.init) ?? "—"] }),
                  figures: ["roc.svg"]),
            .init(heading: "Robustness: perturbations",
                  paragraphs: ["Attacks bound the robust accuracy from above, CROWN from below."] + (r.certificationNote.map { [$0] } ?? []),
                  table: (["ε", "PGD-20", "APGD-CE", "CROWN certified"], r.robustness.map { [String($0.epsilon), f4($0.pgd20), f4($0.apgdCE), f4($0.certifiedCROWN)] }),
                  figures: ["robustness.svg", "corruptions.svg"]),
        ]
        return HTMLReport(title: "Faultline report", subtitle: "Model \(r.spec)", sections: sections, figures: figures)
    }
}
