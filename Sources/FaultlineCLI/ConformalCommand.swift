import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import Foundation

/// `faultline conformal`: split conformal prediction sets for classification.
struct ConformalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformal",
        abstract: "Split conformal prediction sets (LAC, APS, RAPS, top-k; optionally per class) with coverage ≥ 1 − α.",
        discussion: """
            Calibrate on --calibration-probs/--calibration-labels, predict sets for --probs (rows summing to 1 within \
            0.001; --renormalize divides each row by its sum instead); with --labels, report the \
            empirical coverage and mean set size. The threshold is the exact order statistic k = ⌈(n + 1)(1 − α)⌉; a \
            calibration set too small for α is an error naming the minimum size. --out FILE.npz writes the sets as an \
            N×C 0/1 array. --score aps-mapie and raps-mapie build sets in MAPIE 1.6's convention (randomised calibration \
            scores; --last-label include, exclude or randomized; raps-mapie tunes k* and λ as MAPIE does on a seeded \
            stratified --tuning-fraction of the calibration rows). Exit codes: 0 ok, 1 coverage below 1 − α − --tolerance (with labels), 2 bad input.
            """)

    @Option(help: "Calibration probabilities (N×C).") var calibrationProbs: String
    @Option(help: "Calibration labels (N).") var calibrationLabels: String
    @Option(help: "Probabilities to predict sets for (M×C).") var probs: String
    @Option(help: "Labels of --probs, to measure coverage.") var labels: String?
    @Option(help: "Miscoverage level α.") var alpha = 0.1
    @Option(help: "lac, aps, aps-randomized, aps-mapie, raps, raps-mapie or topk.") var score = "lac"
    @Option(help: "raps-mapie: share of the calibration rows that tunes k* and λ.") var tuningFraction = 0.1
    @Option(help: "aps-mapie: include, exclude or randomized (MAPIE's include_last_label).") var lastLabel = "include"
    @Option(help: "RAPS λ.") var lambda = 0.01
    @Option(help: "RAPS k_reg.") var kReg = 1
    @Flag(help: "One threshold per class (Mondrian).") var classConditional = false
    @Option(help: "Allowed shortfall of the empirical coverage before exit code 1.") var tolerance = 0.02
    @Option(help: "Write the sets (N×C, 0/1) to this .npz.") var out: String?
    @Option(help: "Seed of randomised scores.") var seed: UInt64 = 0
    @Flag(help: "Divide each probability row by its sum instead of rejecting rows that do not sum to 1.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable { var alpha: Double; var score: String; var threshold: Double; var samples: Int; var meanSetSize: Double; var coverage: Double?; var emptySets: Int }

    /// Option values alone, checked at parse time (usage errors, before any file is read).
    func validate() throws {
        try OptionCheck.atParse {
            try OptionCheck.real(alpha, "--alpha", .openUnit)
            try OptionCheck.real(tolerance, "--tolerance", .unit)
            guard let kind = ConformalScore(rawValue: score) else {
                throw InputError("--score must be \(ConformalScore.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard ["include", "exclude", "randomized"].contains(lastLabel) else { throw InputError("--last-label must be include, exclude or randomized") }
            if kind.isMapie && classConditional { throw InputError("--class-conditional is not available with --score \(score)") }
        }
    }

    var lastLabelRule: CumulativeProbabilitySets.LastLabel { lastLabel == "exclude" ? .exclude : lastLabel == "randomized" ? .randomized : .include }

    func run() throws {
        let report = try Inputs.guarded("conformal") { () -> Report in
            let calibration = try Inputs.probabilities(calibrationProbs, option: "--calibration-probs", renormalize: renormalize)
            let p = try Inputs.probabilities(probs, option: "--probs", renormalize: renormalize)
            try Inputs.sameClasses(calibration, "--calibration-probs", calibrationProbs, p, "--probs", probs)
            let calibrationY = try Inputs.labels(calibrationLabels, option: "--calibration-labels", classes: calibration.columns)
            var settings = ConformalScore.Settings()
            (settings.lambda, settings.kReg, settings.tuningFraction, settings.classConditional, settings.seed) = (lambda, kReg, tuningFraction, classConditional, seed)
            settings.lastLabel = lastLabelRule
            let (threshold, sets) = try ConformalScore(rawValue: score)!.sets(calibration: calibration, labels: calibrationY, alpha: alpha, test: p, settings: settings)
            var coverage: Double?
            if let labels {
                let y = try Inputs.labels(labels, option: "--labels", classes: p.columns)
                guard y.count == sets.count else { throw InputError("\(labels) has \(y.count) labels for \(sets.count) rows") }
                coverage = SplitConformal.evaluate(sets: sets, labels: y).coverage
            }
            if let out {
                try NPZ.write([("sets", Tensor(ConformalScore.membership(sets, classes: p.columns)))], to: out)
            }
            return Report(alpha: alpha, score: score, threshold: threshold, samples: sets.count,
                          meanSetSize: Double(sets.reduce(0) { $0 + $1.count }) / Double(max(sets.count, 1)), coverage: coverage,
                          emptySets: sets.filter(\.isEmpty).count)
        }
        if json {
            print(try JSONOutput.string(report))
        } else {
            print(String(format: "%@ at α = %.3f: threshold %.4f; %d sets, mean size %.3f, %d empty", report.score, report.alpha, report.threshold,
                         report.samples, report.meanSetSize, report.emptySets) + (report.coverage.map { String(format: "; coverage %.4f", $0) } ?? ""))
        }
        if let coverage = report.coverage, coverage < 1 - alpha - tolerance {
            printError("faultline conformal: coverage \(coverage) is below 1 − α − tolerance")
            throw ExitCode(1)
        }
    }
}
