import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineReliability
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline labelshift`: estimate a label shift, correct the predictions, and predict the target
/// accuracy without target labels.
struct LabelShiftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labelshift",
        abstract: "Estimate and correct a label shift; predict target accuracy without labels.",
        discussion: """
            Source: --source-probs (or --source-logits) with --source-labels, a labelled validation set; \
            target: --target-probs (or --target-logits), unlabelled. --method bbse (black-box shift \
            estimation from the source confusion matrix, Lipton et al. 2018) or mlls (maximum likelihood \
            by EM, Saerens et al. 2002; calibrate the probabilities first; p(y) is the mean source \
            probability) or rlls (BBSE regularised towards w = 1, Azizzadenesheli et al. 2019) \
            estimates w(y) = q(y)/p(y) and the target priors q. The corrected probabilities p'(y|x) ∝ w(y) p(y|x) go to --out (.npy, or \
            .npz array "probabilities"). ATC (Garg et al. 2022; --score msp or negative-entropy) and DoC \
            predict the target accuracy. With --target-labels: the true accuracy before and after the \
            correction. --conformal-alpha α: label-shift weighted conformal sets (Podkopaev & Ramdas \
            2021) calibrated on the source, with their mean size and, with labels, their coverage next \
            to unweighted sets. --calibrate bcts first fits a temperature and per-class biases on the \
            source logits (Alexandari et al. 2020) and applies them to both sets, as MLLS needs \
            calibrated probabilities. Exit code 2 on bad input.
            """)

    @Option(help: "Source validation probabilities (N×C).") var sourceProbs: String?
    @Option(help: "Source validation logits, instead of --source-probs.") var sourceLogits: String?
    @Option(help: "Source validation labels (N).") var sourceLabels: String
    @Option(help: "Target probabilities (M×C).") var targetProbs: String?
    @Option(help: "Target logits, instead of --target-probs.") var targetLogits: String?
    @Option(help: "Target labels (M), to measure the true accuracy.") var targetLabels: String?
    @Option(help: "bbse, mlls or rlls.") var method = "bbse"
    @Option(help: "rlls: the regulariser ρ (default: the paper's Δ_C bound).") var regularization: Double?
    @Option(help: "ATC score: msp or negative-entropy.") var score = "msp"
    @Option(help: "none or bcts (bias-corrected temperature scaling; logits).") var calibrate = "none"
    @Option(help: "Miscoverage α of weighted conformal sets on the target.") var conformalAlpha: Double?
    @Option(help: "Write the corrected target probabilities (.npy or .npz).") var out: String?
    @Flag(help: "Divide probability rows by their sums instead of rejecting them.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    struct Conformal: Codable {
        var alpha: Double; var thresholds: [Double]; var meanSetSize: Double; var coverage: Double?
        var unweightedMeanSetSize: Double; var unweightedCoverage: Double?
    }

    struct Report: Codable {
        var method: String; var sourceSamples: Int; var targetSamples: Int; var classes: Int
        var weights: [Double]; var sourcePriors: [Double]; var targetPriors: [Double]
        /// BBSE: the conditioning of the confusion matrix; MLLS: EM iterations and convergence.
        var conditioning: Double?; var iterations: Int?; var converged: Bool?
        /// RLLS: the regulariser ρ.
        var regularization: Double?
        var accuracyEstimate: AccuracyEstimate
        var targetAccuracy: Double?; var correctedTargetAccuracy: Double?
        var conformal: Conformal?
        /// BCTS fitted on the source logits (`--calibrate bcts`).
        var calibration: BiasCorrectedTemperatureScaling?
    }

    func validate() throws {
        try OptionCheck.atParse {
            guard ["bbse", "mlls", "rlls"].contains(method) else { throw InputError("--method must be bbse, mlls or rlls (got '\(method)')") }
            guard ["none", "bcts"].contains(calibrate) else { throw InputError("--calibrate must be none or bcts (got '\(calibrate)')") }
            if calibrate == "bcts" && (sourceLogits == nil || targetLogits == nil) {
                throw InputError("--calibrate bcts needs --source-logits and --target-logits (it rescales logits)")
            }
            guard AccuracyEstimate.Score(rawValue: score) != nil else { throw InputError("--score must be msp or negative-entropy (got '\(score)')") }
            if let regularization { try OptionCheck.real(regularization, "--regularization", .nonNegative) }
            if let conformalAlpha { try OptionCheck.real(conformalAlpha, "--conformal-alpha", .openUnit) }
            if let out {
                let lower = out.lowercased()
                guard lower.hasSuffix(".npy") || lower.hasSuffix(".npz") else { throw InputError("--out must end in .npy or .npz (got '\(out)')") }
            }
        }
    }

    func run() throws {
        let report = try Inputs.guarded("labelshift") { () -> Report in
            var (source, sOption, sPath) = try Inputs.scores(probs: sourceProbs, probsOption: "--source-probs", logits: sourceLogits,
                                                             logitsOption: "--source-logits", renormalize: renormalize)
            var (target, tOption, tPath) = try Inputs.scores(probs: targetProbs, probsOption: "--target-probs", logits: targetLogits,
                                                             logitsOption: "--target-logits", renormalize: renormalize)
            try Inputs.sameClasses(source, sOption, sPath, target, tOption, tPath)
            let k = source.columns
            let y = try Inputs.labels(sourceLabels, option: "--source-labels", classes: k)
            guard y.count == source.rows else { throw InputError("--source-labels \(sourceLabels) has \(y.count) labels but \(sOption) \(sPath) has \(source.rows) rows") }
            var calibration: BiasCorrectedTemperatureScaling?
            if calibrate == "bcts", let sourceLogits, let targetLogits {
                let zs = try Inputs.logits(sourceLogits, option: "--source-logits"), zt = try Inputs.logits(targetLogits, option: "--target-logits")
                let fit = try Inputs.concerning("--source-logits", sourceLogits) { try BiasCorrectedTemperatureScaling(logits: zs, labels: y) }
                (source, target, calibration) = (try Linalg.softmaxRows(fit.apply(zs)), try Linalg.softmaxRows(fit.apply(zt)), fit)
            }
            let targetY = try targetLabels.map { file -> [Int] in
                let t = try Inputs.labels(file, option: "--target-labels", classes: k)
                guard t.count == target.rows else { throw InputError("--target-labels \(file) has \(t.count) labels but \(tOption) \(tPath) has \(target.rows) rows") }
                return t
            }
            let priors = try LabelShift.priors(labels: y, classes: k)
            var report: Report
            let estimate = try AccuracyEstimate(source: source, labels: y, target: target, score: AccuracyEstimate.Score(rawValue: score)!)
            if method == "bbse" {
                let e = try Inputs.concerning("--source-labels", sourceLabels) {
                    try LabelShiftEstimate(validationPredictions: try Linalg.rowArgmax(source), validationLabels: y,
                                           targetPredictions: try Linalg.rowArgmax(target), classes: k)
                }
                report = Report(method: method, sourceSamples: source.rows, targetSamples: target.rows, classes: k, weights: e.weights,
                                sourcePriors: e.sourceDistribution, targetPriors: e.targetDistribution, conditioning: e.conditioning,
                                accuracyEstimate: estimate)
            } else if method == "rlls" {
                let e = try LabelShift.regularized(validationPredictions: try Linalg.rowArgmax(source), validationLabels: y,
                                                   targetPredictions: try Linalg.rowArgmax(target), classes: k, regularization: regularization)
                report = Report(method: method, sourceSamples: source.rows, targetSamples: target.rows, classes: k, weights: e.weights,
                                sourcePriors: e.sourceDistribution, targetPriors: e.targetDistribution, regularization: e.regularization,
                                accuracyEstimate: estimate)
            } else {
                guard priors.allSatisfy({ $0 > 0 }) else {
                    throw InputError("--source-labels \(sourceLabels): class \(priors.firstIndex(of: 0)!) never occurs; MLLS needs every class in the source")
                }
                // The model's own prior on the source (its mean probability), so that no shift gives w = 1.
                let implied = try LabelShift.priors(probabilities: source)
                if let absent = implied.firstIndex(where: { !($0 > 0) }) {
                    throw InputError("\(sOption) \(sPath): class \(absent) has probability 0 on every row; MLLS cannot weight it")
                }
                let e = try LabelShift.maximumLikelihood(targetProbabilities: target, sourcePriors: implied)
                report = Report(method: method, sourceSamples: source.rows, targetSamples: target.rows, classes: k, weights: e.weights,
                                sourcePriors: implied, targetPriors: e.targetDistribution, iterations: e.iterations, converged: e.converged,
                                accuracyEstimate: estimate)
            }
            report.calibration = calibration
            let corrected = try LabelShift.correct(target, weights: report.weights)
            if let targetY {
                func accuracy(_ m: Matrix<Float>) throws -> Double { Double(zip(try Linalg.rowArgmax(m), targetY).filter { $0 == $1 }.count) / Double(m.rows) }
                report.targetAccuracy = try accuracy(target)
                report.correctedTargetAccuracy = try accuracy(corrected)
            }
            if let alpha = conformalAlpha {
                let weighted = try WeightedConformal.LabelShiftSets(calibration: source, labels: y, alpha: alpha, classWeights: report.weights)
                let sets = try weighted.predict(target)
                let plain = try SplitConformal(calibration: source, labels: y, alpha: alpha).predict(target)
                func size(_ s: [[Int]]) -> Double { Double(s.reduce(0) { $0 + $1.count }) / Double(max(s.count, 1)) }
                report.conformal = Conformal(alpha: alpha, thresholds: weighted.thresholds, meanSetSize: size(sets),
                                             coverage: targetY.map { SplitConformal.evaluate(sets: sets, labels: $0).coverage },
                                             unweightedMeanSetSize: size(plain), unweightedCoverage: targetY.map { SplitConformal.evaluate(sets: plain, labels: $0).coverage })
            }
            if let out {
                if out.lowercased().hasSuffix(".npz") {
                    try NPZ.write([("probabilities", Tensor(corrected))], to: out)
                } else {
                    try NPY.write(corrected, to: out)
                }
            }
            return report
        }
        if json { print(try JSONOutput.string(report)); return }
        func f(_ v: Double) -> String { String(format: "%.4f", v) }
        var head = "\(report.method.uppercased()): \(report.sourceSamples) source rows, \(report.targetSamples) target rows, \(report.classes) classes"
        if let c = report.conditioning { head += "; conditioning \(String(format: "%.3g", c))" }
        if let r = report.regularization { head += String(format: "; ρ = %.4g", r) }
        if let i = report.iterations { head += "; EM \(i) iterations\(report.converged == true ? "" : " (not converged)")" }
        if let c = report.calibration { head += String(format: "; BCTS temperature %.4f", c.temperature) }
        print(head)
        print(TextTable.grid(header: ["class", "source p(y)", "target q(y)", "weight"], rows: (0..<report.classes).map {
            ["\($0)", f(report.sourcePriors[$0]), f(report.targetPriors[$0]), f(report.weights[$0])]
        }))
        let a = report.accuracyEstimate
        print("source accuracy \(f(a.sourceAccuracy)); predicted target accuracy: ATC (\(a.score.rawValue)) \(f(a.atc)), DoC \(f(a.doc)), "
              + "average confidence \(f(a.averageConfidence))")
        if let t = report.targetAccuracy, let c = report.correctedTargetAccuracy {
            print("true target accuracy \(f(t)); after the prior correction \(f(c))")
        }
        if let c = report.conformal {
            print("weighted conformal at α = \(c.alpha): mean set size \(f(c.meanSetSize))" + (c.coverage.map { ", coverage \(f($0))" } ?? "")
                  + "; unweighted: \(f(c.unweightedMeanSetSize))" + (c.unweightedCoverage.map { ", coverage \(f($0))" } ?? ""))
        }
        if let out { print("wrote \(out)") }
    }
}
