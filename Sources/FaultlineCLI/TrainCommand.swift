import ArgumentParser
import FaultlineIO
import FaultlineAnalysis
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import FaultlineReport
import FaultlineRobustness
import Foundation

/// `faultline train`: train an MLP/CNN (or a deep ensemble) and save PyTorch-compatible weights.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a classifier (or an ensemble) on the bundled digits or on your files, and save its weights as .safetensors.",
        discussion: """
            Data: --data digits (the bundled 8×8 digits, stratified 60/20/20 split by --split-seed) or --x/--y files \
            (a --validation-fraction of them, stratified, is held out). Weights are saved as a PyTorch nn.Sequential \
            state_dict with the spec in the metadata (`faultline attack --weights` reads it back). With --members M, \
            member m is trained with seed + m and saved as OUT with _m before the extension.
            A CNN: --spec input:1x8x8,conv2d:1-8-3-1-1,relu,flatten,linear:512-10 (the grammar: `faultline attack --help`).
            Defences: --adversarial pgd (PGD-AT, Madry et al.: each batch replaced by L∞ PGD examples, --attack-steps \
            steps of --attack-step-size, default 2.5·ε/steps, from a random start), fast (FGSM from a random start, \
            step 1.25·ε, Wong et al.) or trades (Zhang et al.: cross-entropy + --beta × KL to the worst point of the \
            ε-ball, found with --attack-steps sign steps), with --eps and an optional linear ε ramp over --ramp-epochs \
            (pgd, fast); --noise σ trains on \
            x + N(0, σ²) (the base classifier of randomized smoothing: `faultline certify --method smoothing`). The \
            examples stay in --box. --augment corruptions (or a list: gaussian-noise,contrast,…) trains on rows \
            corrupted at --augment-severities with probability --augment-probability (images in [0, 1]; the layout \
            from the spec's input). With a defence the table adds the test accuracy under PGD-10 at --eps. Fast AT \
            checks for catastrophic overfitting after every epoch (PGD-10 accuracy on up to 256 validation rows \
            falling by more than 0.2): training then stops and keeps the epoch before.
            Fine-tuning an imported graph: --model net.onnx trains every Gemm/MatMul, Conv and folded \
            BatchNormalization of the graph (residual graphs too) with any of the defences, starting from its \
            weights; --out gets a .safetensors of the trained parameters that names net.onnx (keep it there), and \
            every command takes it as --model.
            """)

    @Option(help: "Architecture, e.g. linear:64-128,relu,linear:128-10 (a CNN: see above).")
    var spec = "linear:64-128,relu,linear:128-128,relu,linear:128-10"
    @Option(help: "Fine-tune an ONNX graph (.onnx, or the parameters of one saved by train) instead of a new --spec model.")
    var model: String?
    @Option(help: "'digits' for the bundled data set.") var data: String?
    @Option(help: "Training inputs (instead of --data).") var x: String?
    @Option(help: "Training labels (with --x).") var y: String?
    @Option(help: "With a CSV --x: the column (header name or 0-based index) holding the labels, instead of --y.") var labelColumn: String?
    @Option(help: "Share of --x/--y held out for validation and early stopping, in [0, 1) (0: none).") var validationFraction = 0.2
    @Option(help: "Output weights (.safetensors).") var out = "model.safetensors"
    @Option(help: "Ensemble size (1–\(OptionCheck.Limit.members)).") var members = 1
    @Option(help: "Epochs (1–\(OptionCheck.Limit.epochs)).") var epochs = 30
    @Option(help: "Minibatch size (1–\(OptionCheck.Limit.batchSize)).") var batchSize = 64
    @Option(help: "adam or sgd.") var optimizer = "adam"
    @Option(help: "Learning rate > 0 (default 1e-3 for adam, 0.05 for sgd).") var lr: Float?
    @Option(help: "SGD momentum in [0, 1).") var momentum: Float = 0.9
    @Option(help: "Weight decay (L2), ≥ 0.") var weightDecay: Float = 0
    @Option(help: "Early-stopping patience in epochs (0: off).") var patience = 5
    @Option(help: "Learning-rate schedule: constant, cosine, one-cycle, or piecewise:E1,E2[:FACTOR] (×FACTOR, default 0.1, from each epoch Ei).")
    var schedule = "constant"
    @Option(help: "Seed of initialisation, shuffling and dropout.") var seed: UInt64 = 0
    @Option(help: "Seed of the train/validation split.") var splitSeed: UInt64 = 0
    @Option(help: "Also write the split as DIR/{train,validation,test}_{x,y}.npy (for the other commands).") var exportSplit: String?
    @Option(help: "Adversarial training: pgd (PGD-AT), fast (FGSM from a random start) or trades.") var adversarial: String?
    @Option(help: "TRADES: the weight β of the KL term.") var beta: Float = 6
    @Option(help: "ε of adversarial training (L∞, in the inputs' units).") var eps: Float?
    @Option(help: "Steps of the PGD-AT attack (1–\(OptionCheck.Limit.steps)).") var attackSteps = 10
    @Option(help: "Step size of the training attack (default 2.5·ε/steps for pgd, 1.25·ε for fast).") var attackStepSize: Float?
    @Option(help: "Epochs over which ε grows linearly from 0 (0: none).") var rampEpochs = 0
    @Option(help: "Train on x + N(0, σ²) with this σ (noise augmentation).") var noise: Float?
    @Option(help: "Train on corrupted copies: 'corruptions' (all) or a comma-separated list of corruption names.") var augment: String?
    @Option(help: "Severities (1–5) drawn by --augment, comma-separated.") var augmentSeverities = "1,2,3,4,5"
    @Option(help: "Share of training rows --augment corrupts, in [0, 1].") var augmentProbability = 0.5
    @Flag(help: "fast: no check for catastrophic overfitting (PGD-10 accuracy on 256 held-out rows each epoch).") var noOverfittingCheck = false
    @Option(parsing: .unconditional, help: "Valid input box lo,hi or per channel lo1,…:hi1,… (defences clamp to it).") var box = "0,1"
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "No progress output.") var quiet = false

    struct MemberReport: Codable {
        var weights: String; var epochs: Int; var validationAccuracy: Double?; var testAccuracy: Double?; var seconds: Double
        /// With --adversarial or --noise and a test split: accuracy under PGD-10 at --eps (or σ for noise).
        var testRobustAccuracy: Double?
        /// Why training stopped early (catastrophic overfitting), if it did.
        var stopReason: String?
    }

    /// Option values alone, checked at parse time (usage errors, before any file is read).
    func validate() throws {
        try OptionCheck.atParse {
            try OptionCheck.count(members, "--members", 1...OptionCheck.Limit.members)
            try OptionCheck.count(epochs, "--epochs", 1...OptionCheck.Limit.epochs)
            try OptionCheck.count(batchSize, "--batch-size", 1...OptionCheck.Limit.batchSize)
            try OptionCheck.count(patience, "--patience", 0...OptionCheck.Limit.epochs)
            if let lr { try OptionCheck.real(lr, "--lr", .positive) }
            try OptionCheck.real(momentum, "--momentum", .halfOpenUnit)
            try OptionCheck.real(weightDecay, "--weight-decay", .nonNegative)
            try OptionCheck.real(validationFraction, "--validation-fraction", .halfOpenUnit)
            guard ["adam", "sgd"].contains(optimizer) else { throw InputError("--optimizer must be adam or sgd") }
            if let adversarial {
                guard ["pgd", "fast", "trades"].contains(adversarial) else { throw InputError("--adversarial must be pgd, fast or trades") }
                guard eps != nil else { throw InputError("--adversarial \(adversarial) needs --eps") }
                guard noise == nil else { throw InputError("give --adversarial or --noise, not both") }
            }
            if let eps { try OptionCheck.real(eps, "--eps", .positive) }
            try OptionCheck.real(beta, "--beta", .nonNegative)
            if let noise { try OptionCheck.real(noise, "--noise", .positive) }
            if let attackStepSize { try OptionCheck.real(attackStepSize, "--attack-step-size", .positive) }
            try OptionCheck.count(attackSteps, "--attack-steps", 1...OptionCheck.Limit.steps)
            try OptionCheck.count(rampEpochs, "--ramp-epochs", 0...OptionCheck.Limit.epochs)
            _ = try OptionCheck.box(box)
            _ = try learningRateSchedule()
            if let model {
                guard !model.lowercased().hasSuffix(".onnx") || !out.lowercased().hasSuffix(".onnx") else {
                    throw InputError("--out \(out): fine-tuning --model \(model) writes its parameters as .safetensors (the .onnx stays as it is); name --out FILE.safetensors")
                }
            }
            if augment != nil {
                guard adversarial == nil, noise == nil else { throw InputError("give one of --adversarial, --noise and --augment") }
                _ = try corruptionList()
                try OptionCheck.real(augmentProbability, "--augment-probability", .unit)
            }
        }
    }

    /// --augment and --augment-severities: the corruptions and severities to train on.
    func corruptionList() throws -> (corruptions: [Corruption], severities: [Int]) {
        let names = augment == "corruptions" ? Corruption.allCases.map(\.rawValue) : (augment ?? "").split(separator: ",").map(String.init)
        let corruptions = try names.map { name in
            guard let c = Corruption(rawValue: name) else {
                throw InputError("--augment: unknown corruption '\(name)' (corruptions, or some of \(Corruption.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return c
        }
        let severities = augmentSeverities.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !corruptions.isEmpty, !severities.isEmpty, severities.allSatisfy({ $0 != nil && (1...5).contains($0!) }) else {
            throw InputError("--augment needs corruption names and --augment-severities values in 1…5 (got '\(augment ?? "")', '\(augmentSeverities)')")
        }
        return (corruptions, severities.map { $0! })
    }

    /// --schedule as a `LearningRateSchedule`.
    func learningRateSchedule() throws -> LearningRateSchedule {
        switch schedule {
        case "constant": return .constant
        case "cosine": return .cosine
        case "one-cycle": return .oneCycle
        default:
            let parts = schedule.split(separator: ":", omittingEmptySubsequences: false)
            let usage = "--schedule must be constant, cosine, one-cycle or piecewise:E1,E2[:FACTOR] with epochs 0…\(OptionCheck.Limit.epochs) and FACTOR in [0, 1] (got '\(schedule.prefix(100))')"
            guard parts.count == 2 || parts.count == 3, parts[0] == "piecewise" else { throw InputError(usage) }
            let milestones = parts[1].split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            guard !milestones.isEmpty, milestones.count <= 1000, milestones.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= OptionCheck.Limit.epochs }) else {
                throw InputError(usage)
            }
            let factor = parts.count == 3 ? Float(parts[2]) : 0.1
            guard let factor, factor >= 0, factor <= 1 else { throw InputError(usage) }
            return .piecewise(milestones: milestones.map { $0! }, factor: factor)
        }
    }

    /// The corruption augmentation of --augment for a model taking `features` inputs, or nil.
    func corruptionAugmentation(_ model: some DifferentiableClassifier) throws -> CorruptionAugmentation? {
        guard augment != nil else { return nil }
        guard let shape = ImageShape.infer(model: model, features: model.inputFeatures) else {
            throw InputError("--augment needs images: the spec's input (\(model.inputFeatures) features) has no image layout; start it with input:CxHxW")
        }
        let (corruptions, severities) = try corruptionList()
        return try CorruptionAugmentation(corruptions, severities: severities, shape: shape, probability: augmentProbability, seed: seed)
    }

    /// The defence of --adversarial / --noise, or nil.
    func defence() throws -> AdversarialTraining? {
        let box = try OptionCheck.box(self.box)
        switch (adversarial, noise) {
        case ("pgd"?, _): return try AdversarialTraining.pgd(epsilon: eps!, steps: attackSteps, stepSize: attackStepSize, box: box, rampEpochs: rampEpochs, seed: seed)
        case ("fast"?, _): return try AdversarialTraining.fast(epsilon: eps!, stepSize: attackStepSize, box: box, rampEpochs: rampEpochs, seed: seed)
        case (nil, let sigma?): return try AdversarialTraining(.gaussianNoise(sigma: sigma), box: box, seed: seed)
        default: return nil
        }
    }

    func run() throws {
        let reports = try Inputs.guarded("train") { () -> [MemberReport] in
            // The spec is parsed and size-checked first: its output count is the class count labels must respect.
            let graph = try model.map { try Inputs.graphToTrain($0, option: "--model") }
            let shape = try graph.map { ModelShape($0.model) } ?? ModelShape(try Inputs.plan(spec), spec: spec)
            if let exportSplit { try OptionCheck.directoryTarget(exportSplit, "--export-split") }
            let (train, validation, test) = try datasets(shape)
            if let exportSplit {
                do {
                    try FileManager.default.createDirectory(atPath: exportSplit, withIntermediateDirectories: true)
                } catch {
                    throw InputError("--export-split \(exportSplit): cannot create the directory (\((error as NSError).localizedFailureReason ?? String(describing: error)))")
                }
                for (name, set) in [("train", train), ("validation", validation), ("test", test)] { try set?.write(to: exportSplit, name: name) }
            }
            let kind: OptimizerKind = optimizer == "sgd" ? .sgd(learningRate: lr ?? 0.05, momentum: momentum, weightDecay: weightDecay)
                : .adam(learningRate: lr ?? 1e-3, weightDecay: weightDecay)  // validate() allows adam or sgd only
            let defence = try defence()
            let trades = adversarial == "trades"
                ? try TRADES(beta: beta, epsilon: eps!, steps: attackSteps, stepSize: attackStepSize, box: try OptionCheck.box(box), seed: seed) : nil
            if defence != nil || trades != nil {  // the training rows must lie in the box the examples are clamped to
                let boxModel: any DifferentiableClassifier = try graph?.model ?? ModelSpec.build(spec, seed: 0)
                try Inputs.checkBox(try OptionCheck.box(box), model: boxModel, x: train.features, x == nil ? "--data" : "--x", x ?? "digits")
            }
            var reports: [MemberReport] = []
            for m in 0..<members {
                let path = members == 1 ? out : DeepEnsemble.memberPath(out, m)
                if let graph {
                    var member = graph.model
                    reports.append(try trainMember(&member, m, train: train, validation: validation, test: test, kind: kind, defence: defence,
                                                   trades: trades, path: path) { try ONNXModel.saveParameters($0, base: graph.base, to: $1) })
                } else {
                    var member = try ModelSpec.build(spec, seed: seed &+ UInt64(m))
                    reports.append(try trainMember(&member, m, train: train, validation: validation, test: test, kind: kind, defence: defence,
                                                   trades: trades, path: path) { try $0.save(weights: $1) })
                }
            }
            return reports
        }
        if json {
            print(try JSONOutput.string(reports))
        } else {
            let robust = reports.contains { $0.testRobustAccuracy != nil }
            let budget = (eps ?? noise).map { "\($0)" } ?? ""
            var header = ["weights", "epochs", "best validation acc.", "test acc."]
            if robust { header.append("test PGD-10 acc. (ε \(budget))") }
            header.append("seconds")
            func number(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
            let rows = reports.map { r -> [String] in
                var row = [r.weights, String(r.epochs), number(r.validationAccuracy), number(r.testAccuracy)]
                if robust { row.append(number(r.testRobustAccuracy)) }
                row.append(String(format: "%.2f", r.seconds))
                return row
            }
            print(TextTable.grid(header: header, rows: rows))
            for r in reports { if let reason = r.stopReason { print("\(r.weights): \(reason)") } }
        }
    }

    /// Trains member `m` (a new model or a copy of the graph to fine-tune) with the options, saves it to
    /// `path` and measures it on the test split.
    private func trainMember<Model: TrainableClassifier>(_ model: inout Model, _ m: Int, train: LabeledDataset, validation: LabeledDataset?,
                                                         test: LabeledDataset?, kind: OptimizerKind, defence: AdversarialTraining?, trades: TRADES?,
                                                         path: String, save: (Model, String) throws -> Void) throws -> MemberReport {
        let bar = ProgressBar(members > 1 ? "member \(m + 1)/\(members)" : "training", total: epochs, quiet: quiet || json)
        var options = TrainingOptions(epochs: epochs, batchSize: batchSize, optimizer: kind, seed: seed &+ UInt64(m),
                                      patience: patience > 0 ? patience : nil, augmentation: defence, schedule: try learningRateSchedule())
        if let corrupting = try corruptionAugmentation(model) { options.augmentation = corrupting }
        options.objective = trades
        if adversarial == "fast", !noOverfittingCheck, let defence {
            let held = validation ?? train
            options.epochCheck = try CatastrophicOverfittingCheck(batch: held.subset(Array(0..<min(256, held.count))), epsilon: defence.epsilon,
                                                                  box: defence.box, seed: seed &+ UInt64(m))
        }
        // One line per epoch under a defence: held-out clean and PGD-10 accuracy, seconds per epoch.
        let monitor = defence != nil || trades != nil || options.augmentation != nil ? try EpochMonitor(
            held: validation ?? train, epsilon: adversarial != nil ? eps : nil, box: try OptionCheck.box(box), seed: seed &+ UInt64(m),
            epochs: epochs, inner: options.epochCheck) { bar.note($0) } : nil
        if let monitor, !bar.quiet { options.epochCheck = monitor }
        let report = try model.train(on: train, validation: validation, options: options) { epoch, loss in
            bar.update(epoch + 1, detail: String(format: "loss %.4f", loss))
            monitor?.loss = loss
        }
        bar.update(epochs)
        try save(model, path)
        var robust: Double?
        if defence != nil || trades != nil, let test, let e = eps ?? noise {
            var pgd = GradientAttack.pgd(epsilon: e, stepSize: AttackRecipe.pgdStepSize(epsilon: e, steps: 10), steps: 10, seed: seed)
            pgd.box = try OptionCheck.box(box)
            robust = try pgd.run(model, test.features, labels: test.labels).robustAccuracy
        }
        return MemberReport(weights: path, epochs: report.epochs, validationAccuracy: report.validationAccuracy.max(),
                            testAccuracy: try test.map { try model.accuracy(on: $0) }, seconds: report.seconds,
                            testRobustAccuracy: robust, stopReason: report.stopReason)
    }

    private func datasets(_ shape: ModelShape) throws -> (LabeledDataset, LabeledDataset?, LabeledDataset?) {
        if data == "digits" {
            let split = try BundledDatasets.digits().stratifiedSplit(seed: splitSeed)
            return (split.train, split.calibration, split.test)
        }
        guard data == nil else { throw InputError("--data only knows 'digits'; give your own files with --x and --y") }
        guard let x, y != nil || labelColumn != nil else { throw InputError("give --data digits, or --x with --y (or --label-column for a CSV --x)") }
        let (features, labels) = try Inputs.labeled(x: x, "--x", y: y, "--y", labelColumn: labelColumn, model: shape)
        let all = try LabeledDataset(name: x, features: features, labels: labels, classCount: shape.classes)
        guard validationFraction > 0 && validationFraction < 1 else { return (all, nil, nil) }
        let split = all.stratifiedSplit(train: 1 - validationFraction, calibration: 0, seed: splitSeed)
        return (split.train, split.test, nil)
    }
}
