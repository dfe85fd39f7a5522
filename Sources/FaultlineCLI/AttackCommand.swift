import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import FaultlineRobustness
import Foundation

/// `faultline attack`: robust accuracy of a model under gradient attacks, over a list of ε.
struct AttackCommand: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "attack",
        abstract: "Attack a model (PyTorch nn.Sequential weights in .safetensors) over a list of ε: FGSM, PGD, APGD, Square, AutoAttack, DeepFool, CW-L2.",
        discussion: """
            Inputs: --weights (a state_dict saved by PyTorch or `faultline train`), --spec when the file does not \
            record its architecture, --x (N×D, or N×C×H×W for image specs) and --y (integer labels), in .npy, .npz, \
            .safetensors, CSV or IDX. Inputs must lie in the box (--box, default 0,1).
            Output: clean and robust accuracy per ε as a table (or --json), optionally the adversarial examples \
            (--out FILE.npz, one array per ε). Exit codes: 0 ok, 1 robust accuracy below --min-accuracy, 2 bad input.
            Attacks: fgsm, bim (PGD without random start), pgd, mifgsm (step size defaults to 2.5·ε/steps, Madry et al.); \
            apgd-ce, apgd-dlr, apgd-t (AutoAttack's APGD, 100 steps by default: pass --steps 100); square (black box, L∞, \
            --queries); autoattack (APGD-CE → APGD-T → Square on still-robust samples, per-stage accuracy in the output); \
            deepfool and cw (minimal L∞/L2 and L2 perturbations, run once: a sample counts as broken at ε when the perturbation \
            found is ≤ ε; cw uses --steps Adam steps per binary-search round).
            Under mpirun each rank attacks its own rows of --x, random starts keyed by the row's index in --x, so the \
            table and --out equal the one-process run's (docs/SCALING.md).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Inputs (N×D or N×C×H×W).") var x: String
    @Option(help: "Integer labels (N).") var y: String?
    @Option(help: "With a CSV --x: the column (header name or 0-based index) holding the labels, instead of --y.") var labelColumn: String?
    @Option(help: "fgsm, bim, pgd, mifgsm, apgd-ce, apgd-dlr, apgd-t, square, autoattack, deepfool or cw.") var attack = "pgd"
    @Option(help: "linf or l2.") var norm = "linf"
    @Option(help: "Comma-separated perturbation budgets.") var eps = "0.1"
    @Option(help: "Iterations, 1–\(OptionCheck.Limit.steps) (ignored by fgsm).") var steps = 20
    @Option(help: "Step size (default 2.5·ε/steps).") var stepSize: Float?
    @Option(help: "Random restarts (pgd, apgd-*).") var restarts = 1
    @Option(help: "Queries per sample (square, autoattack's Square).") var queries = 5000
    @Flag(help: "Stop each sample at its first adversarial iterate.") var earlyStop = false
    @Option(help: "Seed of the random starts.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Valid input box: lo,hi, or per channel lo1,lo2,…:hi1,hi2,… (--box -1,1 works).") var box = "0,1"
    @Option(help: "Write the adversarial examples to this .npz (one array per ε).") var out: String?
    @Option(help: "Exit with code 1 when robust accuracy at the largest ε is below this.") var minAccuracy: Double?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "No progress output.") var quiet = false

    struct Report: Codable {
        var attack: String; var norm: String; var spec: String; var samples: Int; var cleanAccuracy: Double; var rows: [AttackSweep.Row]
    }

    func run() throws {
        let report = try Inputs.guarded("attack") { () -> Report in
            if Job.world.size > 1 { return try distributedReport() }
            let (budgets, lowHigh, norm, kind) = try checkedOptions()
            let model = try modelOptions.classifier()
            let (inputs, labels) = try Inputs.labeled(x: x, "--x", y: y, "--y", labelColumn: labelColumn, model: ModelShape(model))
            try Inputs.checkBox(lowHigh, model: model, x: inputs, "--x", x)
            let clean = try zip(model.predict(inputs), labels).filter { $0 == $1 }.count
            let bar = ProgressBar("attack", total: budgets.count * inputs.rows, quiet: quiet || json)
            let sweep = try AttackSweep(kind, recipe: recipe(norm, lowHigh)).run(model, inputs, labels: labels, epsilons: budgets) { done, _, e in
                bar.update(done, detail: e.map { "ε = \($0)" } ?? "")
            }
            for warning in sweep.warnings { printError("faultline attack: warning: \(warning)") }
            if let out { try NPZ.write(sweep.examples, to: out) }
            return Report(attack: attack, norm: norm.rawValue, spec: model.spec, samples: inputs.rows,
                          cleanAccuracy: Double(clean) / Double(max(inputs.rows, 1)), rows: sweep.rows)
        }
        if Job.quiet {  // ranks other than 0 of an mpirun job: rank 0 prints the report
        } else if json {
            print(try JSONOutput.string(report))
        } else {
            print("\(report.attack) (\(report.norm)) on \(report.spec), \(report.samples) samples, clean accuracy \(String(format: "%.4f", report.cleanAccuracy))")
            let stages = report.rows.first?.stages ?? []  // AutoAttack: accuracy after each of its attacks
            print(TextTable.grid(header: ["ε"] + (stages.isEmpty ? ["robust accuracy"] : stages.map { "after \($0.attack)" }) + ["seconds"], rows: report.rows.map { row in
                [String(row.epsilon)] + (row.stages?.map(\.robustAccuracy) ?? [row.robustAccuracy]).map { String(format: "%.4f", $0) } + [String(format: "%.2f", row.seconds)]
            }))
        }
        if let minAccuracy, let last = report.rows.last, last.robustAccuracy < minAccuracy {
            if !Job.quiet { printError("faultline attack: robust accuracy \(last.robustAccuracy) at ε = \(last.epsilon) is below --min-accuracy \(minAccuracy)") }
            throw ExitCode(1)
        }
    }

    /// The checked budgets, box, norm and attack, and the other numeric options.
    func checkedOptions() throws -> (budgets: [Float], box: InputBox, norm: PerturbationNorm, kind: AttackSweep.Kind) {
        let budgets = try OptionCheck.numbers(eps, "--eps")
        let lowHigh = try OptionCheck.box(box)
        try OptionCheck.count(steps, "--steps", 1...OptionCheck.Limit.steps)
        try OptionCheck.count(restarts, "--restarts", 1...OptionCheck.Limit.restarts)
        try OptionCheck.count(queries, "--queries", 1...OptionCheck.Limit.queries)
        if let stepSize { try OptionCheck.real(stepSize, "--step-size", .positive) }
        if let minAccuracy { try OptionCheck.real(minAccuracy, "--min-accuracy", .unit) }
        guard let norm = PerturbationNorm(rawValue: norm) else { throw InputError("--norm must be linf or l2") }
        guard let kind = AttackSweep.Kind(rawValue: attack) else {
            throw InputError("--attack must be one of \(AttackSweep.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if kind == .cw && norm != .l2 { throw InputError("cw is an L2 attack; use --norm l2") }
        if kind == .square && norm != .linf { throw InputError("square is an L∞ attack; use --norm linf") }
        return (budgets, lowHigh, norm, kind)
    }

    func recipe(_ norm: PerturbationNorm, _ box: InputBox) -> AttackRecipe {
        AttackRecipe(norm: norm, box: box, seed: seed, steps: steps, stepSize: stepSize, apgdSteps: steps, squareQueries: queries,
                     restarts: restarts, earlyStop: earlyStop)
    }

    /// Under mpirun: rank r attacks rows `Job.evenRows(N)` of --x (read from its part of a .npy), every
    /// random draw keyed by the row's index in --x (`AttackSweep.sampleOffset`), so each row's outcome is
    /// the one-process one. Per ε the robust and broken-at-start counts (and AutoAttack's per-stage
    /// counts) are summed on every rank, the seconds are the slowest rank's, and the adversarial examples
    /// of --out are gathered to rank 0, which writes the file once. Option errors and errors every rank
    /// meets end the job once; a rank's own input error names it.
    func distributedReport() throws -> Report {
        let world = Job.world
        let (budgets, box, norm, kind) = try Job.uniformly { try checkedOptions() }
        let model = try world.agree { try modelOptions.classifier() }
        let (inputs, labels, rows, total) = try world.agree {
            try Job.labeledShard(x: x, y: y, labelColumn: labelColumn, model: model, box: box)
        }
        let recipe = recipe(norm, box)
        // AutoAttack's stages, the same on every rank (also on one holding no rows).
        let stages = kind == .autoattack ? recipe.autoAttack(epsilon: 1, classes: model.outputFeatures).attacks : []
        let bar = ProgressBar("attack (rank 0 of \(world.size))", total: budgets.count * inputs.rows, quiet: quiet || json)
        let (result, clean) = try world.agree { () -> (AttackSweep.Result?, Int) in
            guard inputs.rows > 0 else { return (nil, 0) }
            var sweep = AttackSweep(kind, recipe: recipe)
            sweep.sampleOffset = rows.lowerBound
            let result = try sweep.run(model, inputs, labels: labels, epsilons: budgets) { done, _, e in
                bar.update(done, detail: e.map { "ε = \($0)" } ?? "")
            }
            return (result, try zip(model.predict(inputs), labels).filter { $0 == $1 }.count)
        }
        // Per ε: robust, broken at start, then one robust count per AutoAttack stage; and the seconds.
        let n = inputs.rows
        func count(_ accuracy: Double) -> Int { Int((accuracy * Double(n)).rounded()) }  // accuracy = count / n, exactly recoverable
        let local: [Int] = [clean] + budgets.indices.flatMap { k -> [Int] in
            guard let row = result?.rows[k] else { return [Int](repeating: 0, count: 2 + stages.count) }
            return [count(row.robustAccuracy), row.brokenAtStart] + (row.stages ?? []).map { count($0.robustAccuracy) }
        }
        let sums = try world.allreduce(local, .sum)
        let seconds = try world.allreduce(budgets.indices.map { result?.rows[$0].seconds ?? 0 }, .max)
        let share = { (c: Int) in Double(c) / Double(max(total, 1)) }
        var report = Report(attack: attack, norm: norm.rawValue, spec: model.spec, samples: total, cleanAccuracy: share(sums[0]), rows: [])
        for (k, e) in budgets.enumerated() {
            let base = 1 + k * (2 + stages.count), after = (0..<stages.count).map { sums[base + 2 + $0] }
            report.rows.append(AttackSweep.Row(epsilon: e, robustAccuracy: share(sums[base]), seconds: seconds[k], brokenAtStart: sums[base + 1],
                                               stages: stages.isEmpty ? nil : zip(stages, after).map { .init(attack: $0.name, robustAccuracy: share($1)) }))
            // A black-box stage that broke rows the gradient stages left robust (summed over the ranks).
            for s in stages.indices.dropFirst() where !stages[s].usesGradients && stages[s - 1].usesGradients && after[s] < after[s - 1] {
                if !Job.quiet { printError("faultline attack: warning: ε = \(e): \(AutoAttack.maskingWarning(attack: stages[s].name, broke: after[s - 1] - after[s], of: after[s - 1]))") }
            }
        }
        if let out {
            let names = result?.examples.map(\.name) ?? (kind.isMinimalPerturbation ? [kind.rawValue] : budgets.map { "eps_\($0)" })
            var gathered: [(name: String, tensor: Tensor)] = []
            for (k, name) in names.enumerated() {
                let mine = try result.map { try $0.examples[k].tensor.matrix(Float.self, name: name) } ?? Matrix<Float>(rows: 0, columns: model.inputFeatures)
                if let all = try world.gatherRows(mine) { gathered.append((name, Tensor(all))) }
            }
            if world.rank == 0 { try NPZ.write(gathered, to: out) }
        }
        return report
    }
}
