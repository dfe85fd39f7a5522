import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline drift`: drift monitoring. `compare` (the default, so `faultline drift --reference A
/// --current B` keeps working) tests two samples; `fit` saves a reference, `check` tests batches or
/// windows of a long file against it, `stream` runs a sequential change detector over a scalar stream.
struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Has the data moved? Two-sample tests, saved references, windows, change detectors.",
        discussion: """
            Without a subcommand, `faultline drift --reference A --current B …` runs `compare`.
            Exit codes: 0 ok, 1 drift detected and --fail-on-drift, 2 bad input.
            """,
        subcommands: [DriftCompare.self, DriftFitCommand.self, DriftCheckCommand.self, DriftStreamCommand.self],
        defaultSubcommand: DriftCompare.self)
}

/// `faultline drift compare` (the default): two-sample tests between a reference sample and a current one.
struct DriftCompare: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Has the data moved? MMD permutation test, per-feature KS with Bonferroni/BH, chi-square on labels, BBSE label-shift weights.",
        discussion: """
            --reference and --current are N×D feature files: MMD² (RBF kernel, median heuristic; --mmd-estimator \
            unbiased (MMD²_u, default) or biased (the V-statistic with the diagonals)) with a permutation p-value ((1 + #null ≥ observed)/(1 + P)) and KS per feature with the \
            Bonferroni and Benjamini–Hochberg decisions at --alpha. With --reference-labels/--current-labels (integer \
            labels or predicted classes): a chi-square test of the label distributions. With --validation-predictions, \
            --validation-labels and --current-predictions: BBSE importance weights for a label shift.
            KS p-values (--ks-method): auto (SciPy's ks_2samp default: exact up to 10,000 values per sample), exact, \
            asymptotic (kstwo at n = mn/(m+n), what alibi-detect's KSDrift uses) or limiting (kstwobign).
            Exit codes: 0 ok, 1 drift detected and --fail-on-drift, 2 bad input.
            """)

    @Option(help: "Reference features (N×D).") var reference: String?
    @Option(help: "Current features (M×D).") var current: String?
    @Option(help: "Permutations of the MMD test, 0–\(OptionCheck.Limit.permutations) (0: skip MMD).") var permutations = 500
    @Option(help: "Significance level.") var alpha = 0.05
    @Option(help: "Reference labels or predicted classes.") var referenceLabels: String?
    @Option(help: "Current labels or predicted classes.") var currentLabels: String?
    @Option(help: "Validation predictions (BBSE).") var validationPredictions: String?
    @Option(help: "Validation labels (BBSE).") var validationLabels: String?
    @Option(help: "Current predictions (BBSE).") var currentPredictions: String?
    @Option(help: "KS p-values: auto, exact, asymptotic or limiting.") var ksMethod = "auto"
    @Option(help: "Seed of the permutations.") var seed: UInt64 = 0
    @Option(help: "MMD² estimate: unbiased or biased.") var mmdEstimator = "unbiased"
    @Option(help: "Feature names, one per line (else CSV header or index).") var names: String?
    @Flag(help: "Exit with code 1 when any test detects drift.") var failOnDrift = false
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        var mmd: MMDTest.Result?
        var ksStatistics: [Double]?; var ksPValues: [Double]?; var ksDriftBonferroni: Bool?; var ksDriftFDR: Bool?; var driftedFeatures: [Int]?
        /// Per feature, by name: KS statistic, p-value, BH-adjusted p-value and decision at α.
        var ksFeatures: [FaultlineShift.DriftCheck.Feature]?
        var chiSquare: DriftTests.TestResult?
        var labelShift: LabelShiftEstimate?
        var drift: Bool
    }

    /// Option values alone, checked at parse time (usage errors, before any file is read).
    func validate() throws {
        try OptionCheck.atParse {
            try OptionCheck.real(alpha, "--alpha", .openUnit)
            try OptionCheck.count(permutations, "--permutations", 0...OptionCheck.Limit.permutations)
        }
    }

    func run() throws {
        // Under mpirun every step runs on every rank: reading (each rank its rows) inside `agree`, so a rank
        // that fails names itself; everything else fails alike on every rank (docs/SCALING.md, "drift").
        let report = try Inputs.guarded("drift") { () -> Report in try Job.uniformly { () -> Report in
            guard let method = DriftTests.KolmogorovSmirnovMethod(rawValue: ksMethod) else {
                throw InputError("--ks-method must be one of \(DriftTests.KolmogorovSmirnovMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let world = Job.world
            var r = Report(drift: false)
            if let reference, let current {
                let (a, header, b) = try world.agree { () -> (Inputs.Shard, [String]?, Inputs.Shard) in
                    let (a, header) = try Self.shard(reference, option: "--reference", names: names)
                    let b = try Self.shard(current, option: "--current", names: nil, named: false).shard
                    guard a.matrix.columns == b.matrix.columns else {
                        throw InputError("--reference \(reference) has \(a.matrix.columns) features per row but --current \(current) has \(b.matrix.columns)")
                    }
                    return (a, header, b)
                }
                guard let estimator = MMDTest.Estimator(rawValue: mmdEstimator) else {
                    throw InputError("--mmd-estimator must be unbiased or biased, not '\(mmdEstimator)'")
                }
                let (indices, overflow) = permutations.multipliedReportingOverflow(by: a.total + b.total)
                guard !overflow, indices <= OptionCheck.Limit.permutationIndices else {
                    throw InputError("--permutations \(permutations) × \(a.total + b.total) rows is more than \(OptionCheck.Limit.permutationIndices) permutation indices "
                                   + "(they are held at once); use at most \(OptionCheck.Limit.permutationIndices / (a.total + b.total)) permutations")
                }
                let d = try FeatureDrift(referenceShard: a.matrix, currentShard: b.matrix, alpha: alpha, ksMethod: method, permutations: permutations,
                                        seed: seed, estimator: estimator, communicator: world)
                (r.mmd, r.ksStatistics, r.ksPValues, r.ksDriftBonferroni, r.ksDriftFDR) = (d.mmd, d.ksStatistics, d.ksPValues, d.ksDriftBonferroni, d.ksDriftFDR)
                r.driftedFeatures = d.driftedFeatures
                let adjusted = DriftTests.adjustedPValues(d.ksPValues, correction: .benjaminiHochberg)
                r.ksFeatures = d.ksPValues.indices.map { f in
                    .init(name: header?[f] ?? String(f), statistic: d.ksStatistics[f], pValue: d.ksPValues[f], adjustedPValue: adjusted[f], drifted: adjusted[f] < alpha)
                }
                r.drift = d.drift
            } else if reference != nil || current != nil || names != nil {
                throw InputError("give both --reference and --current")
            }
            if let referenceLabels, let currentLabels {
                let (a, b) = try world.agree { () -> ([Int], [Int]) in
                    let a = try Inputs.labels(referenceLabels, option: "--reference-labels"), b = try Inputs.labels(currentLabels, option: "--current-labels")
                    return (Array(a[Job.evenRows(a.count)]), Array(b[Job.evenRows(b.count)]))
                }
                r.chiSquare = try DistributedDrift.chiSquare(referenceShard: a, currentShard: b, communicator: world)
                r.drift = r.drift || r.chiSquare!.pValue < alpha
            }
            if let validationPredictions, let validationLabels, let currentPredictions {
                let (p, y, t) = try world.agree { () -> ([Int], [Int], [Int]) in
                    let p = try Inputs.labels(validationPredictions, option: "--validation-predictions"), y = try Inputs.labels(validationLabels, option: "--validation-labels")
                    let t = try Inputs.labels(currentPredictions, option: "--current-predictions")
                    guard p.count == y.count else {
                        throw InputError("--validation-predictions \(validationPredictions) has \(p.count) rows but --validation-labels \(validationLabels) has \(y.count)")
                    }
                    let rows = Job.evenRows(p.count)
                    return (Array(p[rows]), Array(y[rows]), Array(t[Job.evenRows(t.count)]))
                }
                r.labelShift = try DistributedDrift.labelShift(validationPredictions: p, validationLabels: y, targetPredictions: t, communicator: world)
            }
            guard r.mmd != nil || r.ksPValues != nil || r.chiSquare != nil || r.labelShift != nil else {
                throw InputError("nothing to test: give --reference/--current, label files, or the three BBSE files")
            }
            return r
        } }
        if failOnDrift && report.drift && Job.quiet { throw ExitCode(1) }  // ranks other than 0 print nothing
        guard !Job.quiet else { return }
        if json {
            print(try JSONOutput.string(report))
        } else {
            if let m = report.mmd { print(String(format: "MMD² %.4e (s² %.4g), permutation p-value %.4f", m.mmd2, m.sigma2, m.pValue)) }
            if let p = report.ksPValues, let drifted = report.driftedFeatures {
                print(String(format: "KS on %ld features: smallest p %.3g; drift (Bonferroni) %@, drift (BH) %@", p.count, p.min() ?? 1,
                             report.ksDriftBonferroni! ? "yes" : "no", report.ksDriftFDR! ? "yes" : "no"))
                if !drifted.isEmpty {
                    let name = { (f: Int) in report.ksFeatures?[f].name ?? String(f) }
                    print("drifted features (BH at α, by column, p-value): " + drifted.prefix(20).map { String(format: "%@ (%.2g)", name($0), p[$0]) }.joined(separator: ", ")
                          + (drifted.count > 20 ? ", … (\(drifted.count) in all; --json lists every one)" : ""))
                }
            }
            if let c = report.chiSquare { print(String(format: "chi-square on labels: %.4f, p-value %.4g", c.statistic, c.pValue)) }
            if let l = report.labelShift {
                print("BBSE weights: " + l.weights.map { String(format: "%.3f", $0) }.joined(separator: " "))
                print("estimated label distribution: " + l.targetDistribution.map { String(format: "%.3f", $0) }.joined(separator: " "))
            }
            print("drift detected: \(report.drift ? "yes" : "no") (α = \(alpha))")
        }
        if failOnDrift && report.drift { throw ExitCode(1) }
    }
    /// This rank's rows (`Job.evenRows`) of a feature file and the column names (as `namedFeatures`), with
    /// the file's row count. One process: the whole file, read as before. Several ranks: a .npy is read
    /// from its own part of the file (its names from --names); other formats are read whole and sliced.
    /// `named` false: no names (the file read by `Inputs.features`, as --current always was).
    static func shard(_ path: String, option: String, names: String?, named: Bool = true) throws -> (shard: Inputs.Shard, names: [String]?) {
        if Job.world.size > 1 && path.lowercased().hasSuffix(".npy") && names == nil {
            return (try Inputs.featureShard(path, option: option, finite: true, rows: Job.evenRows), nil)
        }
        let (x, header) = named ? try namedFeatures(path, option: option, names: names) : (try Inputs.features(path, option: option, finite: true), nil)
        let rows = Job.evenRows(x.rows)
        return ((rows.count == x.rows ? x : x.gatherRows(Array(rows)), rows, x.rows), header)
    }
}

// MARK: - Saved references, windows and sequential detectors

/// Features and their column names: a CSV's header when it has one, else `--names` (one name per
/// line), else nil. Non-finite values are an error naming the option, file, row and column.
private func namedFeatures(_ path: String, option: String, names: String?) throws -> (Matrix<Float>, [String]?) {
    var x: Matrix<Float>, header: [String]? = nil
    if path.lowercased().hasSuffix(".csv") {
        let table = try Inputs.naming(option) { try CSV.read(path) }
        x = table.features.converted(to: Float.self)
        header = table.columnNames
        if let bad = x.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
            throw InputError("\(option) \(path): row \(bad / x.columns), column \(bad % x.columns) is not a finite float32 value; the values must be finite")
        }
    } else {
        x = try Inputs.features(path, option: option, finite: true)
    }
    if let names {
        let text = try Inputs.naming("--names") { try FileAccess.read(names) }
        guard let decoded = String(data: text, encoding: .utf8) else { throw InputError("--names \(names) is not UTF-8 text") }
        var lines = decoded.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        while lines.last == "" { lines.removeLast() }
        guard lines.count == x.columns else {
            throw InputError("--names \(names) has \(lines.count) names (one per line) but \(option) \(path) has \(x.columns) features")
        }
        header = lines
    }
    return (x, header)
}

