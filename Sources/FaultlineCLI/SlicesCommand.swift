import ArgumentParser
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import FaultlineStatistics
import Foundation

/// `faultline slices`: failure rates per class and per slice, with intervals and the worst slice.
struct SlicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slices",
        abstract: "Failure rate per class and per slice, with exact bounds and the worst slice named.",
        discussion: """
            Give --probs (or --logits) and --labels; --slices FILE gives one integer slice id per row (.npy, \
            .npz, CSV…), or with --slice-column NAME the named column of a CSV file. Per class and per slice: \
            errors, rate, two-sided Clopper–Pearson and Wilson (1 − α) intervals, the \
            one-sided Clopper–Pearson upper bound, and for 0 errors in n the exact bound 1 − α^(1/n) (about 3/n at \
            α = 0.05). Each slice is tested against the rest (one-sided Fisher exact test), adjusted by \
            --correction holm (family-wise error, default) or bh (false discovery rate); "worse" marks an \
            adjusted p ≤ α. The worst slice has the largest Clopper–Pearson lower bound. Bootstrap \
            (--bootstrap B, --seed) intervals for the AUROC of the top probability at telling right from \
            wrong (stratified) and, with --robust-correct FILE (0/1 per row: still right under attack), \
            for the robust accuracy. Exit codes: 0 ok, 1 a one-sided upper bound exceeds --max-error, \
            2 bad input.
            """)

    @Option(help: "Probabilities (N×C).") var probs: String?
    @Option(help: "Logits (N×C), instead of --probs.") var logits: String?
    @Option(help: "Integer labels (N).") var labels: String
    @Option(help: "Slice id per row (N integers), or a CSV with --slice-column.") var slices: String?
    @Option(help: "The CSV column of --slices holding the slice ids.") var sliceColumn: String?
    @Option(help: "0/1 per row: right under attack (robust accuracy).") var robustCorrect: String?
    @Option(help: "1 − confidence of every interval and test.") var alpha = 0.05
    @Option(help: "holm or bh (multiple-testing correction).") var correction = "holm"
    @Option(help: "Bootstrap resamples for the AUROC and robust accuracy.") var bootstrap = 1000
    @Option(help: "Seed of the bootstrap resamples.") var seed: UInt64 = 0
    @Option(help: "Exit 1 when a class or slice upper bound exceeds this.") var maxError: Double?
    @Flag(help: "Divide probability rows by their sums instead of rejecting them.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        try OptionCheck.atParse {
            guard alpha > 0 && alpha < 0.5 && alpha.isFinite else { throw InputError("--alpha must be a number in (0, 0.5) (got \(alpha))") }
            guard MultipleTesting.Correction(rawValue: correction) != nil else { throw InputError("--correction must be holm or bh (got '\(correction)')") }
            try OptionCheck.count(bootstrap, "--bootstrap", 1...OptionCheck.Limit.bootstrap)
            if let maxError { try OptionCheck.real(maxError, "--max-error", .unit) }
            if sliceColumn != nil && slices == nil { throw InputError("--slice-column needs --slices FILE.csv") }
        }
    }

    func run() throws {
        let report = try Inputs.guarded("slices") { () -> SliceReliability in
            let (p, option, path) = try Inputs.scores(probs: probs, probsOption: "--probs", logits: logits, logitsOption: "--logits", renormalize: renormalize)
            let y = try Inputs.labels(labels, option: "--labels", classes: p.columns)
            guard y.count == p.rows else { throw InputError("--labels \(labels) has \(y.count) labels but \(option) \(path) has \(p.rows) rows") }
            let ids = try slices.map { file -> [Int] in
                let ids = try Inputs.groupIds(file, option: "--slices", column: sliceColumn)
                guard ids.count == p.rows else { throw InputError("--slices \(file) has \(ids.count) ids but \(option) \(path) has \(p.rows) rows") }
                return ids
            }
            let robust = try robustCorrect.map { file -> [Bool] in
                let r = try Inputs.outcomes(file, option: "--robust-correct")
                guard r.count == p.rows else { throw InputError("--robust-correct \(file) has \(r.count) values but \(option) \(path) has \(p.rows) rows") }
                return r
            }
            return try SliceReliability.compute(probabilities: p, labels: y, slices: ids, robustCorrect: robust, alpha: alpha,
                                                correction: MultipleTesting.Correction(rawValue: correction)!, resamples: bootstrap, seed: seed)
        }
        if json {
            print(try JSONOutput.string(report))
        } else {
            print(Self.text(report))
        }
        let rows = [report.overall] + report.classes.rows + (report.slices?.rows ?? [])
        if let maxError, let bad = rows.first(where: { $0.upperBound > maxError }) {
            printError("faultline slices: \(bad.slice) may fail as often as \(String(format: "%.4f", bad.upperBound)) (> --max-error \(maxError))")
            throw ExitCode(1)
        }
    }

    static func text(_ r: SliceReliability) -> String {
        let level = String(format: "%g%%", 100 * (1 - r.alpha))
        func f(_ v: Double) -> String { String(format: "%.4f", v) }
        func table(_ t: SliceReliability.Table, _ what: String) -> String {
            let rows = t.rows.map { row in
                [row.slice, "\(row.samples)", "\(row.errors)", f(row.errorRate),
                 "\(f(row.clopperPearson.lower))–\(f(row.clopperPearson.upper))", "\(f(row.wilson.lower))–\(f(row.wilson.upper))",
                 f(row.zeroFailureBound ?? row.upperBound), String(format: "%.3g", row.adjustedPValue), row.worse ? "worse" : ""]
            }
            return "\(what) (\(level) intervals; p: one-sided Fisher vs the rest, \(r.correction == .holm ? "Holm" : "BH")-adjusted)\n"
                + TextTable.grid(header: [what, "n", "errors", "rate", "Clopper–Pearson", "Wilson", "upper", "p adj", "test"], rows: rows)
                + (t.worst.map { "\nworst \(what): \($0)" } ?? "")
        }
        var lines = [String(format: "%d errors in %d samples (%.4f); one-sided %@ upper bound %.4f", r.overall.errors, r.overall.samples,
                            r.overall.errorRate, level, r.overall.upperBound)]
        if let z = r.overall.zeroFailureBound { lines.append("0 errors in \(r.overall.samples): error ≤ \(f(z)) at \(level)") }
        lines.append(table(r.classes, "class"))
        if let s = r.slices { lines.append(table(s, "slice")) }
        if let a = r.errorDetectionAUROC { lines.append("AUROC of the top probability, right vs wrong: \(f(a.estimate)) [\(f(a.lower)), \(f(a.upper))] (bootstrap)") }
        if let a = r.robustAccuracy { lines.append("robust accuracy: \(f(a.estimate)) [\(f(a.lower)), \(f(a.upper))] (bootstrap)") }
        return lines.joined(separator: "\n")
    }
}
