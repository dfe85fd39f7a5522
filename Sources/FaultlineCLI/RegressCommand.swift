import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline regress`: how a regression model fails — point metrics, calibration of Gaussian
/// predictions, split conformal intervals and residual/target drift.
struct RegressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regress",
        abstract: "Regression: metrics, interval calibration, conformal intervals, drift.",
        discussion: """
            --pred holds N point predictions, or N×2 columns (--columns): mean-sigma (the default for two \
            columns), mean-var, or lower-upper quantiles (a third column: the point prediction, else the \
            midpoint). --y holds the N targets. Metrics: MAE, RMSE, R², median and max error (as scikit-learn); \
            Gaussian predictions add the NLL (torch GaussianNLLLoss, full=True: with ½·log 2π), the observed \
            coverage of central intervals at --levels, the mean |observed − nominal|, uncertainty-toolbox's \
            miscalibration area and the PIT histogram; quantile bands add their coverage, width and pinball losses \
            at α/2 and 1 − α/2.
            With --calibration-pred and --calibration-y (a held-out split in the same columns), split conformal \
            intervals at --alpha: --method residual (|y − ŷ|), normalized (|y − ŷ|/σ), cqr (Romano et al.) or \
            cqr-asymmetric (MAPIE's default); the quantile is the k-th smallest score, k = ⌈(n + 1)(1 − α)⌉, as \
            MAPIE. k > n is an error unless --allow-infinite gives (−∞, ∞). With --reference-pred and \
            --reference-y: KS drift tests of residuals, |residuals|, targets and predictions (Bonferroni at \
            --drift-alpha). --json prints JSON, --out FILE writes it, --html FILE writes a page with plots.
            Exit codes: 0 ok, 1 conformal coverage below 1 − α − --tolerance, 2 bad input.
            """)

    @Option(help: "Predictions: N means, or N×2 (see --columns).") var pred: String
    @Option(help: "Targets (N).") var y: String
    @Option(help: "auto, mean, mean-sigma, mean-var or lower-upper.") var columns = "auto"
    @Option(help: "Calibration predictions (same columns as --pred).") var calibrationPred: String?
    @Option(help: "Calibration targets.") var calibrationY: String?
    @Option(help: "Miscoverage level α of the conformal intervals.") var alpha = 0.1
    @Option(help: "residual, normalized, cqr or cqr-asymmetric.") var method: String?
    @Flag(help: "Allow (−∞, ∞) intervals when n is too small for α.") var allowInfinite = false
    @Option(help: "Nominal levels of the coverage table, e.g. 0.5,0.9.") var levels = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95,0.99"
    @Option(help: "Bins of the PIT histogram.") var pitBins = 10
    @Option(help: "Reference predictions, for drift.") var referencePred: String?
    @Option(help: "Reference targets, for drift.") var referenceY: String?
    @Option(help: "Significance level of the drift tests.") var driftAlpha = 0.05
    @Option(help: "Allowed coverage shortfall before exit code 1.") var tolerance = 0.02
    @Option(help: "Write the JSON report to this file.") var out: String?
    @Option(help: "Write an HTML page with plots.") var html: String?
    @Flag(help: "Print JSON.") var json = false

    struct Conformal: Codable {
        var method: String, alpha: Double, calibrationSize: Int, rank: Int
        var quantile: Double, lowerQuantile: Double, upperQuantile: Double
        var coverage: IntervalCoverage
    }

    struct QuantileBand: Codable {
        var coverage: IntervalCoverage
        var pinballLower: Double, pinballUpper: Double
    }

    struct Report: Codable {
        var samples: Int
        var columns: String
        var metrics: RegressionMetrics
        var gaussianNLL: Double?
        var calibration: GaussianIntervalCalibration?
        var quantileBand: QuantileBand?
        var conformal: Conformal?
        var drift: RegressionDrift?
    }

    func validate() throws {
        try OptionCheck.atParse {
            try OptionCheck.real(alpha, "--alpha", .openUnit)
            try OptionCheck.real(driftAlpha, "--drift-alpha", .openUnit)
            try OptionCheck.real(tolerance, "--tolerance", .unit)
            try OptionCheck.count(pitBins, "--pit-bins", 1...10_000)
            _ = try Self.levels(levels)
            guard Inputs.RegressionColumns(rawValue: columns) != nil else {
                throw InputError("--columns must be \(Inputs.RegressionColumns.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(columns)')")
            }
            if let method, !["residual", "normalized", "cqr", "cqr-asymmetric"].contains(method) {
                throw InputError("--method must be residual, normalized, cqr or cqr-asymmetric (got '\(method)')")
            }
            if (calibrationPred == nil) != (calibrationY == nil) { throw InputError("give --calibration-pred and --calibration-y together") }
            if (referencePred == nil) != (referenceY == nil) { throw InputError("give --reference-pred and --reference-y together") }
            if method != nil && calibrationPred == nil { throw InputError("--method needs --calibration-pred and --calibration-y") }
        }
    }

    /// Predictions and targets of one set, with matching lengths.
    func read(_ predPath: String, _ predOption: String, _ yPath: String, _ yOption: String) throws -> (Inputs.RegressionPredictions, [Double]) {
        let p = try Inputs.regressionPredictions(predPath, option: predOption, columns: Inputs.RegressionColumns(rawValue: columns)!)
        let t = try Inputs.regressionTargets(yPath, option: yOption)
        guard p.count == t.count else { throw InputError("\(predOption) \(predPath) has \(p.count) rows but \(yOption) \(yPath) has \(t.count) targets") }
        return (p, t)
    }

    func run() throws {
        let report = try Inputs.guarded("regress") { () -> Report in
            let (p, t) = try read(pred, "--pred", y, "--y")
            let metrics = try Inputs.concerning("--pred", pred) { try RegressionMetrics(predictions: p.mean, targets: t) }
            var report = Report(samples: t.count, columns: p.columns.rawValue, metrics: metrics)
            if let sigma = p.sigma {
                report.gaussianNLL = try RegressionMetrics.gaussianNLL(mean: p.mean, sigma: sigma, targets: t)
                report.calibration = try GaussianIntervalCalibration(mean: p.mean, sigma: sigma, targets: t,
                                                                     levels: try Self.levels(levels), pitBins: pitBins)
            }
            if let lower = p.lower, let upper = p.upper {
                report.quantileBand = QuantileBand(coverage: try IntervalCoverage(lower: lower, upper: upper, targets: t),
                                                   pinballLower: try RegressionMetrics.pinballLoss(quantiles: lower, targets: t, level: alpha / 2),
                                                   pinballUpper: try RegressionMetrics.pinballLoss(quantiles: upper, targets: t, level: 1 - alpha / 2))
            }
            if let calibrationPred, let calibrationY {
                let (cp, ct) = try read(calibrationPred, "--calibration-pred", calibrationY, "--calibration-y")
                let chosen = method ?? (p.columns == .lowerUpper ? "cqr" : p.sigma != nil ? "normalized" : "residual")
                let predictor: ConformalRegression
                let intervals: (lower: [Double], upper: [Double])
                switch chosen {
                case "residual":
                    predictor = try Inputs.concerning("--calibration-pred", calibrationPred) {
                        try ConformalRegression(predictions: cp.mean, targets: ct, alpha: alpha, allowInfinite: allowInfinite)
                    }
                    intervals = try predictor.intervals(p.mean)
                case "normalized":
                    guard let scale = cp.sigma, let testScale = p.sigma else {
                        throw InputError("--method normalized needs σ: give --pred and --calibration-pred as N×2 mean, σ (--columns mean-sigma or mean-var)")
                    }
                    predictor = try Inputs.concerning("--calibration-pred", calibrationPred) {
                        try ConformalRegression(predictions: cp.mean, scales: scale, targets: ct, alpha: alpha, allowInfinite: allowInfinite)
                    }
                    intervals = try predictor.intervals(p.mean, testScale)
                default:
                    guard let lo = cp.lower, let hi = cp.upper, let testLo = p.lower, let testHi = p.upper else {
                        throw InputError("--method \(chosen) needs quantile bands: give --pred and --calibration-pred as N×2 lower, upper with --columns lower-upper")
                    }
                    predictor = try Inputs.concerning("--calibration-pred", calibrationPred) {
                        try ConformalRegression(lower: lo, upper: hi, targets: ct, alpha: alpha, symmetric: chosen == "cqr", allowInfinite: allowInfinite)
                    }
                    intervals = try predictor.intervals(testLo, testHi)
                }
                report.conformal = Conformal(method: chosen, alpha: alpha, calibrationSize: predictor.calibrationSize, rank: predictor.rank,
                                             quantile: predictor.quantile, lowerQuantile: predictor.lowerQuantile, upperQuantile: predictor.upperQuantile,
                                             coverage: try IntervalCoverage(lower: intervals.lower, upper: intervals.upper, targets: t))
            }
            var referenceResiduals: [Double]?
            if let referencePred, let referenceY {
                let (rp, rt) = try read(referencePred, "--reference-pred", referenceY, "--reference-y")
                report.drift = try RegressionDrift(referencePredictions: rp.mean, referenceTargets: rt, currentPredictions: p.mean, currentTargets: t, alpha: driftAlpha)
                referenceResiduals = zip(rp.mean, rt).map { $1 - $0 }
            }
            let residuals = zip(p.mean, t).map { $1 - $0 }
            if let out { try Inputs.naming("--out") { try FileAccess.writeAtomically(Array(try JSONOutput.string(report).utf8), to: out) } }
            if let html {
                let page = RegressionPage.render(title: "Regression report", subtitle: "\(pred) against \(y) (\(t.count) samples)",
                                                 summary: Self.summary(report), levels: report.calibration?.levels.map { ($0.nominal, $0.observed) },
                                                 pitHistogram: report.calibration?.pitHistogram, residuals: residuals, referenceResiduals: referenceResiduals,
                                                 conformal: report.conformal.map(Self.conformalRows) ?? [],
                                                 drift: report.drift?.tests.map { .init(name: $0.name, statistic: $0.statistic, pValue: $0.pValue, adjustedPValue: $0.adjustedPValue, drifted: $0.drifted) } ?? [])
                try Inputs.naming("--html") { try FileAccess.writeAtomically(Array(page.utf8), to: html) }
            }
            return report
        }
        print(json ? try JSONOutput.string(report) : Self.text(report))
        if let c = report.conformal, c.coverage.coverage < 1 - alpha - tolerance {
            printError("faultline regress: conformal coverage \(c.coverage.coverage) is below 1 − α − tolerance")
            throw ExitCode(1)
        }
    }

    /// `--levels`: comma-separated numbers in [0, 1], read as Double (0.95 stays 0.95), sorted.
    static func levels(_ text: String) throws -> [Double] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard items.count <= 10_000 else { throw InputError("--levels takes at most 10000 levels (got \(items.count))") }
        return try items.map { item -> Double in
            guard let v = Double(item), v >= 0, v <= 1 else { throw InputError("--levels: '\(item.prefix(40))' is not a number in [0, 1]") }
            return v
        }.sorted()
    }

    static func f(_ v: Double) -> String { v.isFinite ? String(format: "%.4g", v) : (v > 0 ? "∞" : v < 0 ? "−∞" : "NaN") }

    static func summary(_ r: Report) -> [(String, String)] {
        let m = r.metrics
        var rows = [("samples", "\(r.samples)"), ("MAE", f(m.meanAbsoluteError)), ("RMSE", f(m.rootMeanSquaredError)), ("R²", f(m.r2)),
                    ("median absolute error", f(m.medianAbsoluteError)), ("max error", f(m.maxError)), ("mean residual y − ŷ", f(m.meanResidual))]
        if let nll = r.gaussianNLL { rows.append(("Gaussian NLL (full)", f(nll))) }
        if let c = r.calibration {
            rows += [("mean |observed − nominal|", f(c.meanAbsoluteError)), ("miscalibration area", f(c.miscalibrationArea)),
                     ("MACE (100 levels)", f(c.meanAbsoluteCalibrationError))]
        }
        if let q = r.quantileBand {
            rows += [("quantile band coverage", f(q.coverage.coverage)), ("quantile band mean width", f(q.coverage.meanWidth)),
                     ("pinball loss, lower", f(q.pinballLower)), ("pinball loss, upper", f(q.pinballUpper))]
        }
        return rows
    }

    static func conformalRows(_ c: Conformal) -> [(String, String)] {
        var rows = [("method", c.method), ("α", f(c.alpha)), ("calibration samples n", "\(c.calibrationSize)"),
                    (c.method == "cqr-asymmetric" ? "order statistic k = ⌈(n + 1)(1 − α/2)⌉" : "order statistic k = ⌈(n + 1)(1 − α)⌉",
                     "\(c.rank)" + (c.rank > c.calibrationSize ? " > n: infinite intervals" : ""))]
        rows += c.lowerQuantile == c.upperQuantile ? [("quantile q", f(c.quantile))] : [("lower correction", f(c.lowerQuantile)), ("upper correction", f(c.upperQuantile))]
        rows += [("coverage", f(c.coverage.coverage)), ("target", f(1 - c.alpha)), ("mean width", f(c.coverage.meanWidth)), ("median width", f(c.coverage.medianWidth))]
        return rows
    }

    static func text(_ r: Report) -> String {
        var parts = [TextTable.keyValue(summary(r))]
        if let c = r.calibration {
            parts.append("Coverage of Gaussian central intervals\n" + TextTable.grid(header: ["nominal", "observed", "difference"], rows: c.levels.map {
                [String(format: "%.2f", $0.nominal), String(format: "%.4f", $0.observed), String(format: "%+.4f", $0.observed - $0.nominal)]
            }) + "\nPIT histogram (\(c.pitHistogram.count) bins): " + c.pitHistogram.map(String.init).joined(separator: " "))
        }
        if let c = r.conformal { parts.append("Conformal intervals\n" + TextTable.keyValue(conformalRows(c))) }
        if let d = r.drift {
            parts.append("Drift against the reference (KS, Bonferroni over \(d.tests.count) at α = \(f(d.alpha)))\n" + TextTable.grid(
                header: ["sample", "KS D", "p-value", "adjusted p", "drift"],
                rows: d.tests.map { [$0.name, String(format: "%.4f", $0.statistic), String(format: "%.3g", $0.pValue), String(format: "%.3g", $0.adjustedPValue), $0.drifted ? "yes" : "no"] })
                + String(format: "\nmean |residual|: reference %.4g, current %.4g", d.referenceMeanAbsoluteResidual, d.currentMeanAbsoluteResidual))
        }
        return parts.joined(separator: "\n\n")
    }
}