/// `faultline drift fit`: save a reference for later checks.
struct DriftFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Save a drift reference: feature names, sorted values per feature, the test and α.",
        discussion: """
            The reference (N×D: .npy/.npz/.safetensors/CSV) is stored with its names (a CSV header \
            or --names, one per line; else the column index), each feature's values sorted (what an \
            exact two-sample KS test needs) and the decision: KS per feature, p-values adjusted over \
            the features (--correction fdr (Benjamini–Hochberg) or bonferroni), drift where the \
            adjusted p < --alpha. Exit code 2 on bad input.
            """)
    @Option(help: "Reference features (N×D).") var reference: String
    @Option(help: "Output reference file (.safetensors).") var out: String
    @Option(help: "Feature names, one per line (else CSV header or index).") var names: String?
    @Option(help: "Significance level of the adjusted p-values.") var alpha = 0.05
    @Option(help: "fdr (Benjamini–Hochberg) or bonferroni.") var correction = "fdr"
    @Option(help: "KS p-values: auto, exact, asymptotic or limiting.") var ksMethod = "auto"

    func validate() throws {
        try OptionCheck.atParse {
            try OptionCheck.real(alpha, "--alpha", .openUnit)
            guard DriftTests.Correction(rawValue: correction) != nil else { throw InputError("--correction must be fdr or bonferroni, not '\(correction)'") }
            guard DriftTests.KolmogorovSmirnovMethod(rawValue: ksMethod) != nil else {
                throw InputError("--ks-method must be one of \(DriftTests.KolmogorovSmirnovMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
    }

    func run() throws {
        let line = try Inputs.guarded("drift fit") { () -> String in
            let (x, header) = try namedFeatures(reference, option: "--reference", names: names)
            let fitted = try Inputs.concerning("--reference", reference) {
                try DriftReference(reference: x, names: header, alpha: alpha, correction: DriftTests.Correction(rawValue: correction)!,
                                   method: DriftTests.KolmogorovSmirnovMethod(rawValue: ksMethod)!)
            }
            try fitted.save(to: out)
            return "fitted a drift reference on \(x.rows)×\(x.columns) features (KS, \(correction) at α = \(alpha)); wrote \(out)"
        }
        print(line)
    }
}

/// `faultline drift check`: a batch, or windows of a long file, against a saved reference.
struct DriftCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Test current features, or windows of a long file, against a saved reference.",
        discussion: """
            Without --window: one row per feature (name, KS statistic, p-value, adjusted p-value, \
            drift at α), worst first (--top rows; --json lists all). With --window N [--stride S]: \
            one row per window of N rows, S apart (default S = N): rows, features drifted, the \
            smallest adjusted p-value and its feature. A .npy is streamed through the memory-mapped \
            reader, holding one window (N×D float32) at a time; other formats are read whole.
            Exit codes: 0 ok, 1 drift detected and --fail-on-drift, 2 bad input.
            """)
    @Option(help: "Reference file written by `drift fit`.") var reference: String
    @Option(help: "Current features (M×D).") var current: String
    @Option(help: "Rows per window (streams the file).") var window: Int?
    @Option(help: "Rows between window starts (default: the window).") var stride: Int?
    @Option(help: "Feature rows to print, worst first (0: all).") var top = 20
    @Option(help: "Also write an HTML page (table, CDF or window plots).") var html: String?
    @Flag(help: "Exit with code 1 when any feature or window drifts.") var failOnDrift = false
    @Flag(help: "Print JSON.") var json = false

    struct BatchReport: Codable {
        var reference: String, current: String, rows: Int, referenceRows: Int, alpha: Double, correction: String
        var features: [FaultlineShift.DriftCheck.Feature]
        var driftedFeatures: [String]
        var drift: Bool
    }

    struct WindowReport: Codable {
        var reference: String, current: String, window: Int, stride: Int, alpha: Double, correction: String
        var windows: [DriftWindow]
        var windowsWithDrift: Int
        var drift: Bool
    }

    func validate() throws {
        try OptionCheck.atParse {
            if let window { _ = try OptionCheck.count(window, "--window", 1...Int(Int32.max)) }
            if let stride { _ = try OptionCheck.count(stride, "--stride", 1...Int(Int32.max)) }
            if stride != nil && window == nil { throw InputError("--stride needs --window") }
            _ = try OptionCheck.count(top, "--top", 0...Int(Int32.max))
        }
    }

    func run() throws {
        let drifted: Bool
        if let window {
            let stride = self.stride ?? window
            let report = try Inputs.guarded("drift check") { () -> WindowReport in
                let ref = try Self.loadReference(reference)
                var windows: [DriftWindow] = []
                if current.lowercased().hasSuffix(".npy") {
                    try Inputs.naming("--current") {
                        try Inputs.concerning("--current", current) {
                            try FileAccess.checkRegularFile(current)
                            try ref.windows(npy: current, window: window, stride: stride) { w in
                                windows.append(w)
                                if !json { print(Self.windowLine(w)) }
                            }
                        }
                    }
                } else {
                    let (x, header) = try namedFeatures(current, option: "--current", names: nil)
                    try Self.sameNames(header, ref)
                    windows = try Inputs.concerning("--current", current) { try ref.windows(x, window: window, stride: stride) }
                    if !json { windows.forEach { print(Self.windowLine($0)) } }
                }
                if let html {
                    let page = DriftPage.windows(title: "Drift by window", subtitle: "\(current) against \(reference): \(windows.count) windows of \(window) rows, stride \(stride)",
                                                 alpha: ref.alpha, windows: windows.map {
                        DriftPage.Window(index: $0.index, firstRow: $0.firstRow, rows: $0.rows, driftedFeatures: $0.driftedFeatures,
                                         smallestAdjustedPValue: $0.smallestAdjustedPValue, worstFeature: $0.worstFeature)
                    })
                    try Inputs.naming("--html") { try FileAccess.writeAtomically(Array(page.utf8), to: html) }
                }
                let flagged = windows.filter(\.drift).count
                return WindowReport(reference: reference, current: current, window: window, stride: stride, alpha: ref.alpha,
                                    correction: ref.correction.rawValue, windows: windows, windowsWithDrift: flagged, drift: flagged > 0)
            }
            if json {
                print(try JSONOutput.string(report))
            } else {
                print("\(report.windows.count) windows of \(window) rows (stride \(stride)); drift in \(report.windowsWithDrift) "
                      + "(KS per feature, \(report.correction) at α = \(report.alpha))")
            }
            drifted = report.drift
        } else {
            let report = try Inputs.guarded("drift check") { () -> BatchReport in
                let ref = try Self.loadReference(reference)
                let (x, header) = try namedFeatures(current, option: "--current", names: nil)
                try Self.sameNames(header, ref)
                let c = try Inputs.concerning("--current", current) { try ref.check(x) }
                if let html { try Self.writePage(html, c, ref, x, subtitle: "\(current) (\(x.rows) rows) against \(reference)") }
                return BatchReport(reference: reference, current: current, rows: c.rows, referenceRows: c.referenceRows, alpha: c.alpha,
                                   correction: c.correction.rawValue, features: c.features,
                                   driftedFeatures: c.features.filter(\.drifted).map(\.name), drift: c.drift)
            }
            if json {
                print(try JSONOutput.string(report))
            } else {
                let order = report.features.indices.sorted {
                    (report.features[$0].adjustedPValue, -report.features[$0].statistic, $0) < (report.features[$1].adjustedPValue, -report.features[$1].statistic, $1)
                }
                let shown = top == 0 ? order : Array(order.prefix(top))
                print(TextTable.grid(header: ["feature", "KS D", "p-value", "adjusted p", "drift"], rows: shown.map { i in
                    let f = report.features[i]
                    return [f.name, String(format: "%.4f", f.statistic), String(format: "%.3g", f.pValue), String(format: "%.3g", f.adjustedPValue), f.drifted ? "yes" : "no"]
                }))
                if shown.count < order.count { print("… \(order.count - shown.count) more features (--top 0 or --json lists every one)") }
                print("\(report.rows) rows vs \(report.referenceRows) reference rows; \(report.driftedFeatures.count) of \(report.features.count) "
                      + "features drifted (\(report.correction) at α = \(report.alpha)); drift detected: \(report.drift ? "yes" : "no")")
            }
            drifted = report.drift
        }
        if failOnDrift && drifted { throw ExitCode(1) }
    }

    /// The batch page: every feature in the table, CDF plots of the 12 with the smallest adjusted p.
    static func writePage(_ path: String, _ c: FaultlineShift.DriftCheck, _ ref: DriftReference, _ x: Matrix<Float>, subtitle: String) throws {
        let plotted = Set(c.features.indices.sorted { (c.features[$0].adjustedPValue, -c.features[$0].statistic, $0)
                                                      < (c.features[$1].adjustedPValue, -c.features[$1].statistic, $1) }.prefix(12))
        let rows = ref.sortedReference.rowArrays
        let features = c.features.enumerated().map { f, feature in
            DriftPage.Feature(name: feature.name, statistic: feature.statistic, pValue: feature.pValue, adjustedPValue: feature.adjustedPValue,
                              drifted: feature.drifted, reference: plotted.contains(f) ? rows[f].map(Double.init) : [],
                              current: plotted.contains(f) ? x.withUnsafeBufferPointer { p in (0..<x.rows).map { Double(p[$0 * x.columns + f]) } }.sorted() : [])
        }
        let page = DriftPage.batch(title: "Drift check", subtitle: subtitle, features: features)
        try Inputs.naming("--html") { try FileAccess.writeAtomically(Array(page.utf8), to: path) }
    }

    /// The reference file, its errors naming --reference and the file.
    static func loadReference(_ path: String) throws -> DriftReference {
        try Inputs.naming("--reference") { try Inputs.concerning("--reference", path) { try DriftReference.load(path) } }
    }

    static func windowLine(_ w: DriftWindow) -> String {
        String(format: "window %ld  rows %ld–%ld  drifted features %ld  smallest adjusted p %.3g (%@)", w.index, w.firstRow, w.firstRow + w.rows - 1,
               w.driftedFeatures, w.smallestAdjustedPValue, w.worstFeature)
    }

    /// A CSV header on the current data must name the reference's features, in order.
    static func sameNames(_ header: [String]?, _ ref: DriftReference) throws {
        guard let header, header.count == ref.names.count, header != ref.names else { return }
        let i = header.indices.first { header[$0] != ref.names[$0] }!
        throw InputError("--current column \(i) is named '\(header[i])' but the reference's feature \(i) is '\(ref.names[i])'; "
                         + "the columns must be in the reference's order")
    }
}

