import ArgumentParser
import FaultlineAnalysis
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import Foundation

/// `faultline report`: the failure analysis of the user's own model and data (`FailureReport.build`).
struct ReportCommand: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Why does this model fail? The whole analysis of your model on your data, as report.html (plots), report.json and report.txt.",
        discussion: """
            Inputs: --weights (and --spec unless the file records it), --train-x/--train-y (fits the shift detector), \
            --test-x/--test-y, optionally --calibration-x/--calibration-y (temperature scaling, the OOD threshold, conformal \
            sets; without it the training split provides the threshold) and shifted sets as --shifted NAME=X.npy or \
            NAME=X.npy,Y.npy (repeatable; FILE.npz:ARRAY works everywhere). Inputs must lie in --box.
            Sections: calibration and selective risk; predictive entropy on right vs wrong predictions; Mahalanobis \
            (Ledoit–Wolf) on the model's penultimate features (the input of its last linear layer; it decides "out of \
            distribution" unless --input-space-ood) and on the raw inputs, MSP and energy detection of each shifted set; PGD and APGD-CE robust accuracy over --eps with \
            CROWN-certified accuracy beside them when the model is a ReLU network (IBP-certified for ONNX graphs; every \
            certificate checked against APGD-CE); the corruption sweep when the inputs are images (--shape, a convolution, or a square count) in [0, 1]; \
            conformal coverage vs α; and the attribution of every test row: out of distribution (score above the \
            --ood-quantile of held-out scores), confident error (p ≥ --confidence), low-confidence error, fragile (PGD flips \
            it within --attribution-eps) or robust. The directory is written atomically. Exit code 2 on bad input.
            Large models and sets: --max-samples N analyses a random N of the test rows (and of each shifted set); \
            --robustness-samples N attacks and certifies only the first N of them; --skip attacks,certify,corruptions,conformal \
            leaves sections out (the page says which); --time-budget S leaves the attacks and the corruption sweep out once S \
            seconds are spent. Progress on stderr names the stage and the step (each attack and ε, each certification) \
            with the time left, estimated from the steps' work; report.json records each stage's seconds.
            Under mpirun -np K every rank reads the inputs; the attacks, certificates, the minimal ε and the \
            attribution's attack are split by rows and merged, so rank 0 writes the one-process report (docs/SCALING.md).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training inputs (fit the shift detector).") var trainX: String
    @Option(help: "Training labels.") var trainY: String?
    @Option(help: "Test inputs.") var testX: String
    @Option(help: "Test labels.") var testY: String?
    @Option(help: "With CSV inputs: the column (header name or 0-based index) holding the labels, instead of --train-y, --test-y and --calibration-y.") var labelColumn: String?
    @Option(help: "Calibration inputs (optional).") var calibrationX: String?
    @Option(help: "Calibration labels (optional).") var calibrationY: String?
    @Option(help: "A shifted set, NAME=X or NAME=X,Y (repeatable).") var shifted: [String] = []
    @Option(help: "Comma-separated L∞ budgets.") var eps = "0.01,0.02,0.05,0.1"
    @Option(help: "ε of the attribution's attack (default: the smallest positive --eps).") var attributionEps: Float?
    @Option(help: "A wrong prediction with top-class probability ≥ this is a confident error.") var confidence = 0.9
    @Option(help: "Out of distribution above this quantile of held-out in-distribution Mahalanobis scores.") var oodQuantile = 0.95
    @Option(help: "Attacks, certificates and corruptions on the first N test rows (default: all).") var robustnessSamples: Int?
    @Option(help: "At most N test rows (and rows of each shifted set), drawn at random with --seed: the whole report on a subsample.") var maxSamples: Int?
    @Option(help: "Sections to leave out, comma-separated: attacks, certify, corruptions, conformal.") var skip: String?
    @Option(help: "Seconds for the whole report: the attacks and the corruption sweep are left out, with a note, once it is spent.")
    var timeBudget: Double?
    @Flag(help: "Also run the AutoAttack-style ensemble (APGD-CE, APGD-T, Square) at every ε.") var autoattack = false
    @Flag(help: "OOD on the raw inputs only (default: Mahalanobis on the model's penultimate features decides, inputs beside it).")
    var inputSpaceOOD = false
    @Option(help: "Image layout CxHxW for the corruption sweep.") var shape: String?
    @Option(parsing: .unconditional, help: "Valid input box: lo,hi, or per channel lo1,lo2,…:hi1,hi2,… (--box -1,1 works).") var box = "0,1"
    @Option(help: "Cross-validated probabilities of the test rows (label issues).") var labelProbs: String?
    @Option(help: "Report directory.") var out = "faultline-report"
    @Option(help: "Seed of attacks and corruptions.") var seed: UInt64 = 0
    @Flag(help: "No progress output.") var quiet = false

    /// Option values alone, checked at parse time.
    func validate() throws {
        try OptionCheck.atParse {
            _ = try analysisOptions()
            _ = try shifted.map(Inputs.shiftedSet)
            guard (calibrationX == nil) == (calibrationY == nil) || labelColumn != nil else { throw InputError("--calibration-x and --calibration-y go together") }
        }
    }

    func analysisOptions() throws -> FailureReport.Options {
        var options = FailureReport.Options()
        options.box = try OptionCheck.box(box)
        options.epsilons = try OptionCheck.numbers(eps, "--eps")
        options.attributionEpsilon = try attributionEps.map { try OptionCheck.real($0, "--attribution-eps", .positive) }
        options.confidenceThreshold = try OptionCheck.real(confidence, "--confidence", .unit)
        options.oodQuantile = try OptionCheck.real(oodQuantile, "--ood-quantile", .positiveUnit)
        options.robustnessSamples = try robustnessSamples.map { try OptionCheck.count($0, "--robustness-samples", 1...Int.max) }
        options.maxSamples = try maxSamples.map { try OptionCheck.count($0, "--max-samples", 1...Int.max) }
        if let timeBudget { try OptionCheck.real(timeBudget, "--time-budget", .positive) }
        options.timeBudget = timeBudget
        options.inputSpaceOOD = inputSpaceOOD ? true : nil
        if let skip {
            let names = skip.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            options.skip = Set(try names.map { name in
                guard let section = FailureReport.Options.Section(rawValue: name) else {
                    throw InputError("--skip: '\(name)' is not a section; use \(FailureReport.Options.Section.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return section
            })
        }
        options.autoAttack = autoattack
        options.seed = seed
        return options
    }

    func run() throws {
        let world = Job.world
        let report = try Inputs.guarded("report") { () -> FailureReport in
            let options = try Job.uniformly { () -> FailureReport.Options in
                let options = try analysisOptions()
                try OptionCheck.directoryTarget(out, "--out")
                return options
            }
            let model = try world.agree { try modelOptions.classifier() }
            let data = try world.agree { try inputs(model: model, options: options) }
            let bar = ProgressBar("report", total: 1000, quiet: quiet)
            // Every rank holds the same inputs; a rank-local failure inside the build aborts the job (Job.fail).
            return try FailureReport.build(model: model, data: data, options: options, communicator: world) { bar.update($0) }
        }
        guard !Job.quiet else { return }  // rank 0 writes and prints
        try Inputs.guarded("report") {
            try OptionCheck.directoryTarget(out, "--out")  // never replace (delete) a user's file
            try FailureReportRenderer.write(report, to: out)
        }
        print(String(format: "accuracy %.4f, ECE %.4f; ", report.reliability.accuracy, report.reliability.calibration.ece)
              + FailureAttribution.Category.allCases.map { "\($0.title): \(report.attribution.count($0))" }.joined(separator: "; "))
        print("wrote \(out)/report.html, report.json and report.txt")
    }

    /// The data of the report, read and checked (`FailureReport.check`) before any work.
    func inputs(model: some DifferentiableClassifier, options: FailureReport.Options) throws -> FailureReport.Data {
        try Inputs.checkBox(options.box, model: model)
        func dataset(_ x: String, _ xOption: String, _ y: String?, _ yOption: String) throws -> LabeledDataset {
            let (features, labels) = try Inputs.labeled(x: x, xOption, y: y, yOption, labelColumn: labelColumn, model: ModelShape(model))
            return try LabeledDataset(name: x, features: features, labels: labels, classCount: model.outputFeatures)
        }
        let shiftedSets = try shifted.map(Inputs.shiftedSet).map { set -> FailureReport.ShiftedSet in
            let option = "--shifted \(set.name)"
            let x = try Inputs.features(set.x, option: option, finite: true)
            try Inputs.modelInput(x, option, set.x, model: ModelShape(model))
            let y = try set.y.map { try Inputs.labels($0, option: option, classes: model.outputFeatures) }
            if let y, y.count != x.rows { throw InputError("\(option): \(set.y!) has \(y.count) labels for \(x.rows) rows of \(set.x)") }
            return FailureReport.ShiftedSet(name: set.name, features: x, labels: y)
        }
        var data = FailureReport.Data(
            train: try dataset(trainX, "--train-x", trainY, "--train-y"), test: try dataset(testX, "--test-x", testY, "--test-y"),
            calibration: try calibrationX.map { try dataset($0, "--calibration-x", calibrationY, "--calibration-y") },
            shifted: shiftedSets, imageShape: try Inputs.imageShape(shape, model: model, features: model.inputFeatures))
        data.labelProbabilities = try labelProbs.map { try Inputs.labelProbabilities($0, test: data.test, testOption: "--test-x") }
        try FailureReport.check(model: model, data: data, options: options)
        return data
    }
}
