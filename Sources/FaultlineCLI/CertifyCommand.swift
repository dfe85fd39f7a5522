import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import FaultlineRobustness
import Foundation

/// `faultline certify`: certified (lower) and attacked (upper) robust accuracy side by side.
struct CertifyCommand: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "certify",
        abstract: "Certified robust accuracy (IBP, CROWN, Lipschitz margins, randomized smoothing) next to attacked robust accuracy.",
        discussion: """
            Inputs as for `faultline attack` (--weights, --spec, --x, --y). Methods:
              ibp, crown    certified L∞ (inputs kept in --box) or L2 balls; CROWN needs ReLU networks given as a
                            state_dict; ONNX graphs get ibp (every graph operation has an interval rule).
              lipschitz     L2 radius margin/(√2·L) with L the product of exact per-layer spectral norms.
              smoothing     randomized smoothing of the model with noise σ (--sigma), CERTIFY with --n0/--n/--alpha;
                            the table gives certified accuracy at each radius in --eps (no attack: the smoothed
                            classifier is a different model).
            For ibp/crown/lipschitz every ε also runs an attack on all samples (APGD-CE, 100 steps, for L∞; PGD-L2 with
            --steps steps for L2): attack accuracy is an upper bound, certified accuracy a lower bound, and any sample
            certified but broken is printed as an inconsistency (exit code 1: a bug or numerical problem).
            Under mpirun each rank certifies (and attacks) its own rows, attack starts and smoothing noise keyed \
            by the row's index in --x, and rank 0 prints the table of the whole set (docs/SCALING.md).
            Exit codes: 0 ok, 1 inconsistencies, 2 bad input.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Inputs (N×D or N×C×H×W).") var x: String
    @Option(help: "Integer labels (N).") var y: String?
    @Option(help: "With a CSV --x: the column (header name or 0-based index) holding the labels, instead of --y.") var labelColumn: String?
    @Option(help: "ibp, crown, lipschitz or smoothing.") var method = "crown"
    @Option(help: "linf or l2 (lipschitz and smoothing are L2).") var norm = "linf"
    @Option(help: "Comma-separated budgets ε (radii for smoothing).") var eps = "0.01,0.02,0.05"
    @Option(parsing: .unconditional, help: "Valid input box: lo,hi, or per channel lo1,…:hi1,… (L∞ regions are intersected with it; --box -1,1 works).") var box = "0,1"
    @Option(help: "Attack steps for the upper bound, 0–\(OptionCheck.Limit.steps) (0: no attack).") var steps = 100
    @Option(help: "Smoothing noise σ.") var sigma: Float = 0.25
    @Option(help: "Smoothing selection samples n0 (1–\(OptionCheck.Limit.smoothingSamples)).") var n0 = 100
    @Option(help: "Smoothing estimation samples n (1–\(OptionCheck.Limit.smoothingSamples)).") var n = 10_000
    @Option(help: "Smoothing confidence level α.") var alpha = 0.001
    @Option(help: "Seed of attacks and noise.") var seed: UInt64 = 0
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "No progress output.") var quiet = false

    struct Report: Codable {
        var method: String; var norm: String; var spec: String; var samples: Int; var cleanAccuracy: Double
        var rows: [TwoSidedEvaluation.Row]
        /// Smoothing only: abstentions and the certified accuracy at each radius.
        var abstained: Int?
        var certifiedAtRadius: [SmoothingRow]?
        /// Lipschitz only: the network's constant and whether every layer's bound is exact.
        var lipschitzConstant: Double?
        var lipschitzExact: Bool?
    }
    struct SmoothingRow: Codable { var radius: Double; var certifiedAccuracy: Double }

    func run() throws {
        let report = try Inputs.guarded("certify") { () -> Report in
            if Job.world.size > 1 { return try distributedReport() }
            let (budgets, box, norm) = try checkedOptions()
            let model = try modelOptions.classifier()  // smoothing needs only forward passes; CROWN/Lipschitz a Sequential (below)
            let (inputs, labels) = try Inputs.labeled(x: x, "--x", y: y, "--y", labelColumn: labelColumn, model: ModelShape(model))
            try Inputs.checkBox(box, model: model, x: inputs, "--x", x)
            let clean = Double(try zip(model.predict(inputs), labels).filter { $0 == $1 }.count) / Double(max(inputs.rows, 1))
            var report = Report(method: method, norm: norm.rawValue, spec: model.spec, samples: inputs.rows, cleanAccuracy: clean, rows: [])
            let bar = ProgressBar("certify", total: method == "smoothing" ? inputs.rows : budgets.count, quiet: quiet || json)
            if method == "smoothing" {
                var smoothing = RandomizedSmoothing(sigma: sigma, selectionSamples: n0, estimationSamples: n, alpha: alpha)
                smoothing.seed = seed
                let certificates = try smoothing.certify(model, inputs) { done, _ in bar.update(done) }
                report.abstained = certificates.filter { $0.prediction == nil }.count
                report.certifiedAtRadius = RandomizedSmoothing.certifiedAccuracy(certificates, labels: labels, radii: budgets.map { Double($0.description)! })
                    .map { SmoothingRow(radius: $0.radius, certifiedAccuracy: $0.accuracy) }  // radii as given: 0.01, not 0.009999999776482582
                return report
            }
            let (option, path) = modelOptions.source
            if method == "lipschitz" && !(model is any LayerStackConvertible) {
                throw InputError("\(option) \(path): --method lipschitz needs a layer-by-layer model (a .safetensors state_dict and its spec); "
                                 + "for an ONNX graph use --method ibp (interval bounds through every graph operation), crown (graphs that are "
                                 + "layer chains) or smoothing")
            }
            let rows: [TwoSidedEvaluation.Row], lipschitz: LipschitzCertificate?
            do {
                (rows, lipschitz) = try TwoSidedEvaluation.evaluate(model, inputs, labels: labels, epsilons: budgets,
                                                                    certifier: TwoSidedEvaluation.Certifier(rawValue: method)!,
                                                                    recipe: AttackRecipe(norm: norm, box: box, seed: seed), attackSteps: steps) { done, _ in bar.update(done) }
            } catch CertificationError.unsupportedLayer(let message) {  // a property of the model file
                throw InputError("\(option) \(path): \(message)")
            }
            (report.rows, report.lipschitzConstant, report.lipschitzExact) = (rows, lipschitz?.constant, lipschitz?.isSound)
            return report
        }
        if Job.quiet {  // ranks other than 0 of an mpirun job: rank 0 prints the report
        } else if json {
            print(try JSONOutput.string(report))
        } else {
            print("\(report.method) (\(report.norm)) on \(report.spec), \(report.samples) samples, clean accuracy \(String(format: "%.4f", report.cleanAccuracy))")
            if let constant = report.lipschitzConstant {
                print("Lipschitz constant (product of layer bounds): \(String(format: "%.4g", constant))\(report.lipschitzExact == true ? "" : " (estimate: some layers by power iteration)")")
            }
            if let smoothing = report.certifiedAtRadius {
                print("abstained: \(report.abstained ?? 0) of \(report.samples)")
                print(TextTable.grid(header: ["L2 radius", "certified accuracy"], rows: smoothing.map { [String($0.radius), String(format: "%.4f", $0.certifiedAccuracy)] }))
            } else {
                print(TextTable.grid(header: ["ε", "attacked (upper)", "certified (lower)", "gap", "inconsistent"], rows: report.rows.map {
                    [String($0.epsilon), String(format: "%.4f", $0.attackAccuracy), String(format: "%.4f", $0.certifiedAccuracy),
                     String(format: "%.4f", $0.gap), String($0.inconsistencies.count)]
                }))
            }
        }
        let broken = report.rows.filter { !$0.inconsistencies.isEmpty }
        if !broken.isEmpty {
            if !Job.quiet { printError("faultline certify: \(broken.map { "ε = \($0.epsilon): rows \($0.inconsistencies.prefix(10).map(String.init).joined(separator: ", "))" }.joined(separator: "; ")) are certified but broken by the attack — a soundness bug; please report it") }
            throw ExitCode(1)
        }
    }

    /// The checked --eps, --box and norm (lipschitz and smoothing are L2), and the other numeric options.
    func checkedOptions() throws -> (budgets: [Float], box: InputBox, norm: PerturbationNorm) {
        let budgets = try OptionCheck.numbers(eps, "--eps")
        let box = try OptionCheck.box(self.box)
        try OptionCheck.count(steps, "--steps", 0...OptionCheck.Limit.steps)
        try OptionCheck.count(n0, "--n0", 1...OptionCheck.Limit.smoothingSamples)
        try OptionCheck.count(n, "--n", 1...OptionCheck.Limit.smoothingSamples)
        try OptionCheck.real(alpha, "--alpha", .openUnit)
        try OptionCheck.real(sigma, "--sigma", .positive)
        guard var norm = PerturbationNorm(rawValue: norm) else { throw InputError("--norm must be linf or l2") }
        guard ["ibp", "crown", "lipschitz", "smoothing"].contains(method) else { throw InputError("--method must be ibp, crown, lipschitz or smoothing") }
        if method == "lipschitz" || method == "smoothing" { norm = .l2 }
        return (budgets, box, norm)
    }

    /// Under mpirun: rank r certifies and attacks rows `Job.evenRows(N)` of --x (read from its part of a
    /// .npy; other files are read whole and sliced), attack starts keyed by the row's index in the file,
    /// so every per-row outcome is the one-process one; the counts are summed and the inconsistent rows
    /// gathered on every rank (each returns the whole set's report; rank 0 prints it). Option errors and
    /// errors every rank meets (an unsupported model) end the job once; a rank's own input error names it.
    func distributedReport() throws -> Report {
        let world = Job.world
        let (budgets, box, norm) = try Job.uniformly { try checkedOptions() }
        let model = try world.agree { try modelOptions.classifier() }
        let (option, path) = modelOptions.source
        let (inputs, labels, rows, total) = try world.agree {
            try Job.labeledShard(x: x, y: y, labelColumn: labelColumn, model: model, box: box)
        }
        if method == "smoothing" { return try distributedSmoothing(model, inputs, labels, rows: rows, total: total, radii: budgets, norm: norm) }
        let bar = ProgressBar("certify (rank 0 of \(world.size))", total: budgets.count, quiet: quiet || json)
        let (tallies, lipschitz, correct) = try world.agree { () -> ([TwoSidedEvaluation.Tally], LipschitzCertificate?, Int) in
            if method == "lipschitz" && !(model is any LayerStackConvertible) {
                throw InputError("\(option) \(path): --method lipschitz needs a layer-by-layer model (a .safetensors state_dict and its spec); "
                                 + "for an ONNX graph use --method ibp or crown")
            }
            let correct = inputs.rows == 0 ? 0 : try zip(model.predict(inputs), labels).filter { $0 == $1 }.count
            do {
                let (tallies, lipschitz) = try TwoSidedEvaluation.tally(
                    model, inputs, labels: labels, epsilons: budgets, certifier: TwoSidedEvaluation.Certifier(rawValue: method)!,
                    recipe: AttackRecipe(norm: norm, box: box, seed: seed), attackSteps: steps, sampleOffset: rows.lowerBound) { done, _ in bar.update(done) }
                return (tallies, lipschitz, correct)
            } catch CertificationError.unsupportedLayer(let message) {
                throw InputError("\(option) \(path): \(message)")
            }
        }
        let counts = try world.allreduce([correct] + tallies.flatMap { [$0.robust, $0.certified] }, .sum)
        var report = Report(method: method, norm: norm.rawValue, spec: model.spec, samples: total,
                            cleanAccuracy: Double(counts[0]) / Double(max(total, 1)), rows: [])
        for (k, tally) in tallies.enumerated() {
            let broken = try world.allgatherv(tally.inconsistencies)
            report.rows.append(TwoSidedEvaluation.Tally(epsilon: tally.epsilon, robust: counts[1 + 2 * k], certified: counts[2 + 2 * k],
                                                        inconsistencies: broken).row(samples: total))
        }
        (report.lipschitzConstant, report.lipschitzExact) = (lipschitz?.constant, lipschitz?.isSound)
        return report
    }

    /// Randomized smoothing under mpirun: each rank certifies its rows with noise keyed by the row's index
    /// in --x (`RandomizedSmoothing.sampleOffset`), so every certificate is the one-process one; the
    /// abstentions, the correct predictions and the hits at each radius are summed on every rank.
    func distributedSmoothing(_ model: some DifferentiableClassifier, _ inputs: Matrix<Float>, _ labels: [Int], rows: Range<Int>, total: Int,
                              radii budgets: [Float], norm: PerturbationNorm) throws -> Report {
        let world = Job.world
        let radii = budgets.map { Double($0.description)! }  // radii as given: 0.01, not 0.009999999776482582
        let bar = ProgressBar("certify (rank 0 of \(world.size))", total: inputs.rows, quiet: quiet || json)
        let local = try world.agree { () -> [Int] in
            guard inputs.rows > 0 else { return [Int](repeating: 0, count: 2 + radii.count) }
            var smoothing = RandomizedSmoothing(sigma: sigma, selectionSamples: n0, estimationSamples: n, alpha: alpha)
            (smoothing.seed, smoothing.sampleOffset) = (seed, rows.lowerBound)
            let certificates = try smoothing.certify(model, inputs) { done, _ in bar.update(done) }
            let correct = try zip(model.predict(inputs), labels).filter { $0 == $1 }.count
            return [correct, certificates.filter { $0.prediction == nil }.count]
                + radii.map { r in zip(certificates, labels).filter { $0.prediction == $1 && $0.radius >= r }.count }
        }
        let sums = try world.allreduce(local, .sum)
        var report = Report(method: method, norm: norm.rawValue, spec: model.spec, samples: total,
                            cleanAccuracy: Double(sums[0]) / Double(max(total, 1)), rows: [])
        report.abstained = sums[1]
        report.certifiedAtRadius = zip(radii, sums.dropFirst(2)).map { SmoothingRow(radius: $0, certifiedAccuracy: Double($1) / Double(max(total, 1))) }
        return report
    }
}
