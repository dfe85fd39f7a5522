import ArgumentParser
import FaultlineAnalysis
import FaultlineIO
import FaultlineInputs
import FaultlineNN
import FaultlineReport
import Foundation

/// `faultline demo`: the main job on the bundled digits (`DigitsStudy`) — an ensemble trained here, then
/// the same `FailureReport.build` as `faultline report`, with every optional analysis switched on.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train a 5-member MLP ensemble on the bundled digits and measure how it fails; write ./faultline-report/.",
        discussion: """
            Steps: stratified 60/20/20 split of the 8×8 digits; five MLPs (64-128-128-10 with dropout) trained with \
            Adam and early stopping (DeepEnsemble.train); then the failure report of the ensemble (FailureReport.build): \
            calibration before and after temperature scaling, Monte Carlo dropout, ensemble uncertainty (entropy, mutual \
            information) on right and wrong predictions, selective risk, a Clopper–Pearson interval on the test error, \
            conformal coverage vs α; Gaussian-noise and 90°-rotated copies of the test set scored by Mahalanobis, MSP, energy \
            and mutual information; a class held out of training and detected; FGSM, PGD-20, APGD-CE and an AutoAttack-style \
            ensemble over ε with CROWN-certified accuracy beside them; the median minimal PGD ε; 8 corruptions × 5 severities; \
            and the attribution of every test row of member 1 to a reliability or robustness failure.
            Writes report.html (self-contained, inline SVG plots), the plots as .svg, report.json (every number, including \
            what the plots draw) and report.txt into --out, atomically.
            With --model, your own digits classifier (an .onnx from torch.onnx.export, or a .safetensors state_dict \
            with its spec in the metadata) is analysed on the same split instead of training the ensemble: it must take \
            64 features (pixel / 16, in [0, 1]) and give 10 logits. The ensemble and held-out-class sections are then absent.
            """)

    @Option(help: "Report directory.") var out = "faultline-report"
    @Option(help: "Seed of the split, the initialisations and the attacks.") var seed: UInt64 = 0
    @Option(help: "Ensemble members.") var members = 5
    @Option(help: "Analyse this model (.onnx or .safetensors; 64 inputs, 10 classes) instead of training the ensemble.") var model: String?
    @Flag(help: "No progress output.") var quiet = false

    func validate() throws {
        try OptionCheck.atParse { try OptionCheck.count(members, "--members", 1...OptionCheck.Limit.members) }
    }

    func run() throws {
        let report = try Inputs.guarded("demo") { () -> FailureReport in
            try OptionCheck.directoryTarget(out, "--out")  // before minutes of training, not after
            if let model {
                let classifier = try Inputs.classifier(model, spec: nil, option: "--model")
                guard classifier.inputFeatures == 64, classifier.outputFeatures == 10 else {
                    throw InputError("--model \(model) takes \(classifier.inputFeatures) features and gives \(classifier.outputFeatures) logits; "
                                     + "the demo's digits need 64 inputs (8×8 pixels / 16) and 10 classes (use `faultline report` for other data)")
                }
                let analysis = ProgressBar("analysing", total: 1000, quiet: quiet)
                return try DigitsStudy.run(model: classifier, seed: seed) { analysis.update($0) }
            }
            let training = ProgressBar("training \(members) members", total: members * DigitsStudy.epochs, quiet: quiet)
            let analysis = ProgressBar("analysing", total: 1000, quiet: quiet)
            return try DigitsStudy.run(seed: seed, members: members, training: { done, _ in training.update(done) },
                                       analysis: { analysis.update($0) })
        }
        let files = try Inputs.guarded("demo") { () -> [String: Data] in
            try OptionCheck.directoryTarget(out, "--out")  // never replace (delete) a user's file
            return try FailureReportRenderer.write(report, to: out)
        }
        print(String(decoding: files["report.txt"] ?? Data(), as: UTF8.self))
        print("wrote \(out)/report.html (\(files.keys.filter { $0.hasSuffix(".svg") }.count) plots), report.json and report.txt")
    }
}
