import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation

/// `faultline uncertainty`: the ensemble (or MC-dropout) uncertainty decomposition.
struct UncertaintyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uncertainty",
        abstract: "Total, aleatoric and epistemic uncertainty (entropy, expected entropy, mutual information), variance and disagreement of M members.",
        discussion: """
            Give the members' probabilities as one M×N×C array (--stacked, e.g. np.stack of softmax outputs or MC-dropout \
            passes) or as several N×C files (--member, repeated); --logits treats them as logits. With --labels the \
            averages are split between correct and wrong predictions of the mean; --out FILE.npz writes the per-sample \
            values. Exit code 2 on bad input.
            """)

    @Option(help: "M×N×C probabilities (or logits with --logits).") var stacked: String?
    @Option(help: "One member's N×C probabilities (repeat the option).") var member: [String] = []
    @Flag(help: "The inputs are logits (softmax is applied per member).") var logits = false
    @Option(help: "Integer labels (N), optional.") var labels: String?
    @Option(help: "Write per-sample values to this .npz.") var out: String?
    @Flag(help: "Print JSON.") var json = false

    struct Summary: Codable { var samples: Int; var entropy: Double; var aleatoric: Double; var epistemic: Double; var variance: Double; var variationRatio: Double }
    struct Report: Codable { var members: Int; var all: Summary; var correct: Summary?; var wrong: Summary?; var accuracy: Double? }

    func run() throws {
        let report = try Inputs.guarded("uncertainty") { () -> Report in
            var members: [Matrix<Float>] = []
            if let stacked {
                let t = try Inputs.tensor(stacked, array: nil)
                guard t.shape.count == 3 else { throw CLIError("\(stacked) has shape \(t.shape); --stacked needs M×N×C") }
                let (m, n, c) = (t.shape[0], t.shape[1], t.shape[2])
                let flat = try t.matrix(Float.self, name: stacked)  // M × (N·C)
                members = try (0..<m).map { k in try Matrix(rows: n, columns: c, elements: Array(flat.row(k))) }
            }
            members += try member.map { try Inputs.features($0) }
            guard !members.isEmpty else { throw CLIError("give --stacked or at least one --member") }
            if logits { members = try members.map { try Linalg.softmaxRows($0) } }
            members = members.map { $0.normalizedRows() }
            let u = try EnsembleUncertainty.compute(members: members)
            func summary(_ rows: [Int]) -> Summary {
                func mean(_ v: [Double]) -> Double { rows.isEmpty ? 0 : rows.reduce(0) { $0 + v[$1] } / Double(rows.count) }
                return Summary(samples: rows.count, entropy: mean(u.predictiveEntropy), aleatoric: mean(u.expectedEntropy), epistemic: mean(u.mutualInformation),
                               variance: mean(u.meanVariance), variationRatio: mean(u.variationRatio))
            }
            let all = Array(0..<u.predictiveEntropy.count)
            var report = Report(members: members.count, all: summary(all))
            if let labels {
                let y = try Inputs.labels(labels, option: "--labels", classes: u.mean.columns)
                guard y.count == all.count else { throw CLIError("\(labels) has \(y.count) labels for \(all.count) samples") }
                let predicted = try Linalg.rowArgmax(u.mean)
                report.correct = summary(all.filter { predicted[$0] == y[$0] })
                report.wrong = summary(all.filter { predicted[$0] != y[$0] })
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
