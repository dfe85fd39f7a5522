import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import Foundation

/// `faultline uncertainty`: the ensemble (or MC-dropout) uncertainty decomposition.
struct UncertaintyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uncertainty",
        abstract: "Total, aleatoric and epistemic uncertainty (entropy, expected entropy, mutual information), variance and disagreement of M members.",
        discussion: """
            Give the members' probabilities as one M×N×C array (--stacked, e.g. np.stack of softmax outputs or MC-dropout \
            passes) or as several N×C files (--member, repeated), rows summing to 1 within 0.001 (--renormalize divides \
            each row by its sum instead); --logits treats them as (finite) logits. With --labels the \
            averages are split between correct and wrong predictions of the mean; --out FILE.npz writes the per-sample \
            values. Exit code 2 on bad input.
            """)

    @Option(help: "M×N×C probabilities (or logits with --logits).") var stacked: String?
    @Option(help: "One member's N×C probabilities (repeat the option).") var member: [String] = []
    @Flag(help: "The inputs are logits (softmax is applied per member).") var logits = false
    @Option(help: "Integer labels (N), optional.") var labels: String?
    @Option(help: "Write per-sample values to this .npz.") var out: String?
    @Flag(help: "Divide each probability row by its sum instead of rejecting rows that do not sum to 1.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    typealias Summary = EnsembleUncertainty.Summary
    struct Report: Codable { var members: Int; var all: Summary; var correct: Summary?; var wrong: Summary?; var accuracy: Double? }

    func run() throws {
        let report = try Inputs.guarded("uncertainty") { () -> Report in
            let (stackedInput, members) = try Inputs.ensemble(stacked: stacked, members: member, logits: logits, renormalize: renormalize)
            guard stackedInput != nil || !members.isEmpty else { throw InputError("give --stacked or at least one --member") }
            let memberCount = stackedInput?.members ?? members.count
            let u = try stackedInput.map { try EnsembleUncertainty.compute(stacked: $0.flat, members: $0.members, classes: $0.classes, includeMean: out != nil) }
                ?? EnsembleUncertainty.compute(members: members, includeMean: out != nil)
            let all = Array(0..<u.predictiveEntropy.count)
            var report = Report(members: memberCount, all: u.summary(of: all))
            if let labels {
                let y = try Inputs.labels(labels, option: "--labels", classes: stackedInput?.classes ?? members[0].columns)
                guard y.count == all.count else { throw InputError("--labels \(labels) has \(y.count) labels for \(all.count) samples") }
                let predicted = u.prediction
                report.correct = u.summary(of: all.filter { predicted[$0] == y[$0] })
                report.wrong = u.summary(of: all.filter { predicted[$0] != y[$0] })
                report.accuracy = Double(report.correct!.samples) / Double(max(all.count, 1))
            }
            if let out {
                let n = all.count
                try NPZ.write([("entropy", Tensor(shape: [n], values: u.predictiveEntropy)), ("aleatoric", Tensor(shape: [n], values: u.expectedEntropy)),
                               ("epistemic", Tensor(shape: [n], values: u.mutualInformation)), ("variance", Tensor(shape: [n], values: u.meanVariance)),
                               ("mean", Tensor(u.mean))], to: out)
            }
            return report
        }
        if json { print(try JSONOutput.string(report)); return }
        print("\(report.members) members" + (report.accuracy.map { String(format: ", accuracy of the mean %.4f", $0) } ?? ""))
        let rows = [("all", report.all)] + [report.correct.map { ("correct", $0) }, report.wrong.map { ("wrong", $0) }].compactMap { $0 }
        print(TextTable.grid(header: ["samples", "n", "entropy (total)", "aleatoric", "epistemic (MI)", "variance", "variation ratio"], rows: rows.map { name, s in
            [name, String(s.samples)] + [s.entropy, s.aleatoric, s.epistemic, s.variance, s.variationRatio].map { String(format: "%.4f", $0) }
        }))
    }
}
