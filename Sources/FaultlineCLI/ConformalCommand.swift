import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import Foundation

/// `faultline conformal`: split conformal prediction sets for classification.
struct ConformalCommand: ParsableCommand, DistributedCommand {
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

    /// Under mpirun: each rank reads its rows (RowSplit.even) of --calibration-probs and --probs; the
    /// calibration scores are all-gathered (the threshold is the one-process threshold, bit for bit), each
    /// rank predicts its test rows and rank 0 gathers the sets, reports and writes --out. Nil on other ranks.
    func runDistributed() throws -> Report? {
        let world = Job.world
        var settings = ConformalScore.Settings()
        (settings.lambda, settings.kReg) = (lambda, kReg)
        let (calibration, test, calibrationY, testY) = try world.agree { () throws -> (Inputs.Shard, Inputs.Shard, [Int], [Int]?) in
            guard ConformalScore(rawValue: score)!.splitScore(settings) != nil else {
                throw InputError("--score \(score) tunes on the whole calibration set and is not distributed; run it without mpirun, or use lac, aps, aps-randomized, raps or topk")
            }
            let c = try Inputs.probabilityShard(calibrationProbs, option: "--calibration-probs", renormalize: renormalize, rows: Job.evenRows)
            let t = try Inputs.probabilityShard(probs, option: "--probs", renormalize: renormalize, rows: Job.evenRows)
            guard c.matrix.columns == t.matrix.columns else {
                throw InputError("--calibration-probs \(calibrationProbs) has \(c.matrix.columns) classes, --probs \(probs) \(t.matrix.columns)")
            }
            let y = try Inputs.labels(calibrationLabels, option: "--calibration-labels", classes: c.matrix.columns)
            guard y.count == c.total else { throw InputError("--calibration-labels \(calibrationLabels) has \(y.count) labels for \(c.total) rows") }
            let testY = try labels.map { path in
                let y = try Inputs.labels(path, option: "--labels", classes: t.matrix.columns)
                guard y.count == t.total else { throw InputError("\(path) has \(y.count) labels for \(t.total) rows") }
                return y
            }
            return (c, t, Array(y[c.rows]), testY)
        }
        let predictor = try Job.uniformly { try SplitConformal(calibrationShard: calibration.matrix, labels: calibrationY, firstSample: calibration.rows.lowerBound,
                                           alpha: alpha, score: ConformalScore(rawValue: score)!.splitScore(settings)!,
                                           classConditional: classConditional, seed: seed, communicator: world) }
        let classes = test.matrix.columns
        let local = try world.agree { test.matrix.rows == 0 ? [] : try predictor.predict(test.matrix, firstSample: test.rows.lowerBound) }
        let gathered = try world.gatherRows(ConformalScore.membership(local, classes: classes))
        return try world.agree { () -> Report? in
            guard let membership = gathered else { return nil }
            let sets = (0..<membership.rows).map { i in (0..<classes).filter { membership[i, $0] == 1 } }
            let coverage = testY.map { SplitConformal.evaluate(sets: sets, labels: $0).coverage }
            if let out { try NPZ.write([("sets", Tensor(membership))], to: out) }
            return Report(alpha: alpha, score: score, threshold: predictor.threshold, samples: sets.count,
                          meanSetSize: Double(sets.reduce(0) { $0 + $1.count }) / Double(max(sets.count, 1)), coverage: coverage,
                          emptySets: sets.filter(\.isEmpty).count)
        }
    }

    var lastLabelRule: CumulativeProbabilitySets.LastLabel { lastLabel == "exclude" ? .exclude : lastLabel == "randomized" ? .randomized : .include }

    func run() throws {
        let report = try Inputs.guarded("conformal") { () -> Report? in
            if Job.world.size > 1 { return try runDistributed() }
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
        guard let report else { return }  // ranks other than 0 of a distributed job
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
