import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import FaultlineStatistics
import Foundation

/// `faultline calibrate`: calibration metrics of logits or probabilities, and recalibration.
struct CalibrateCommand: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Calibration metrics (ECE, MCE, classwise and top-label ECE, Brier, NLL, reliability bins) and recalibration.",
        discussion: """
            Give --logits (N×C, finite) or --probs (rows summing to 1 within 0.001; --renormalize divides each row by \
            its sum instead) and --labels. Binning: equal-width (top-1 confidence, \
            [a, b) bins, confidence 1 in the last: our default), right-closed (scikit-learn's calibration_curve), \
            torchmetrics (its bins, including the phantom bin at 1.0) or equal-mass.
            Recalibration: --fit temperature|vector (from logits) or isotonic|histogram (top-1 confidence), fitted on \
            --calibration-logits/--calibration-probs and --calibration-labels; the metrics are reported before and \
            after on the main set, and --save FILE.json keeps the fitted recalibrator.
            --bootstrap B adds percentile intervals (--confidence, default 0.95) for every metric of the reported set \
            (after recalibration, if fitted) from B seeded resamples of its rows (--seed).
            Exit codes: 0 ok, 1 ECE above --max-ece, 2 bad input.
            """)

    @Option(help: "Logits (N×C).") var logits: String?
    @Option(help: "Probabilities (N×C), instead of logits.") var probs: String?
    @Option(help: "Integer labels (N).") var labels: String
    @Option(help: "Bins.") var bins = 15
    @Option(help: "equal-width, right-closed, torchmetrics or equal-mass.") var binning = "equal-width"
    @Option(help: "temperature, vector, isotonic or histogram.") var fit: String?
    @Option(help: "Calibration-split logits for --fit.") var calibrationLogits: String?
    @Option(help: "Calibration-split probabilities for --fit (isotonic, histogram).") var calibrationProbs: String?
    @Option(help: "Calibration-split labels for --fit.") var calibrationLabels: String?
    @Option(help: "Save the fitted recalibrator here (JSON).") var save: String?
    @Option(help: "Exit with code 1 when the ECE (after recalibration, if fitted) exceeds this.") var maxEce: Double?
    @Option(help: "Bootstrap resamples for percentile intervals of every metric (0: none).") var bootstrap = 0
    @Option(help: "Confidence level of the bootstrap intervals.") var confidence = 0.95
    @Option(help: "Seed of the bootstrap resamples.") var seed: UInt64 = 0
    @Flag(help: "Divide each probability row by its sum instead of rejecting rows that do not sum to 1.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        var samples: Int; var classes: Int; var binning: String; var before: CalibrationSummary; var recalibration: String?; var after: CalibrationSummary?
        /// Bootstrap intervals of the reported metrics (after recalibration, if fitted), by metric name.
        var intervals: [String: Bootstrap.Interval]?; var resamples: Int?
    }

    /// Option values alone, checked at parse time (usage errors, before any file is read).
    func validate() throws {
        try OptionCheck.atParse {
            try OptionCheck.count(bins, "--bins", 1...OptionCheck.Limit.bins)
            try OptionCheck.count(bootstrap, "--bootstrap", 0...OptionCheck.Limit.bootstrap)
            try OptionCheck.real(confidence, "--confidence", .openUnit)
            if let maxEce { try OptionCheck.real(maxEce, "--max-ece", .unit) }
        }
    }

    func run() throws {
        let report = try Inputs.guarded("calibrate") { () -> Report in
            if Job.world.size > 1 { return try runDistributed() }
            guard let mode = CalibrationMetrics.Binning(name: binning, bins: bins) else {
                throw InputError("--binning must be equal-width, right-closed, torchmetrics or equal-mass")
            }
            let main = try Self.load(logits: logits, probs: probs, what: "", renormalize: renormalize)
            let (rows, classes) = (main.matrix.rows, main.matrix.columns)
            let y = try Inputs.labels(labels, option: "--labels", classes: classes)
            guard y.count == rows else { throw InputError("--labels \(labels) has \(y.count) labels for the \(rows) rows of \(logits == nil ? "--probs" : "--logits")") }
            let before = try CalibrationSummary(main, labels: y, binning: mode, bins: bins)
            var report = Report(samples: rows, classes: classes, binning: binning, before: before)
            guard let fit else {
                try addIntervals(&report, main, y, mode)
                return report
            }
            guard let calibrationLabels else { throw InputError("--fit needs --calibration-labels (and calibration logits or probabilities)") }
            let calibration = try Self.load(logits: calibrationLogits, probs: calibrationProbs, what: "calibration ", renormalize: renormalize)
            guard calibration.matrix.columns == classes else {
                throw InputError("the calibration \(calibration.logits == nil ? "probabilities" : "logits") have \(calibration.matrix.columns) classes, the main ones \(classes)")
            }
            let cy = try Inputs.labels(calibrationLabels, option: "--calibration-labels", classes: classes)
            guard cy.count == calibration.matrix.rows else {
                throw InputError("--calibration-labels \(calibrationLabels) has \(cy.count) labels for \(calibration.matrix.rows) calibration rows")
            }
            guard let method = Recalibrator.Method(rawValue: fit) else { throw InputError("--fit must be temperature, vector, isotonic or histogram") }
            guard !method.needsLogits || (calibration.logits != nil && main.logits != nil) else {
                throw InputError("--fit \(fit) needs logits (--logits and --calibration-logits)")
            }
            let recalibrator = try Recalibrator.fit(method, on: calibration, labels: cy, bins: bins)
            let after = try recalibrator.recalibrated(main)
            report.recalibration = fit
            report.after = try CalibrationSummary(after, labels: y, binning: mode, bins: bins)
            try addIntervals(&report, after, y, mode)
            if let save { try recalibrator.save(to: save) }
            return report
        }
        if json {
            if !Job.quiet { print(try JSONOutput.string(report)) }
        } else if !Job.quiet {
            print("\(report.samples) samples, \(report.classes) classes, \(report.binning) binning")
            let rows = [("before", report.before)] + (report.after.map { [("after \(report.recalibration!)", $0)] } ?? [])
            print(TextTable.grid(header: [""] + CalibrationSummary.metricNames, rows: rows.map { name, m in
                [name] + m.values.map { String(format: "%.4f", $0) }
            }))
            if let intervals = report.intervals, let resamples = report.resamples {
                print(String(format: "%.0f%% bootstrap intervals (%d resamples of the rows):", 100 * confidence, resamples))
                print(TextTable.grid(header: ["metric", "estimate", "lower", "upper"], rows: CalibrationSummary.metricNames.map { name in
                    [name] + [intervals[name]!.estimate, intervals[name]!.lower, intervals[name]!.upper].map { String(format: "%.4f", $0) }
                }))
            }
        }
        let final = report.after ?? report.before
        if let maxEce, final.ece > maxEce {
            printError("faultline calibrate: ECE \(final.ece) exceeds --max-ece \(maxEce)")
            throw ExitCode(1)
        }
    }

    /// Under mpirun: each rank reads its rows (RowSplit.blockAligned) of --logits or --probs and sends its
    /// sums; every rank gets the metrics (bit-identical to one process from logits, ≤ 1e-12 relative
    /// from probabilities; see `CalibrationSummary(shard:…)`). Recalibration and the bootstrap need every
    /// row on one process and are refused.
    func runDistributed() throws -> Report {
        let world = Job.world
        let (shard, y, mode) = try world.agree { () throws -> (CalibrationScores, [Int], CalibrationMetrics.Binning) in
            guard fit == nil, bootstrap == 0 else {
                throw InputError("under mpirun, calibrate computes the metrics only; run --fit and --bootstrap without mpirun")
            }
            guard let mode = CalibrationMetrics.Binning(name: binning, bins: bins) else {
                throw InputError("--binning must be equal-width, right-closed, torchmetrics or equal-mass")
            }
            if case .equalMass = mode { throw InputError("--binning equal-mass sorts every confidence; run it without mpirun") }
            let scores: CalibrationScores, shard: Inputs.Shard
            if let logits {
                shard = try Inputs.logitShard(logits, option: "--logits", rows: Job.blockRows)
                scores = .logits(shard.matrix)
            } else if let probs {
                shard = try Inputs.probabilityShard(probs, option: "--probs", renormalize: renormalize, rows: Job.blockRows)
                scores = .probabilities(shard.matrix)
            } else {
                throw InputError("give --logits or --probs")
            }
            let y = try Inputs.labels(labels, option: "--labels", classes: shard.matrix.columns)
            guard y.count == shard.total else {
                throw InputError("--labels \(labels) has \(y.count) labels for the \(shard.total) rows of \(logits == nil ? "--probs" : "--logits")")
            }
            return (scores, Array(y[shard.rows]), mode)
        }
        let total = try world.allreduce([shard.matrix.rows], .sum)[0]
        let summary = try Job.uniformly { try CalibrationSummary(shard: shard, labels: y, totalRows: total, binning: mode, bins: bins, communicator: world) }
        return Report(samples: total, classes: shard.matrix.columns, binning: binning, before: summary)
    }

    /// Percentile intervals of every metric over `bootstrap` resamples of the rows of (scores, y).
    func addIntervals(_ report: inout Report, _ scores: CalibrationScores, _ y: [Int], _ mode: CalibrationMetrics.Binning) throws {
        guard bootstrap > 0 else { return }
        report.intervals = try CalibrationSummary.bootstrapIntervals(scores, labels: y, binning: mode, bins: bins, resamples: bootstrap,
                                                                     confidence: confidence, seed: seed)
        report.resamples = bootstrap
    }

    /// Logits if given (checked finite), else probabilities (checked, or renormalised).
    static func load(logits: String?, probs: String?, what: String, renormalize: Bool) throws -> CalibrationScores {
        let prefix = what.isEmpty ? "--" : "--calibration-"
        if let logits { return .logits(try Inputs.logits(logits, option: prefix + "logits")) }
        guard let probs else { throw InputError("give \(prefix)logits or \(prefix)probs") }
        return .probabilities(try Inputs.probabilities(probs, option: prefix + "probs", renormalize: renormalize))
    }
}
