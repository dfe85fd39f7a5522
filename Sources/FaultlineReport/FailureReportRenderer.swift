import FaultlineAnalysis
import FaultlineReliability
import FaultlineRobustness
import Foundation

/// Renders a `FailureReport` for people and machines: report.html (self-contained, inline SVG, no
/// scripts), report.txt (the same sections as text), report.json (every number, including what the plots
/// draw) and each plot as an .svg file. Reads nothing but the report.
public enum FailureReportRenderer {
    /// Every file of a report directory, by name.
    public static func files(_ report: FailureReport) throws -> [String: Data] {
        let figures = figures(report)
        let page = page(report, figures: figures)
        var files = ["report.json": Data(try JSONOutput.string(report).utf8), "report.html": Data(page.render().utf8),
                     "report.txt": Data(page.renderText().utf8)]
        for (name, svg) in figures { files[name] = Data(svg.utf8) }
        return files
    }

    /// The report as text (report.txt).
    public static func text(_ report: FailureReport) -> String { page(report, figures: figures(report)).renderText() }

    /// The plots by file name; a plot whose data the report lacks is left out.
    public static func figures(_ r: FailureReport) -> [String: String] {
        let p = r.plots, who = r.ensemble == nil ? "" : " (member 1)"
        var f = [
            "reliability.svg": StandardFigures.reliability(p.reliabilityBins, title: "Reliability diagram\(who)"),
            "risk_coverage.svg": StandardFigures.riskCoverage(p.riskCoverage, title: "Selective risk\(who)"),
            "uncertainty.svg": StandardFigures.histograms(p.uncertaintyEdges, [("correct", p.uncertaintyCorrect), ("wrong", p.uncertaintyWrong)],
                                                          title: "\(p.uncertaintyMeasure.capitalizedFirst): right vs wrong", xLabel: "\(p.uncertaintyMeasure) (nats)"),
        ]
        let eps = r.robustness.map(\.epsilon)
        var lines: [(name: String, values: [Double], lowerBound: Bool)] = []
        if let fgsm = all(r.robustness.map(\.fgsm)) { lines.append(("FGSM", fgsm, false)) }
        lines += [("PGD-\(r.setup.options.pgdSteps)", r.robustness.map(\.pgd20), false), ("APGD-CE", r.robustness.map(\.apgdCE), false)]
        if let auto = all(r.robustness.map(\.autoAttack)) { lines.append(("AutoAttack", auto, false)) }
        if let crown = all(r.robustness.map(\.certifiedCROWN)) { lines.append(("\(r.certificationMethod) certified", crown, true)) }
        f["robustness.svg"] = StandardFigures.robustness(eps, lines, title: "Robust accuracy vs ε (L∞)\(who)")
        var roc = p.roc.map { (name: $0.name, points: $0.points) }
        if let h = r.heldOutClass, let curve = h.roc, !curve.isEmpty { roc.append((name: "held-out class \(h.heldOutClass) (inputs)", points: curve)) }
        if !roc.isEmpty {
            f["roc.svg"] = StandardFigures.roc(roc, title: r.featureSpace == nil ? "Shift detection (Mahalanobis, inputs)" : "Shift detection (Mahalanobis, features)")
        }
        if let c = r.corruptions { f["corruptions.svg"] = StandardFigures.corruptions(c, title: "Accuracy under corruptions\(who)") }
        if !r.conformal.isEmpty {
            f["conformal.svg"] = StandardFigures.conformal(r.conformal.map { ($0.alpha, $0.coverage) }, title: "Conformal coverage (LAC)")
        }
        return f
    }

