import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import FaultlineRobustness
import Foundation

/// `faultline corrupt`: accuracy under natural corruptions at severities 1–5.
struct CorruptCommand: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "corrupt",
        abstract: "Accuracy of a model under natural corruptions (noise, blur, contrast, brightness, rotation, translation) at severities 1–5.",
        discussion: """
            Inputs as for `faultline attack`: --weights, --spec if the file does not record it, --x (pixel intensities in [0, 1]) \
            and --y. The image layout comes from --shape CxHxW, else the model's first convolution, else a square single \
            channel (784 → 1x28x28). Corruptions: \(Corruption.allCases.map(\.rawValue).joined(separator: ", ")) \
            (parameters in the documentation of `Corruption`). Output: an accuracy table corruption × severity with the \
            mean per corruption, or --json; --out FILE.npz saves every corrupted copy. Exit code 2 on bad input.
            Under mpirun each rank corrupts and evaluates its own rows of --x, every random draw keyed by the row's \
            index in --x, so the table and --out equal the one-process run's (docs/SCALING.md).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Inputs in [0, 1] (N×D or N×C×H×W).") var x: String
    @Option(help: "Integer labels (N).") var y: String?
    @Option(help: "With a CSV --x: the column (header name or 0-based index) holding the labels, instead of --y.") var labelColumn: String?
    @Option(help: "Image layout CxHxW, e.g. 3x32x32.") var shape: String?
    @Option(help: "Comma-separated corruptions, or 'all'.") var corruptions = "all"
    @Option(help: "Comma-separated severities 1–5.") var severities = "1,2,3,4,5"
    @Option(help: "Seed of the random corruptions.") var seed: UInt64 = 0
    @Option(help: "Write the corrupted inputs to this .npz (one array per corruption and severity).") var out: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        let report = try Inputs.guarded("corrupt") { () -> CorruptionSweep.Report in
            if Job.world.size > 1 { return try distributedReport() }
            let (chosen, levels) = try checkedOptions()
            let model = try modelOptions.classifier()
            let (inputs, labels) = try Inputs.labeled(x: x, "--x", y: y, "--y", labelColumn: labelColumn, model: ModelShape(model))
            let layout = try imageLayout(model, features: inputs.columns)
            let bar = ProgressBar("corrupt", total: chosen.count * levels.count, quiet: quiet || json)
            let report = try CorruptionSweep.evaluate(model, inputs, labels: labels, shape: layout, corruptions: chosen, severities: levels,
                                                      seed: seed) { done, _ in bar.update(done) }
            if let out { try NPZ.write(CorruptionSweep.copies(inputs, shape: layout, corruptions: chosen, severities: levels, seed: seed), to: out) }
            return report
        }
        if Job.quiet { return }  // ranks other than 0 of an mpirun job: rank 0 prints the report
        if json {
            print(try JSONOutput.string(report))
            return
        }
        let levels = Array(Set(report.cells.map(\.severity))).sorted()
        let names = report.cells.map(\.corruption).reduce(into: [Corruption]()) { if !$0.contains($1) { $0.append($1) } }
        print("clean accuracy \(String(format: "%.4f", report.cleanAccuracy)); mean corruption accuracy \(String(format: "%.4f", report.meanAccuracy))")
        print(TextTable.grid(header: ["corruption"] + levels.map { "severity \($0)" } + ["mean"], rows: names.map { c in
            [c.rawValue] + levels.map { s in report.cells.first { $0.corruption == c && $0.severity == s }.map { String(format: "%.4f", $0.accuracy) } ?? "" }
                + [String(format: "%.4f", report.meanAccuracy(c))]
        }))
    }

    /// The checked --corruptions and --severities.
    func checkedOptions() throws -> (corruptions: [Corruption], severities: [Int]) {
        let chosen = try corruptions == "all" ? Corruption.allCases : corruptions.split(separator: ",", omittingEmptySubsequences: false).map { name in
            guard let c = Corruption(rawValue: String(name)) else {
                throw InputError("--corruptions: unknown '\(name)'; choose from \(Corruption.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return c
        }
        let levels = try severities.split(separator: ",", omittingEmptySubsequences: false).map { token -> Int in
            guard let s = Int(token.trimmingCharacters(in: .whitespaces)), (1...5).contains(s) else { throw InputError("--severities: '\(token)' is not 1–5") }
            return s
        }
        return (chosen, levels)
    }

    /// The image layout of rows of `features` values: --shape, else the model's, else a square single channel.
    func imageLayout(_ model: some DifferentiableClassifier, features: Int) throws -> ImageShape {
        guard let layout = try Inputs.imageShape(shape, model: model, features: features) else {
            throw InputError("cannot infer the image layout of \(features) features; pass --shape CxHxW")
        }
        return layout
    }

    /// Under mpirun: rank r corrupts and evaluates rows `Job.evenRows(N)` of --x (read from its part of a
    /// .npy), every random draw keyed by the row's index in --x (`CorruptionSweep.count(…sampleOffset:)`),
    /// so each row's corrupted copy and outcome are the one-process ones. The correct-prediction counts
    /// (clean and one per cell) are summed over the ranks — whole numbers, so the accuracies are the
    /// one-process ones bit for bit — and the copies of --out are gathered to rank 0, which writes the
    /// file once. Option errors and errors every rank meets end the job once; a rank's own input error
    /// names it.
    func distributedReport() throws -> CorruptionSweep.Report {
        let world = Job.world
        let (chosen, levels) = try Job.uniformly { try checkedOptions() }
        let model = try world.agree { try modelOptions.classifier() }
        let (inputs, labels, rows, _) = try world.agree {
            // Any finite value passes the box; the pixel range is checked here, rows numbered in --x.
            let everything = InputBox(-Float.greatestFiniteMagnitude...Float.greatestFiniteMagnitude)
            let shard = try Job.labeledShard(x: x, y: y, labelColumn: labelColumn, model: model, box: everything)
            let d = shard.inputs.columns
            if let bad = shard.inputs.withUnsafeBufferPointer({ $0.firstIndex { !($0 >= 0 && $0 <= 1) } }) {
                throw InputError("--x \(x): row \(shard.rows.lowerBound + bad / d) column \(bad % d) is \(shard.inputs[bad / d, bad % d]), "
                                 + "outside [0, 1]; corruptions expect pixel intensities in [0, 1]")
            }
            return shard
        }
        let layout = try Job.uniformly { try imageLayout(model, features: inputs.columns) }
        let bar = ProgressBar("corrupt (rank 0 of \(world.size))", total: chosen.count * levels.count, quiet: quiet || json)
        let local = try world.agree {
            try CorruptionSweep.count(model, inputs, labels: labels, shape: layout, corruptions: chosen, severities: levels, seed: seed,
                                      sampleOffset: rows.lowerBound) { done, _ in bar.update(done) }
        }
        let sums = try world.allreduce([local.rows, local.clean] + local.correct, .sum)
        let report = try Job.uniformly {
            try CorruptionSweep.report(.init(rows: sums[0], clean: sums[1], correct: Array(sums.dropFirst(2))), corruptions: chosen, severities: levels)
        }
        if let out {
            let mine = try world.agree {
                try CorruptionSweep.copies(inputs, shape: layout, corruptions: chosen, severities: levels, seed: seed, sampleOffset: rows.lowerBound)
            }
            var gathered: [(name: String, tensor: Tensor)] = []
            for (name, tensor) in mine {
                if let all = try world.gatherRows(try tensor.matrix(Float.self, name: name)) { gathered.append((name, Tensor(all))) }
            }
            try world.agree { if world.rank == 0 { try NPZ.write(gathered, to: out) } }
        }
        return report
    }
}
