import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import FaultlineRobustness
import Foundation

/// `faultline corrupt`: accuracy under natural corruptions at severities 1–5.
struct CorruptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corrupt",
        abstract: "Accuracy of a model under natural corruptions (noise, blur, contrast, brightness, rotation, translation) at severities 1–5.",
        discussion: """
            Inputs as for `faultline attack`: --weights, --spec if the file does not record it, --x (pixel intensities in [0, 1]) \
            and --y. The image layout comes from --shape CxHxW, else the model's first convolution, else a square single \
            channel (784 → 1x28x28). Corruptions: \(Corruption.allCases.map(\.rawValue).joined(separator: ", ")) \
            (parameters in the documentation of `Corruption`). Output: an accuracy table corruption × severity with the \
            mean per corruption, or --json; --out FILE.npz saves every corrupted copy. Exit code 2 on bad input.
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
            let model = try modelOptions.classifier()
            let (inputs, labels) = try Inputs.labeled(x: x, "--x", y: y, "--y", labelColumn: labelColumn, model: ModelShape(model))
            guard let layout = try Inputs.imageShape(shape, model: model, features: inputs.columns) else {
                throw InputError("cannot infer the image layout of \(inputs.columns) features; pass --shape CxHxW")
            }
            let bar = ProgressBar("corrupt", total: chosen.count * levels.count, quiet: quiet || json)
            let report = try CorruptionSweep.evaluate(model, inputs, labels: labels, shape: layout, corruptions: chosen, severities: levels,
                                                      seed: seed) { done, _ in bar.update(done) }
            if let out { try NPZ.write(CorruptionSweep.copies(inputs, shape: layout, corruptions: chosen, severities: levels, seed: seed), to: out) }
            return report
        }
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
}