/// `faultline drift stream`: a sequential change detector over one column of a file.
struct DriftStreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Run CUSUM, Page–Hinkley or ADWIN over a stream of scalars; print the change points.",
        discussion: """
            --input holds the stream (a 1-d array, or --column of an N×D file), e.g. error indicators, \
            confidences or scores, in time order. After each change the detector restarts (river's \
            convention). cusum: --slack k and --threshold h in units of σ (defaults 0.5, 5), μ and σ \
            from --mean/--sigma or the first --warmup values; its in-control average run length \
            (Siegmund) is printed. page-hinkley: --delta (0.005), --threshold λ (50), --fading α \
            (0.9999), --min-instances (30), as river. adwin: --delta (0.002), --clock (32), \
            --max-buckets (5), --min-window (5), --grace-period (10), as river; expected false \
            alarms ≤ δ per check. --direction up, down or both (cusum, page-hinkley).
            Exit codes: 0 ok, 1 a change found and --fail-on-change, 2 bad input.
            """)
    @Option(help: "The stream (1-d, or N×D with --column).") var input: String
    @Option(help: "Column of an N×D input.") var column = 0
    @Option(help: "cusum, page-hinkley or adwin.") var detector: String
    @Option(help: "up, down or both (cusum, page-hinkley).") var direction = "both"
    @Option(help: "CUSUM slack k, in σ.") var slack = 0.5
    @Option(help: "CUSUM h (σ units) or Page–Hinkley λ.") var threshold: Double?
    @Option(help: "CUSUM in-control mean (else estimated).") var mean: Double?
    @Option(help: "CUSUM in-control σ (else estimated).") var sigma: Double?
    @Option(help: "CUSUM values that estimate μ, σ.") var warmup = 30
    @Option(help: "Page–Hinkley δ or ADWIN δ.") var delta: Double?
    @Option(help: "Page–Hinkley fading factor α.") var fading = 0.9999
    @Option(help: "Page–Hinkley values before any alarm.") var minInstances = 30
    @Option(help: "ADWIN: check every this many values.") var clock = 32
    @Option(help: "ADWIN buckets per size.") var maxBuckets = 5
    @Option(help: "ADWIN smallest sub-window.") var minWindow = 5
    @Option(help: "ADWIN values before any check.") var gracePeriod = 10
    @Flag(help: "Exit with code 1 when a change is found.") var failOnChange = false
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        var input: String, column: Int, detector: String, values: Int
        var changePoints: [Int]
        /// CUSUM only: Siegmund's in-control ARL at the chosen k, h.
        var inControlAverageRunLength: Double?
    }

    func validate() throws {
        try OptionCheck.atParse {
            guard ["cusum", "page-hinkley", "adwin"].contains(detector) else { throw InputError("--detector must be cusum, page-hinkley or adwin, not '\(detector)'") }
            guard ChangeDirection(rawValue: direction) != nil else { throw InputError("--direction must be up, down or both, not '\(direction)'") }
            _ = try OptionCheck.count(column, "--column", 0...Int(Int32.max))
        }
    }

    func makeDetector() throws -> any SequentialChangeDetector {
        let way = ChangeDirection(rawValue: direction)!
        do {
            switch detector {
            case "cusum":
                return try CUSUM(slack: slack, threshold: threshold ?? 5, direction: way, mean: mean, sigma: sigma, warmup: warmup)
            case "page-hinkley":
                return try PageHinkley(delta: delta ?? 0.005, threshold: threshold ?? 50, alpha: fading, minInstances: minInstances, direction: way)
            default:
                return try ADWIN(delta: delta ?? 0.002, clock: clock, maxBuckets: maxBuckets, minWindowLength: minWindow, gracePeriod: gracePeriod)
            }
        } catch let ShiftError.invalidInput(message) {
            throw InputError("--detector \(detector): \(message)")
        }
    }

    func run() throws {
        let report = try Inputs.guarded("drift stream") { () -> Report in
            var d = try makeDetector()
            let x = try Inputs.features(input, option: "--input", finite: true)
            guard column < x.columns else { throw InputError("--column \(column) is out of range: --input \(input) has \(x.columns) columns") }
            let values = x.withUnsafeBufferPointer { p in (0..<x.rows).map { Double(p[$0 * x.columns + column]) } }
            let points = d.changePoints(in: values)
            let arl = detector == "cusum" ? CUSUM.siegmundAverageRunLength(shift: 0, slack: slack, threshold: threshold ?? 5, twoSided: direction == "both") : nil
            return Report(input: input, column: column, detector: detector, values: values.count, changePoints: points, inControlAverageRunLength: arl)
        }
        if json {
            print(try JSONOutput.string(report))
        } else {
            print("\(report.detector) over \(report.values) values: \(report.changePoints.count) change\(report.changePoints.count == 1 ? "" : "s")"
                  + (report.changePoints.isEmpty ? "" : " at " + report.changePoints.prefix(50).map(String.init).joined(separator: ", "))
                  + (report.changePoints.count > 50 ? ", … (--json lists every one)" : ""))
            if let arl = report.inControlAverageRunLength {
                print(String(format: "in-control average run length ≈ %.0f values (Siegmund, normal values, k = %g, h = %g)", arl, slack, threshold ?? 5))
            }
        }
        if failOnChange && !report.changePoints.isEmpty { throw ExitCode(1) }
    }
}
