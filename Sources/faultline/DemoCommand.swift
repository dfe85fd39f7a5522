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
            Writes report.json (machine-readable) and report.txt (the same as a table) into --out, atomically \
            (a temporary directory renamed into place). Certification and the HTML report with plots are added as \
            their kernels land (see the issue tracker).
            """)

    @Option(help: "Report directory.") var out = "faultline-report"
    @Option(help: "Seed of the split, the initialisations and the attacks.") var seed: UInt64 = 0
    @Option(help: "Ensemble members.") var members = 5
    @Flag(help: "No progress output.") var quiet = false

    static let spec = "linear:64-128,relu,dropout:0.2,linear:128-128,relu,linear:128-10"
    static let budgets: [Float] = [0, 0.01, 0.02, 0.05, 0.1, 0.2]

    struct MemberResult: Codable { var seed: UInt64; var epochs: Int; var testAccuracy: Double; var trainingSeconds: Double }
    struct AttackRow: Codable { var epsilon: Float; var fgsm: Double; var pgd20: Double }
    struct ShiftRow: Codable {
        var shift: String; var ensembleAccuracy: Double
        var mahalanobisAUROC: Double; var mahalanobisFPR95: Double
        var mspAUROC: Double; var energyAUROC: Double; var mutualInformationAUROC: Double
    }
    struct Calibration: Codable {
        var memberECE: Double; var memberNLL: Double; var temperature: Double
        var memberECEAfterTemperature: Double; var memberNLLAfterTemperature: Double
        var ensembleECE: Double; var ensembleNLL: Double; var ensembleBrier: Double
    }
    struct Uncertainty: Codable {
        var meanMutualInformationCorrect: Double; var meanMutualInformationWrong: Double
        var meanEntropyCorrect: Double; var meanEntropyWrong: Double
        var aurc: Double; var excessAURC: Double; var riskAt80PercentCoverage: Double
        var testErrorInterval95: [Double]
        /// Split conformal (LAC, α = 0.1) calibrated on the calibration split with the ensemble's mean probabilities.
        var conformalCoverage: Double
        var conformalMeanSetSize: Double
    }
    struct Report: Codable {
        var dataset: String
        var split: [String: Int]
        var spec: String
        var members: [MemberResult]
        var ensembleTestAccuracy: Double
        var memberDisagreement: Double
        var mcDropoutAgreement: Double
        var calibration: Calibration
        var uncertainty: Uncertainty
        var shift: [ShiftRow]
        var robustness: [AttackRow]
        var medianMinimalPGDEpsilon: Float?
        var seconds: Double
        var system: String
    }

    func run() throws {
        let started = Date()
        let report = try Inputs.guarded("demo") { () -> Report in
            guard members >= 1 else { throw CLIError("--members must be ≥ 1") }
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

            let attackBar = ProgressBar("attacking member 1", total: Self.budgets.count, quiet: quiet)
            var robustness: [AttackRow] = []
            for (k, e) in Self.budgets.enumerated() {
                let fgsm = try GradientAttack.fgsm(epsilon: e).run(models[0], test.features, labels: test.labels)
                var pgd = GradientAttack.pgd(epsilon: e, stepSize: max(2.5 * e / 20, 1e-4), steps: 20, seed: seed)
                pgd.earlyStop = true
                let p = try pgd.run(models[0], test.features, labels: test.labels)
                robustness.append(AttackRow(epsilon: e, fgsm: fgsm.robustAccuracy, pgd20: p.robustAccuracy))
                attackBar.update(k + 1)
            }
            let minimal = try minimalEpsilon(models[0], test)
            return Report(
                dataset: "digits (UCI optical recognition of handwritten digits, 8×8, CC BY 4.0)",
                split: ["train": split.train.count, "calibration": split.calibration.count, "test": test.count],
                spec: Self.spec, members: results,
                ensembleTestAccuracy: Double(zip(ensemblePredictions, test.labels).filter { $0 == $1 }.count) / Double(test.count),
                memberDisagreement: disagreement, mcDropoutAgreement: agreement, calibration: calibration, uncertainty: uncertainty,
                shift: shift,
                robustness: robustness,
                medianMinimalPGDEpsilon: minimal, seconds: Date().timeIntervalSince(started),
                system: SystemReport.current().headline)
        }
        let text = Self.render(report)
        try Inputs.guarded("demo") {
            try ReportDirectory.write(to: out, files: ["report.json": Data(try JSONOutput.string(report).utf8), "report.txt": Data(text.utf8)])
        }
        print(text)
        print("wrote \(out)/report.json and \(out)/report.txt")
    }

    /// Shifted copies of the test set and how well each score separates them from the clean test set:
    /// Mahalanobis on the inputs (tied covariance fitted on the training split, shrinkage 0.01: the
    /// corner pixels are constant), maximum softmax probability and energy of member 1, and the ensemble's
    /// mutual information.
    private func shiftAnalysis(models: [Sequential], split: LabeledDataset.Split) throws -> [ShiftRow] {
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
        return try [("Gaussian noise σ = 0.3", noisy), ("rotated 90°", rotated)].map { name, x in
            let s = try scores(x)
            let maha = try DetectionMetrics.compute(inDistribution: clean.maha, outOfDistribution: s.maha)
            return ShiftRow(shift: name, ensembleAccuracy: s.accuracy, mahalanobisAUROC: maha.auroc, mahalanobisFPR95: maha.fprAt95TPR,
                            mspAUROC: try DetectionMetrics.compute(inDistribution: clean.msp, outOfDistribution: s.msp).auroc,
                            energyAUROC: try DetectionMetrics.compute(inDistribution: clean.energy, outOfDistribution: s.energy).auroc,
                            mutualInformationAUROC: try DetectionMetrics.compute(inDistribution: clean.mi, outOfDistribution: s.mi).auroc)
        }
    }

    /// Median over correctly classified test samples of the smallest ε (bisection, 8 rounds in [0, 0.5])
    /// at which PGD-20 with early stopping breaks the sample; nil if more than half are never broken.
    private func minimalEpsilon(_ model: Sequential, _ test: LabeledDataset) throws -> Float? {
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

    static func render(_ r: Report) -> String {
        var lines: [String] = []
        lines.append("Faultline demo — \(r.dataset)")
        lines.append("split: train \(r.split["train"]!), calibration \(r.split["calibration"]!), test \(r.split["test"]!); model \(r.spec)")
        lines.append("")
        lines.append("Reliability (in-distribution test set)")
        lines.append(TextTable.grid(header: ["member", "seed", "epochs", "test accuracy", "training s"], rows: r.members.enumerated().map {
            [String($0.offset + 1), String($0.element.seed), String($0.element.epochs), String(format: "%.4f", $0.element.testAccuracy),
             String(format: "%.2f", $0.element.trainingSeconds)]
        }))
        lines.append(String(format: "ensemble (mean probabilities) test accuracy %.4f; members disagree on %.1f%% of test samples; "
                            + "MC dropout (20 passes) agrees with the deterministic prediction %.1f%% of the time",
                            r.ensembleTestAccuracy, 100 * r.memberDisagreement, 100 * r.mcDropoutAgreement))
        let c = r.calibration, u = r.uncertainty
        lines.append(String(format: "calibration (15 equal-width bins): member 1 ECE %.4f, NLL %.4f; after temperature T = %.3f "
                            + "(fitted on the calibration split) ECE %.4f, NLL %.4f; ensemble ECE %.4f, NLL %.4f, Brier %.4f",
                            c.memberECE, c.memberNLL, c.temperature, c.memberECEAfterTemperature, c.memberNLLAfterTemperature,
                            c.ensembleECE, c.ensembleNLL, c.ensembleBrier))
        lines.append(String(format: "uncertainty: mutual information %.4f on correct vs %.4f on wrong predictions; predictive entropy %.4f vs %.4f",
                            u.meanMutualInformationCorrect, u.meanMutualInformationWrong, u.meanEntropyCorrect, u.meanEntropyWrong))
        lines.append(String(format: "selective prediction: AURC %.4f (E-AURC %.4f), risk %.4f at 80%% coverage; test error 95%% Clopper–Pearson interval [%.4f, %.4f]",
                            u.aurc, u.excessAURC, u.riskAt80PercentCoverage, u.testErrorInterval95[0], u.testErrorInterval95[1]))
        lines.append(String(format: "conformal prediction (LAC, α = 0.1, calibrated on the calibration split): coverage %.4f, mean set size %.2f",
                            u.conformalCoverage, u.conformalMeanSetSize))
        lines.append("")
        lines.append("Distribution shift (test set shifted; AUROC of telling shifted from clean samples, higher is better)")
        lines.append(TextTable.grid(header: ["shift", "ensemble acc.", "Mahalanobis", "FPR@95", "MSP", "energy", "MI"], rows: r.shift.map {
            [$0.shift, String(format: "%.4f", $0.ensembleAccuracy), String(format: "%.4f", $0.mahalanobisAUROC), String(format: "%.4f", $0.mahalanobisFPR95),
             String(format: "%.4f", $0.mspAUROC), String(format: "%.4f", $0.energyAUROC), String(format: "%.4f", $0.mutualInformationAUROC)]
        }))
        lines.append("")
        lines.append("Robustness of member 1 (L∞, pixels in [0, 1])")
        lines.append(TextTable.grid(header: ["ε", "FGSM robust acc.", "PGD-20 robust acc."], rows: r.robustness.map {
            [String($0.epsilon), String(format: "%.4f", $0.fgsm), String(format: "%.4f", $0.pgd20)]
        }))
        lines.append(r.medianMinimalPGDEpsilon.map { String(format: "median minimal PGD-20 ε over correctly classified test samples: %.4f", $0) }
                     ?? "median minimal PGD-20 ε: more than half of the samples resist ε = 0.5")
        lines.append(String(format: "total %.1f s; %@", r.seconds, r.system))
        return lines.joined(separator: "\n")
    }
}

/// Writes a directory of files atomically: everything goes into a temporary sibling directory which
/// is renamed over the target, so a failure never leaves a partial report under the target name.
enum ReportDirectory {
    static func write(to path: String, files: [String: Data]) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(target.lastPathComponent).tmp-\(UUID().uuidString)")
        do {
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)
            for (name, data) in files { try data.write(to: temporary.appendingPathComponent(name), options: .atomic) }
            if fm.fileExists(atPath: target.path) {
                let old = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(UUID().uuidString)")
                try fm.moveItem(at: target, to: old)
                try fm.moveItem(at: temporary, to: target)
                try? fm.removeItem(at: old)
            } else {
                try fm.moveItem(at: temporary, to: target)
            }
        } catch {
            try? fm.removeItem(at: temporary)
            throw IOError(.unwritable, file: path, "cannot write the report: \(error.localizedDescription)")
        }
    }
}

extension Matrix where Scalar == Float {
    /// Rows rescaled to sum to 1 exactly in float32 arithmetic as far as it allows (softmax outputs drift by
    /// a few ulp; the reliability kernels check sums to 1e-3).
    func normalizedRows() -> Matrix<Float> {
        var out = self
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<rows {
                var s: Float = 0
                for j in 0..<columns { s += p[i * columns + j] }
                for j in 0..<columns { p[i * columns + j] /= s }
            }
        }
        return out
    }
}

extension Matrix {
    /// Element-wise combination of two matrices of the same shape.
    func zipMap(_ other: Matrix, _ f: (Scalar, Scalar) -> Scalar) -> Matrix {
        precondition(rows == other.rows && columns == other.columns, "zipMap: shapes differ")
        var out = self
        out.withUnsafeMutableBufferPointer { o in other.withUnsafeBufferPointer { b in for i in o.indices { o[i] = f(o[i], b[i]) } } }
        return out
    }
}
