import ArgumentParser
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import Foundation

/// `faultline selective`: which confidence score ranks a classifier's errors best (AURC per score).
struct SelectiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selective",
        abstract: "Which confidence score ranks the errors best? AURC of MSP, margin, entropy, energy.",
        discussion: """
            Give --logits (N×C) or --probs (rows summing to 1 within 0.001) and --labels. Scores \
            (higher = more confident): msp (max probability), margin (top-1 minus top-2 \
            probability, the relative predictive probability), neg-entropy, and from logits \
            neg-energy (log-sum-exp) and max-logit. For each: the risk–coverage AURC (ties \
            averaged over their orders), E-AURC (minus the oracle's) and the risk at 50/80/90 % \
            coverage; the smallest AURC ranks errors best. Exit code 2 on bad input.
            """)

    @Option(help: "Logits (N×C).") var logits: String?
    @Option(help: "Probabilities (N×C), instead of logits.") var probs: String?
    @Option(help: "Integer labels (N).") var labels: String
    @Flag(help: "Divide each probability row by its sum.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let report = try Inputs.guarded("selective") { () -> SelectiveScoreComparison in
            guard (logits == nil) != (probs == nil) else { throw InputError("give exactly one of --logits and --probs") }
            if let logits {
                let z = try Inputs.logits(logits, option: "--logits")
                let y = try Inputs.labels(labels, option: "--labels", classes: z.columns)
                guard y.count == z.rows else { throw InputError("--labels \(labels) has \(y.count) labels for the \(z.rows) rows of --logits \(logits)") }
                return try Inputs.concerning("--logits", logits) { try SelectiveScoreComparison.compare(logits: z, labels: y) }
            }
            let p = try Inputs.probabilities(probs!, option: "--probs", renormalize: renormalize)
            let y = try Inputs.labels(labels, option: "--labels", classes: p.columns)
            guard y.count == p.rows else { throw InputError("--labels \(labels) has \(y.count) labels for the \(p.rows) rows of --probs \(probs!)") }
            return try Inputs.concerning("--probs", probs!) { try SelectiveScoreComparison.compare(probabilities: p, labels: y) }
        }
        if json { print(try JSONOutput.string(report)); return }
        print(TextTable.grid(header: ["score", "AURC", "E-AURC", "risk@50%", "risk@80%", "risk@90%"], rows: report.entries.map { e in
            [e.score.rawValue] + [e.aurc, e.excessAURC, e.riskAt50, e.riskAt80, e.riskAt90].map { String(format: "%.4f", $0) }
        }))
        print("\(report.samples) samples, \(report.errors) errors; best ranking of errors (smallest AURC): \(report.best.rawValue)")
    }
}
