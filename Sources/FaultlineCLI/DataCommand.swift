import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineReliability
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline data`: the quality of the data itself — label issues by confident learning (`issues`)
/// and train/test duplicates (`leakage`).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Is the data right? Label issues and train/test duplicates; joining per-rank outputs.",
        discussion: "Exit codes: 0 ok, 1 a --fail-on check fired, 2 bad input.",
        subcommands: [DataIssuesCommand.self, DataLeakageCommand.self, DataConcatCommand.self])
}

/// `faultline data issues`: confident learning on probabilities and labels.
struct DataIssuesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issues",
        abstract: "Rows whose label is likely wrong (confident learning, cleanlab's rules).",
        discussion: """
            Give out-of-sample --probs (or --logits) for the labelled rows — e.g. \
            cross-validated; a model's probabilities on its own training rows hide \
            most issues — and --labels. Per class j the threshold t_j is the mean \
            probability of j over the rows labelled j; the confident joint counts \
            each row under its given label and the class it is confidently in (the \
            argmax when several pass), calibrated to the label counts. --filter \
            prune_by_noise_rate (default) flags, for each off-diagonal cell of the \
            joint, that many rows by the largest margin; confident_learning flags \
            the off-diagonal rows; prune_by_class the rows of lowest p of their label \
            beyond the diagonal count; both needs both prunes. Rows are ranked by --rank-by self_confidence \
            (p of the given label) or normalized_margin. Same definitions and \
            results as cleanlab 2.9 (ties in index order). Exit codes: 0 ok, 1 the \
            issue fraction exceeds --fail-above, 2 bad input.
            """)

    @Option(help: "Probabilities (N×C).") var probs: String?
    @Option(help: "Logits (N×C), instead of --probs.") var logits: String?
    @Option(help: "Integer labels (N).") var labels: String
    @Option(help: "prune_by_noise_rate, confident_learning, prune_by_class or both.") var filter = "prune_by_noise_rate"
    @Option(help: "self_confidence or normalized_margin.") var rankBy = "self_confidence"
    @Option(help: "Issues listed in the text output.") var top = 20
    @Option(help: "Exit 1 when the flagged fraction exceeds this.") var failAbove: Double?
    @Flag(help: "Divide probability rows by their sums instead of rejecting them.") var renormalize = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        try OptionCheck.atParse {
            guard ConfidentLearning.Filter(rawValue: filter) != nil else {
                throw InputError("--filter must be one of \(ConfidentLearning.Filter.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(filter)')")
            }
            guard ConfidentLearning.Ranking(rawValue: rankBy) != nil else {
                throw InputError("--rank-by must be self_confidence or normalized_margin (got '\(rankBy)')")
            }
            try OptionCheck.count(top, "--top", 0...1_000_000)
            if let failAbove { try OptionCheck.real(failAbove, "--fail-above", .unit) }
        }
    }

    func run() throws {
        let result = try Inputs.guarded("data issues") { () -> ConfidentLearning in
            let (p, option, path) = try Inputs.scores(probs: probs, probsOption: "--probs", logits: logits, logitsOption: "--logits", renormalize: renormalize)
            guard p.columns >= 2 else { throw InputError("\(option) \(path) has \(p.columns) class column; label issues need at least 2 classes") }
            let y = try Inputs.labels(labels, option: "--labels", classes: p.columns)
            guard y.count == p.rows else { throw InputError("--labels \(labels) has \(y.count) labels but \(option) \(path) has \(p.rows) rows") }
            return try Inputs.concerning(option, path) {
                try ConfidentLearning.analyse(probabilities: p, labels: y, filter: ConfidentLearning.Filter(rawValue: filter)!,
                                              ranking: ConfidentLearning.Ranking(rawValue: rankBy)!)
            }
        }
        print(json ? try JSONOutput.string(result) : Self.text(result, top: top))
        let fraction = Double(result.issues.count) / Double(result.samples)
        if let failAbove, fraction > failAbove {
            printError(String(format: "faultline data issues: %.4f of the rows flagged (> --fail-above %g)", fraction, failAbove))
            throw ExitCode(1)
        }
    }

    static func text(_ r: ConfidentLearning, top: Int) -> String {
        var lines = [String(format: "%d label issues in %d rows (%.2f%%), %@, ranked by %@", r.issues.count, r.samples,
                            100 * Double(r.issues.count) / Double(max(r.samples, 1)), r.filter.rawValue, r.ranking.rawValue)]
        let classes = 0..<r.classes
        lines.append("confident joint, calibrated (rows: given label, columns: true label)")
        lines.append(TextTable.grid(header: ["given"] + classes.map { "\($0)" } + ["t_j"],
                                    rows: classes.map { i in ["\(i)"] + r.confidentJoint[i].map { "\($0)" } + [String(format: "%.4f", r.thresholds[i])] }))
        if top > 0 && !r.issues.isEmpty {
            lines.append("first \(min(top, r.issues.count)) issues")
            lines.append(TextTable.grid(header: ["row", "score"], rows: r.issues.prefix(top).map { ["\($0)", String(format: "%.4f", r.scores[$0])] }))
        }
        return lines.joined(separator: "\n")
    }
}

/// `faultline data leakage`: exact and near duplicates between a training and a test set.
struct DataLeakageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakage",
        abstract: "Test rows that duplicate training rows (exactly or nearly).",
        discussion: """
            --train and --test are N×D feature files. For each test row the nearest \
            training rows (L2 distance on the raw features, exact in float64) are \
            found by the KNN kernel; pairs within the threshold are reported. \
            --threshold D is an absolute L2 distance; --relative-threshold R (default \
            0.05) is R × the median distance from a training row to its nearest \
            other training row (over --median-rows evenly spaced training rows, \
            each against all); --threshold 0 reports exact duplicates only (equal \
            values). With --train-labels and --test-labels, duplicated test rows \
            whose training twin has another label are counted as conflicts. Exit \
            codes: 0 ok, 1 exact duplicates and --fail-on-duplicates, 2 bad input.
            """)

    @Option(help: "Training features (M×D).") var train: String
    @Option(help: "Test features (N×D).") var test: String
    @Option(help: "Training labels (M), for label conflicts.") var trainLabels: String?
    @Option(help: "Test labels (N), for label conflicts.") var testLabels: String?
    @Option(help: "Absolute L2 distance of a near duplicate.") var threshold: Double?
    @Option(help: "Near-duplicate distance as a multiple of the median nearest-neighbour distance within train.")
    var relativeThreshold: Double?
    @Option(help: "Training rows the median is taken over (evenly spaced; 0: all).") var medianRows = 2000
    @Option(help: "Pairs kept per test row.") var maxPairs = 10
    @Option(help: "Pairs listed in the text output.") var top = 20
    @Flag(help: "Exit 1 when a test row equals a training row.") var failOnDuplicates = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        try OptionCheck.atParse {
            if threshold != nil && relativeThreshold != nil { throw InputError("give --threshold or --relative-threshold, not both") }
            if let threshold { try OptionCheck.real(threshold, "--threshold", .nonNegative) }
            if let relativeThreshold { try OptionCheck.real(relativeThreshold, "--relative-threshold", .nonNegative) }
            try OptionCheck.count(maxPairs, "--max-pairs", 1...1000)
            try OptionCheck.count(medianRows, "--median-rows", 0...Int.max)
            try OptionCheck.count(top, "--top", 0...1_000_000)
            if (trainLabels == nil) != (testLabels == nil) { throw InputError("give both --train-labels and --test-labels, or neither") }
        }
    }

    func run() throws {
        let result = try Inputs.guarded("data leakage") { () -> TrainTestDuplicates in
            let x = try Inputs.features(train, option: "--train", finite: true)
            let t = try Inputs.features(test, option: "--test", allowEmpty: true, finite: true)
            guard t.columns == x.columns else { throw InputError("--test \(test) has \(t.columns) features per row but --train \(train) has \(x.columns)") }
            let yTrain = try trainLabels.map { file -> [Int] in
                let y = try Inputs.labels(file, option: "--train-labels")
                guard y.count == x.rows else { throw InputError("--train-labels \(file) has \(y.count) labels but --train \(train) has \(x.rows) rows") }
                return y
            }
            let yTest = try testLabels.map { file -> [Int] in
                let y = try Inputs.labels(file, option: "--test-labels")
                guard y.count == t.rows else { throw InputError("--test-labels \(file) has \(y.count) labels but --test \(test) has \(t.rows) rows") }
                return y
            }
            let rule: TrainTestDuplicates.Threshold = threshold.map { .absolute($0) } ?? .relativeToMedianNeighbour(relativeThreshold ?? 0.05)
            return try Inputs.concerning("--train", train) {
                try TrainTestDuplicates.find(train: x, test: t, threshold: rule, trainLabels: yTrain, testLabels: yTest, maxPairsPerTestRow: maxPairs,
                                              medianSampleRows: medianRows == 0 ? nil : medianRows)
            }
        }
        print(json ? try JSONOutput.string(result) : Self.text(result, top: top))
        if failOnDuplicates && result.exactDuplicateTestRows > 0 {
            printError("faultline data leakage: \(result.exactDuplicateTestRows) test rows equal a training row")
            throw ExitCode(1)
        }
    }

    static func text(_ r: TrainTestDuplicates, top: Int) -> String {
        let rule = r.relativeFactor.map { String(format: "%g × median nearest-neighbour distance in train %.6g", $0, r.medianTrainNeighbourDistance ?? 0) } ?? "absolute"
        var lines = [String(format: "threshold %.6g (%@)", r.threshold, rule),
                     "\(r.exactDuplicateTestRows) of \(r.testRows) test rows equal a training row; \(r.nearDuplicateTestRows) lie within the threshold"]
        if let e = r.exactLabelConflicts, let n = r.nearLabelConflicts {
            lines.append("label conflicts: \(e) exact duplicates, \(n) near duplicates carry another label than their training twin")
        }
        if r.truncatedTestRows > 0 { lines.append("\(r.truncatedTestRows) test rows have ≥ \(r.maxPairsPerTestRow) pairs (raise --max-pairs to list more)") }
        if top > 0 && !r.pairs.isEmpty {
            lines.append(TextTable.grid(header: ["test", "train", "distance", "exact", "labels"], rows: r.pairs.prefix(top).map {
                ["\($0.test)", "\($0.train)", String(format: "%.6g", $0.distance), $0.exact ? "yes" : "", $0.labelsDiffer.map { $0 ? "differ" : "agree" } ?? ""]
            }))
        }
        return lines.joined(separator: "\n")
    }
}

extension Inputs {
    /// `report --label-probs`: probabilities (checked as for --probs) with one row per test row and one
    /// column per class of the model.
    static func labelProbabilities(_ path: String, test: LabeledDataset, testOption: String) throws -> Matrix<Float> {
        let p = try probabilities(path, option: "--label-probs", renormalize: false)
        guard p.rows == test.count, p.columns == test.classCount else {
            throw InputError("--label-probs \(path) is \(p.rows)×\(p.columns) but \(testOption) \(test.name) has \(test.count) rows of \(test.classCount) classes")
        }
        return p
    }
}

/// `faultline data concat`: the per-rank parts of a row-wise output (`predict --per-rank` under mpirun)
/// joined into the archive rank 0 would have written (`RowParts.concatenate`).
struct DataConcatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "concat",
        abstract: "Join per-rank parts (OUT.rankR-of-K.npz from predict --per-rank) into one .npz.",
        discussion: """
            Each part records the rows it holds (its __rows__ array). The parts may be given in any \
            order; they must cover every row of the whole exactly once and hold the same arrays with \
            the same dtypes and per-row shapes, or nothing is written (exit 2, naming the part). The \
            result equals, array for array and bit for bit, what rank 0 writes without --per-rank. \
            Example: faultline data concat --out pred.npz pred.rank*-of-4.npz
            """)

    @Option(help: "The joined .npz (written atomically).") var out: String
    @Argument(help: "The part files.") var parts: [String] = []

    func validate() throws {
        try OptionCheck.atParse {
            guard !parts.isEmpty else { throw InputError("give the part files to join, e.g. pred.rank*-of-4.npz") }
            guard !out.isEmpty else { throw InputError("--out is empty; give the path of the joined .npz") }
        }
    }

    func run() throws {
        let arrays = try Inputs.guarded("data concat") { try Inputs.naming("PARTS") { try RowParts.concatenate(parts) } }
        try Inputs.guarded("data concat") { try Inputs.naming("--out") { try NPZ.write(arrays, to: out) } }
        let rows = arrays.first?.tensor.shape.first ?? 0
        print("joined \(parts.count) parts: \(rows) rows of \(arrays.map(\.name).joined(separator: ", ")) → \(out)")
    }
}