    /// The sections of report.html and report.txt.
    static func page(_ r: FailureReport, figures: [String: String]) -> HTMLReport {
        let rel = r.reliability, t = r.attribution.thresholds, o = r.setup.options
        let errors = FailureAttribution.Category.allCases.filter(\.isError).reduce(0) { $0 + r.attribution.count($1) }
        let who = r.ensemble == nil ? "the model" : "member 1"
        var reliability = [
            String(format: "Calibration of %@ (15 equal-width bins): ECE %.4f, MCE %.4f, NLL %.4f, Brier %.4f.", who, rel.calibration.ece,
                   rel.calibration.mce, rel.calibration.nll, rel.calibration.brier),
            String(format: "Selective prediction: AURC %.4f (excess %.4f), risk %.4f at 80%% coverage. Predictive entropy %.4f on right vs %.4f on wrong predictions.",
                   rel.aurc, rel.excessAURC, rel.riskAt80PercentCoverage, rel.entropyCorrect, rel.entropyWrong),
        ]
        if let T = rel.temperature, let after = rel.calibrationAfterTemperature {
            reliability.append(String(format: "Temperature scaling fitted on the calibration set: T = %.3f, then ECE %.4f, NLL %.4f.", T, after.ece, after.nll))
        }
        if let agreement = rel.monteCarloDropoutAgreement {
            reliability.append(String(format: "Monte Carlo dropout (%d passes) agrees with the deterministic prediction %.1f%% of the time.",
                                      o.monteCarloDropoutPasses, 100 * agreement))
        }
        var reliabilityTables: [(header: [String], rows: [[String]])] = []
        if let e = r.ensemble {
            reliability.append(String(format: "Ensemble of %d (mean probabilities): accuracy %.4f; members disagree on %.1f%% of test rows; ECE %.4f, NLL %.4f, "
                                      + "Brier %.4f; AURC %.4f. Mutual information %.4f on right vs %.4f on wrong predictions.",
                                      e.memberAccuracy.count, e.accuracy, 100 * e.disagreement, e.calibration.ece, e.calibration.nll, e.calibration.brier,
                                      e.aurc, e.mutualInformationCorrect, e.mutualInformationWrong))
            reliabilityTables.append((["member", "test accuracy"], e.memberAccuracy.enumerated().map { [String($0.offset + 1), f4($0.element)] }))
        }
        if r.conformal.isEmpty {
            reliability.append("No conformal sets: they need a calibration set.")
        } else {
            reliabilityTables.append((["conformal (LAC) α", "coverage", "mean set size"],
                                      r.conformal.map { [String(format: "%.2f", $0.alpha), f4($0.coverage), String(format: "%.2f", $0.meanSetSize)] }))
        }

        var shift: [String] = r.shift.isEmpty ? ["No shifted sets given."] : [
            "AUROC of telling each shifted set from the clean test set (0.5: indistinguishable, 1: perfect); errors of \(who) on the set, "
                + "how many the OOD threshold flags, and how many are silent (unflagged and confident)."]
        if !r.shift.isEmpty {
            shift.append(r.featureSpace.map {
                "Detectors: Mahalanobis (Ledoit–Wolf) on the model's penultimate features — \($0) — which decides \"out of distribution\" "
                    + "(the flagged columns, the attribution and the ROC plot); Mahalanobis on the raw inputs as a second detector; MSP and "
                    + "energy on the logits."
            } ?? "Detectors: Mahalanobis (Ledoit–Wolf) on the raw inputs, which decides \"out of distribution\" (the model has no "
                + "penultimate-feature tap); MSP and energy on the logits.")
        }
        if r.plots.roc.contains(where: { $0.kind == .mildShift }) {
            shift.append("The ROC plot adds a mild shift, \"\(FailureReport.mildShiftName)\": the test rows with the lowest-severity Gaussian-noise "
                         + "corruption (σ = 0.04), scored by the same detector.")
        }
        if let h = r.heldOutClass {
            shift.append(String(format: "Held-out class %d (a model trained without it): AUROC Mahalanobis %.4f, KNN %.4f, MSP %.4f, energy %.4f.",
                                h.heldOutClass, h.mahalanobisAUROC, h.knnAUROC, h.mspAUROC, h.energyAUROC)
                         + (h.roc == nil ? "" : " Its Mahalanobis curve (on the inputs) is in the ROC plot."))
        }
        let hasEnsemble = r.ensemble != nil
        typealias ShiftColumn = Column<FailureReport.ShiftRow>
        var shiftColumns: [ShiftColumn] = [.init("shift") { $0.shift }, .init("samples") { String($0.samples) }, .init("accuracy") { f4($0.accuracy) }]
        if hasEnsemble { shiftColumns.append(.init("ensemble acc.") { f4($0.ensembleAccuracy) }) }
        if r.shift.contains(where: { $0.featureMahalanobisAUROC != nil }) {
            shiftColumns += [.init("Mahalanobis (features) AUROC") { f4($0.featureMahalanobisAUROC) }, .init("FPR@95") { f4($0.featureMahalanobisFPR95) }]
        }
        shiftColumns += [.init("Mahalanobis (inputs) AUROC") { f4($0.mahalanobisAUROC) }, .init("FPR@95") { f4($0.mahalanobisFPR95) },
                         .init("MSP") { f4($0.mspAUROC) }, .init("energy") { f4($0.energyAUROC) }]
        if hasEnsemble { shiftColumns.append(.init("MI") { f4($0.mutualInformationAUROC) }) }
        shiftColumns += [.init("errors") { count($0.errors) }, .init("flagged") { count($0.flaggedErrors) },
                         .init("silent & confident") { count($0.silentConfidentErrors) }]

        var shiftTables = r.shift.isEmpty ? [] : [Column.table(r.shift, shiftColumns)]
        if let a = r.accuracyWithoutLabels, !a.rows.isEmpty {
            shift.append(String(format: "Accuracy predicted without labels, fitted on the %@ set (accuracy %.4f): ATC (average thresholded "
                                + "confidence, threshold %.4f on the top probability) and DoC (difference of confidences), against the true accuracy.",
                                a.source, a.sourceAccuracy, a.threshold))
            shiftTables.append((["set", "samples", "accuracy", "ATC", "DoC", "mean confidence"], a.rows.map {
                [$0.shift, String($0.samples), f4($0.accuracy), f4($0.atc), f4($0.doc), f4($0.averageConfidence)]
            }))
        }

        typealias RobustColumn = Column<FailureReport.RobustnessRow>
        var robustColumns: [RobustColumn] = [.init("ε") { String($0.epsilon) }]
        if r.robustness.contains(where: { $0.fgsm != nil }) { robustColumns.append(.init("FGSM") { f4($0.fgsm) }) }
        robustColumns += [.init("PGD-\(o.pgdSteps)") { f4($0.pgd20) }, .init("APGD-CE") { f4($0.apgdCE) }]
        if r.robustness.contains(where: { $0.autoAttack != nil }) { robustColumns.append(.init("AutoAttack") { f4($0.autoAttack) }) }
        robustColumns.append(.init("\(r.certificationMethod) certified") { f4($0.certifiedCROWN) })
        var perturbation = ["Attacks bound the robust accuracy from above, \(r.certificationMethod) certification from below; the gap is what is not known."]
            + r.robustnessNotes
        if o.minimalEpsilon {
            perturbation.append(r.medianMinimalEpsilon.map { String(format: "Median minimal PGD ε over correctly classified rows: %.4f.", $0) }
                                ?? "More than half of the correctly classified rows resist PGD at ε = 0.5.")
        }
        var perturbationTables = [Column.table(r.robustness, robustColumns)]
        if let c = r.corruptions {
            perturbation.append(String(format: "Corruptions: clean accuracy %.4f, mean over corruptions and severities %.4f.", c.cleanAccuracy, c.meanAccuracy))
            let kinds = c.cells.map(\.corruption).reduce(into: [Corruption]()) { if !$0.contains($1) { $0.append($1) } }
            let severities = Array(Set(c.cells.map(\.severity))).sorted()
            perturbationTables.append((["corruption"] + severities.map { "severity \($0)" }, kinds.map { k in
                [k.rawValue] + severities.map { s in c.cells.first { $0.corruption == k && $0.severity == s }.map { String(format: "%.3f", $0.accuracy) } ?? "" }
            }))
        }

        var sections: [HTMLReport.Section] = [
            .init(heading: "Verdict", paragraphs: FailureVerdict(r).findings.map(\.text)),
            .init(heading: "Why this model fails",
                  paragraphs: [String(format: "Test accuracy of %@ %.4f (95%% interval on the error [%.4f, %.4f]); %d of %d test rows are wrong. "
                                      + "Each row is attributed: out of distribution when the Mahalanobis score exceeds %.2f (the %@ of held-out "
                                      + "in-distribution scores); confident at p ≥ %.2f; fragile when %@ flips a right prediction within ε = %.3f.",
                                      who, rel.accuracy, rel.testErrorInterval95[0], rel.testErrorInterval95[1], errors, r.samples.test,
                                      t.outOfDistributionScore, t.outOfDistributionQuantile.map { String(format: "%g quantile", $0) } ?? "95th percentile",
                                      t.confidence, t.attack, t.epsilon)],
                  tables: [(["category", "samples"], FailureAttribution.Category.allCases.map { [$0.title, String(r.attribution.count($0))] })]),
            .init(heading: "Reliability", paragraphs: reliability, tables: reliabilityTables,
                  figures: ["reliability.svg", "risk_coverage.svg", "uncertainty.svg", "conformal.svg"]),
            .init(heading: "Robustness: distribution shift", paragraphs: shift,
                  tables: shiftTables, figures: ["roc.svg"]),
            .init(heading: "Robustness: perturbations", paragraphs: perturbation, tables: perturbationTables,
                  figures: ["robustness.svg", "corruptions.svg"]),
            .init(heading: "Setup",
                  paragraphs: [(r.dataset.map { "Data: \($0). " } ?? "") + "Model: \(r.model.spec) (\(r.model.parameters) parameters"
                               + (r.model.members > 1 ? ", \(r.model.members) members). " : "). ")
                               + "Rows: train \(r.samples.train), calibration \(r.samples.calibration), test \(r.samples.test). "
                               + String(format: "Run time %.1f s; %@.", r.setup.seconds, r.setup.system.headline)]),
        ]
        if let e = r.examples { sections.insert(examplesSection(e, r), at: 2) }
        if let d = r.dataQuality { sections.insert(dataSection(d), at: sections.count - 1) }
        return HTMLReport(title: r.title, subtitle: "Where and why the model fails: reliability and robustness", sections: sections, figures: figures)
    }

    static func f4(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "—" }
    static func count(_ v: Int?) -> String { v.map(String.init) ?? "—" }

    /// The values when none is missing.
    static func all(_ values: [Double?]) -> [Double]? {
        values.contains { $0 == nil } || values.isEmpty ? nil : values.map { $0! }
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}

/// One column of a table: its header and how a row renders in it.
struct Column<Row> {
    var header: String
    var cell: (Row) -> String

    init(_ header: String, _ cell: @escaping (Row) -> String) { (self.header, self.cell) = (header, cell) }

    static func table(_ rows: [Row], _ columns: [Column]) -> (header: [String], rows: [[String]]) {
        (columns.map(\.header), rows.map { row in columns.map { $0.cell(row) } })
    }
}
