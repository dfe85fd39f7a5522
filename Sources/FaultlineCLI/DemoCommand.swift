import ArgumentParser
import FaultlineAnalysis
import FaultlineIO
import FaultlineInputs
import FaultlineNN
import FaultlineReport
import Foundation

/// `faultline demo`: the main job on the bundled digits — an ensemble trained here, then the same
/// `FailureReport.build` as `faultline report`, with every optional analysis switched on.
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
            """)

    @Option(help: "Report directory.") var out = "faultline-report"
    @Option(help: "Seed of the split, the initialisations and the attacks.") var seed: UInt64 = 0
    @Option(help: "Ensemble members.") var members = 5
    @Flag(help: "No progress output.") var quiet = false

    static let spec = "linear:64-128,relu,dropout:0.2,linear:128-128,relu,linear:128-10"

    func validate() throws {
        try OptionCheck.atParse { try OptionCheck.count(members, "--members", 1...OptionCheck.Limit.members) }
    }

    func run() throws {
        let report = try Inputs.guarded("demo") { () -> FailureReport in
            try OptionCheck.directoryTarget(out, "--out")  // before minutes of training, not after
            let split = try BundledDatasets.digits().stratifiedSplit(seed: seed)
            let epochs = 40
            let bar = ProgressBar("training \(members) members", total: members * epochs, quiet: quiet)
            let training = TrainingOptions(epochs: epochs, batchSize: 32, optimizer: .adam(learningRate: 2e-3), seed: seed, patience: 6)
            let ensemble = try DeepEnsemble.train(spec: Self.spec, count: members, on: split.train, validation: split.calibration,
                                                  options: training, seed: seed) { member, epoch, _ in bar.update(member * epochs + epoch + 1) }
            bar.update(members * epochs)
            let image = ImageShape(channels: 1, height: 8, width: 8)
            let test = split.test
            let data = FailureReport.Data(
                train: split.train, test: test, calibration: split.calibration,
                shifted: [.gaussianNoise(test.features, sigma: 0.3, seed: seed, name: "Gaussian noise σ = 0.3", labels: test.labels),
                          try .rotated90(test.features, shape: image, labels: test.labels)],
                imageShape: image, description: "digits (UCI optical recognition of handwritten digits, 8×8, CC BY 4.0)")
            var options = FailureReport.Options()
            options.epsilons = [0, 0.01, 0.02, 0.05, 0.1, 0.2]
            options.attributionEpsilon = 0.05
            (options.fgsm, options.autoAttack, options.squareQueries, options.minimalEpsilon) = (true, true, 1000, true)
            options.monteCarloDropoutPasses = 20
            options.mahalanobisShrinkage = 0.01  // the corner pixels are constant
            options.seed = seed
            let stages = ProgressBar("analysing", total: FailureReport.stages.count + 1, quiet: quiet)
            var report = try FailureReport.build(ensemble: ensemble, data: data, options: options) { _, done, _ in stages.update(done) }
            report.heldOutClass = try HeldOutClassStudy.run(spec: Self.spec, train: split.train, test: test, heldOut: 9,
                                                            training: TrainingOptions(epochs: 30, batchSize: 32, optimizer: .adam(learningRate: 2e-3),
                                                                                      seed: seed &+ 100),
                                                            seed: seed &+ 100)
            stages.update(FailureReport.stages.count + 1)
            return report
        }
        let files = try Inputs.guarded("demo") { () -> [String: Data] in
            try OptionCheck.directoryTarget(out, "--out")  // never replace (delete) a user's file
            return try FailureReportRenderer.write(report, to: out)
        }
        print(String(decoding: files["report.txt"] ?? Data(), as: UTF8.self))
        print("wrote \(out)/report.html (\(files.keys.filter { $0.hasSuffix(".svg") }.count) plots), report.json and report.txt")
    }
}
