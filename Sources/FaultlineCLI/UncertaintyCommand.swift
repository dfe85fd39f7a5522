import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineReliability
import FaultlineReport
import Foundation

/// `faultline uncertainty`: the ensemble (or MC-dropout) uncertainty decomposition.
struct UncertaintyCommand: ParsableCommand, DistributedCommand {
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
        let report = try Inputs.guarded("uncertainty") { () -> Report? in
            if Job.world.size > 1 { return try runDistributed() }
            let (stackedInput, members) = try Inputs.ensemble(stacked: stacked, members: member, logits: logits, renormalize: renormalize)
            guard stackedInput != nil || !members.isEmpty else { throw InputError("give --stacked or at least one --member") }
            let memberCount = stackedInput?.members ?? members.count
            let u = try stackedInput.map { try EnsembleUncertainty.compute(stacked: $0.flat, members: $0.members, classes: $0.classes, includeMean: out != nil) }
                ?? EnsembleUncertainty.compute(members: members, includeMean: out != nil)
            return try summarize(u, members: memberCount, classes: stackedInput?.classes ?? members[0].columns)
        }
        guard let report else { return }  // ranks other than 0 of a distributed job
        if json { print(try JSONOutput.string(report)); return }
        print("\(report.members) members" + (report.accuracy.map { String(format: ", accuracy of the mean %.4f", $0) } ?? ""))
        let rows = [("all", report.all)] + [report.correct.map { ("correct", $0) }, report.wrong.map { ("wrong", $0) }].compactMap { $0 }
        print(TextTable.grid(header: ["samples", "n", "entropy (total)", "aleatoric", "epistemic (MI)", "variance", "variation ratio"], rows: rows.map { name, s in
            [name, String(s.samples)] + [s.entropy, s.aleatoric, s.epistemic, s.variance, s.variationRatio].map { String(format: "%.4f", $0) }
        }))
    }

    /// The report of per-sample values `u` (all the rows), and --out written.
    func summarize(_ u: EnsembleUncertainty, members memberCount: Int, classes: Int) throws -> Report {
        let all = Array(0..<u.predictiveEntropy.count)
        var report = Report(members: memberCount, all: u.summary(of: all))
        if let labels {
            let y = try Inputs.labels(labels, option: "--labels", classes: classes)
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

    /// Under mpirun: each rank reads its rows (RowSplit.even) of every --member file and computes their
    /// per-sample values (each a function of its own row); rank 0 gathers them, so the report and --out
    /// are the one-process ones bit for bit. --stacked is read whole and is refused (give --member files).
    func runDistributed() throws -> Report? {
        let world = Job.world
        let local = try world.agree { () throws -> (EnsembleUncertainty, Int) in
            guard stacked == nil else { throw InputError("--stacked is one M×N×C array read whole; under mpirun give one --member file per member") }
            guard !member.isEmpty else { throw InputError("give --stacked or at least one --member") }
            let shards = try member.map { path -> Inputs.Shard in
                if logits {
                    var s = try Inputs.logitShard(path, option: "--member", rows: Job.evenRows)
                    if s.matrix.rows > 0 { s.matrix = try Linalg.softmaxRows(s.matrix) }
                    return s
                }
                return try Inputs.probabilityShard(path, option: "--member", renormalize: renormalize, rows: Job.evenRows)
            }
            for (k, s) in shards.enumerated() where s.total != shards[0].total || s.matrix.columns != shards[0].matrix.columns {
                throw InputError("member \(k) is \(s.total)×\(s.matrix.columns), member 0 is \(shards[0].total)×\(shards[0].matrix.columns)")
            }
            let classes = shards[0].matrix.columns
            guard shards[0].matrix.rows > 0 else {
                return (EnsembleUncertainty.empty(classes: classes), classes)
            }
            return (try EnsembleUncertainty.compute(members: shards.map(\.matrix), includeMean: out != nil), classes)
        }
        var (u, classes) = local
        let values: [[Double]?] = try [u.predictiveEntropy, u.expectedEntropy, u.mutualInformation, u.meanVariance, u.variationRatio].map { try world.gatherv($0) }
        let prediction: [Int]? = try world.gatherv(u.prediction)
        let mean: Matrix<Float>? = out != nil ? try world.gatherRows(u.mean) : nil
        return try world.agree { () -> Report? in
            guard let prediction else { return nil }
            (u.predictiveEntropy, u.expectedEntropy, u.mutualInformation, u.meanVariance, u.variationRatio) =
                (values[0]!, values[1]!, values[2]!, values[3]!, values[4]!)
            u.prediction = prediction
            if let mean { u.mean = mean }
            classes = u.mean.columns > 0 ? u.mean.columns : classes
            return try summarize(u, members: member.count, classes: classes)
        }
    }
}
