import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline drift`: two-sample tests between a reference sample and a current one.
struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
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
    @Flag(help: "Exit with code 1 when any test detects drift.") var failOnDrift = false
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        var mmd: MMDTest.Result?
        var ksStatistics: [Double]?; var ksPValues: [Double]?; var ksDriftBonferroni: Bool?; var ksDriftFDR: Bool?; var driftedFeatures: [Int]?
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
        let report = try Inputs.guarded("drift") { () -> Report in
            guard let method = DriftTests.KolmogorovSmirnovMethod(rawValue: ksMethod) else {
                throw InputError("--ks-method must be one of \(DriftTests.KolmogorovSmirnovMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var r = Report(drift: false)
            if let reference, let current {
                let a = try Inputs.features(reference, option: "--reference", finite: true), b = try Inputs.features(current, option: "--current", finite: true)
                guard a.columns == b.columns else {
                    throw InputError("--reference \(reference) has \(a.columns) features per row but --current \(current) has \(b.columns)")
                }
                guard let estimator = MMDTest.Estimator(rawValue: mmdEstimator) else {
                    throw InputError("--mmd-estimator must be unbiased or biased, not '\(mmdEstimator)'")
                }
                let (indices, overflow) = permutations.multipliedReportingOverflow(by: a.rows + b.rows)
                guard !overflow, indices <= OptionCheck.Limit.permutationIndices else {
                    throw InputError("--permutations \(permutations) × \(a.rows + b.rows) rows is more than \(OptionCheck.Limit.permutationIndices) permutation indices "
                                   + "(they are held at once); use at most \(OptionCheck.Limit.permutationIndices / (a.rows + b.rows)) permutations")
                }
                let d = try FeatureDrift(reference: a, current: b, alpha: alpha, ksMethod: method, permutations: permutations, seed: seed, estimator: estimator)
                (r.mmd, r.ksStatistics, r.ksPValues, r.ksDriftBonferroni, r.ksDriftFDR) = (d.mmd, d.ksStatistics, d.ksPValues, d.ksDriftBonferroni, d.ksDriftFDR)
                r.driftedFeatures = d.driftedFeatures
                r.drift = d.drift
            } else if reference != nil || current != nil {
                throw InputError("give both --reference and --current")
            }
            if let referenceLabels, let currentLabels {
                let a = try Inputs.labels(referenceLabels, option: "--reference-labels"), b = try Inputs.labels(currentLabels, option: "--current-labels")
                r.chiSquare = try DriftTests.chiSquare(reference: a, test: b, classes: (a + b).max().map { $0 + 1 } ?? 1)
                r.drift = r.drift || r.chiSquare!.pValue < alpha
            }
            if let validationPredictions, let validationLabels, let currentPredictions {
                let p = try Inputs.labels(validationPredictions, option: "--validation-predictions"), y = try Inputs.labels(validationLabels, option: "--validation-labels")
                let t = try Inputs.labels(currentPredictions, option: "--current-predictions")
                guard p.count == y.count else {
                    throw InputError("--validation-predictions \(validationPredictions) has \(p.count) rows but --validation-labels \(validationLabels) has \(y.count)")
                }
                r.labelShift = try LabelShiftEstimate(validationPredictions: p, validationLabels: y, targetPredictions: t,
                                                      classes: (p + y + t).max().map { $0 + 1 } ?? 1)
            }
            guard r.mmd != nil || r.ksPValues != nil || r.chiSquare != nil || r.labelShift != nil else {
                throw InputError("nothing to test: give --reference/--current, label files, or the three BBSE files")
            }
            return r
        }
        if json {
            print(try JSONOutput.string(report))
        } else {
            if let m = report.mmd { print(String(format: "MMD² %.4e (s² %.4g), permutation p-value %.4f", m.mmd2, m.sigma2, m.pValue)) }
            if let p = report.ksPValues, let drifted = report.driftedFeatures {
                print(String(format: "KS on %ld features: smallest p %.3g; drift (Bonferroni) %@, drift (BH) %@", p.count, p.min() ?? 1,
                             report.ksDriftBonferroni! ? "yes" : "no", report.ksDriftFDR! ? "yes" : "no"))
                if !drifted.isEmpty {
                    print("drifted features (BH at α, by column, p-value): " + drifted.prefix(20).map { String(format: "%d (%.2g)", $0, p[$0]) }.joined(separator: ", ")
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
}
