import FaultlineRobustness
import Foundation

extension DemoCommand {
    /// The report's plots, by file name (each also embedded in report.html).
    static func figures(_ r: Report) -> [String: String] {
        var f: [String: String] = [:]
        let bins = r.plots.reliabilityBins.filter { $0.count > 0 }
        let total = Double(r.plots.reliabilityBins.reduce(0) { $0 + $1.count })
        f["reliability.svg"] = SVGPlot(title: "Reliability diagram (ensemble)", xLabel: "confidence", yLabel: "accuracy / share of samples",
                                       series: [.init(name: "accuracy", points: bins.map { ($0.meanConfidence, $0.accuracy) }),
                                                .init(name: "share of samples", points: bins.map { (($0.lower + $0.upper) / 2, Double($0.count) / total) }, dashed: true)],
                                       xRange: 0...1, yRange: 0...1, diagonal: true).render()
        f["risk_coverage.svg"] = SVGPlot(title: "Selective risk (ensemble)", xLabel: "coverage", yLabel: "risk (error among accepted)",
                                         series: [.init(name: "risk", points: r.plots.riskCoverage.map { ($0[0], $0[1]) }, markers: false)],
                                         xRange: 0...1).render()
        let centres = zip(r.plots.mutualInformationEdges, r.plots.mutualInformationEdges.dropFirst()).map { ($0 + $1) / 2 }
        func share(_ counts: [Int]) -> [(x: Double, y: Double)] {
            let n = Double(max(counts.reduce(0, +), 1))
            return zip(centres, counts).map { ($0, Double($1) / n) }
        }
        f["uncertainty.svg"] = SVGPlot(title: "Mutual information: right vs wrong", xLabel: "mutual information (nats)", yLabel: "share of samples",
                                       series: [.init(name: "correct", points: share(r.plots.mutualInformationCorrect)),
                                                .init(name: "wrong", points: share(r.plots.mutualInformationWrong))], kind: .bars).render()
        f["roc.svg"] = SVGPlot(title: "Shift detection (Mahalanobis)", xLabel: "false-positive rate", yLabel: "true-positive rate",
                               series: r.plots.roc.keys.sorted().map { name in .init(name: name, points: r.plots.roc[name]!.map { ($0[0], $0[1]) }, markers: false) },
                               xRange: 0...1, yRange: 0...1, diagonal: true).render()
        let eps = r.robustness.map { Double($0.epsilon) }
        func curve(_ name: String, _ v: [Double], dashed: Bool = false) -> SVGPlot.Series { .init(name: name, points: Array(zip(eps, v)), dashed: dashed) }
        f["robustness.svg"] = SVGPlot(title: "Robust accuracy vs ε (member 1, L∞)", xLabel: "ε", yLabel: "accuracy",
                                      series: [curve("FGSM", r.robustness.map(\.fgsm)), curve("PGD-20", r.robustness.map(\.pgd20)),
                                               curve("APGD-CE", r.robustness.map(\.apgdCE)), curve("AutoAttack", r.robustness.map(\.autoAttack)),
                                               curve("CROWN certified", r.robustness.map(\.certifiedCROWN), dashed: true)],
                                      yRange: 0...1).render()
        f["corruptions.svg"] = SVGPlot(title: "Accuracy under corruptions (member 1)", xLabel: "severity", yLabel: "accuracy",
                                       series: Corruption.allCases.map { c in
                                           .init(name: c.rawValue, points: r.corruptions.cells.filter { $0.corruption == c }.map { (Double($0.severity), $0.accuracy) })
                                       }, xRange: 1...5, yRange: 0...1, height: 340).render()
        f["conformal.svg"] = SVGPlot(title: "Conformal coverage (LAC)", xLabel: "target coverage 1 − α", yLabel: "empirical coverage",
                                     series: [.init(name: "coverage", points: r.conformalByAlpha.map { (1 - $0.alpha, $0.coverage) })],
                                     xRange: 0.65...1, yRange: 0.65...1, diagonal: true).render()
        return f
    }

    static func html(_ r: Report, figures: [String: String]) -> String {
        let c = r.calibration, u = r.uncertainty, t = r.attribution.thresholds
        func f4(_ v: Double) -> String { String(format: "%.4f", v) }
        let errors = FailureAttribution.Category.allCases.prefix(3).reduce(0) { $0 + (r.attribution.counts[$1.rawValue] ?? 0) }
        let sections: [HTMLReport.Section] = [
            .init(heading: "Why this model fails",
                  paragraphs: ["Every test error of member 1 is attributed to a reliability failure (in distribution, wrong) or a robustness failure "
                               + "(out of distribution), and every correct prediction checked for fragility under a small perturbation. Thresholds: "
                               + String(format: "out of distribution when the Mahalanobis score exceeds %.2f (the calibration split's 95th percentile); ", t.outOfDistributionScore)
                               + String(format: "confident at a top-class probability ≥ %.2f; fragile when %@ flips the prediction within ε = %.2f.", t.confidence, t.attack, t.epsilon),
                               "\(errors) errors in \(r.split["test"] ?? 0) test samples."],
                  table: (["category", "samples"], FailureAttribution.Category.allCases.map { [$0.rawValue, String(r.attribution.counts[$0.rawValue] ?? 0)] })),
            .init(heading: "Reliability: calibration and uncertainty",
                  paragraphs: [String(format: "Ensemble test accuracy %.4f (members disagree on %.1f%% of samples). Member 1: ECE %.4f, NLL %.4f; "
                                      + "after temperature scaling (T = %.3f) ECE %.4f, NLL %.4f. Ensemble ECE %.4f, Brier %.4f.",
                                      r.ensembleTestAccuracy, 100 * r.memberDisagreement, c.memberECE, c.memberNLL, c.temperature,
                                      c.memberECEAfterTemperature, c.memberNLLAfterTemperature, c.ensembleECE, c.ensembleBrier),
                               String(format: "Mutual information %.4f on correct vs %.4f on wrong predictions. AURC %.4f (E-AURC %.4f); risk %.4f at 80%% coverage; "
                                      + "test error in [%.4f, %.4f] with 95%% confidence (Clopper–Pearson).", u.meanMutualInformationCorrect,
                                      u.meanMutualInformationWrong, u.aurc, u.excessAURC, u.riskAt80PercentCoverage, u.testErrorInterval95[0], u.testErrorInterval95[1])],
                  figures: ["reliability.svg", "risk_coverage.svg", "uncertainty.svg", "conformal.svg"]),
            .init(heading: "Robustness: distribution shift",
                  paragraphs: [String(format: "Held-out class %d (model trained without it): AUROC Mahalanobis %.4f, KNN %.4f, MSP %.4f, energy %.4f.",
                                      r.heldOutClass.heldOutClass, r.heldOutClass.mahalanobisAUROC, r.heldOutClass.knnAUROC, r.heldOutClass.mspAUROC, r.heldOutClass.energyAUROC)],
                  table: (["shift", "ensemble acc.", "Mahalanobis AUROC", "FPR@95", "MSP", "energy", "MI", "member-1 errors", "flagged", "silent & confident"],
                          zip(r.shift, r.shiftedAttribution).map { s, a in
                              [s.shift, f4(s.ensembleAccuracy), f4(s.mahalanobisAUROC), f4(s.mahalanobisFPR95), f4(s.mspAUROC), f4(s.energyAUROC),
                               f4(s.mutualInformationAUROC), String(a.errors), String(a.flaggedErrors), String(a.silentConfidentErrors)]
                          }),
                  figures: ["roc.svg"]),
            .init(heading: "Robustness: perturbations",
                  paragraphs: ["Attacks give upper bounds on the true robust accuracy, CROWN certification a lower bound; the gap is what is not known."]
                               + [r.medianMinimalPGDEpsilon.map { String(format: "Median minimal PGD-20 ε: %.4f.", $0) } ?? "Most samples resist ε = 0.5."],
                  table: (["ε", "FGSM", "PGD-20", "APGD-CE", "AutoAttack", "CROWN certified"], r.robustness.map {
                      [String($0.epsilon), f4($0.fgsm), f4($0.pgd20), f4($0.apgdCE), f4($0.autoAttack), f4($0.certifiedCROWN)]
                  }),
                  figures: ["robustness.svg", "corruptions.svg"]),
            .init(heading: "Setup", paragraphs: ["Dataset: \(r.dataset). Model: \(r.spec), \(r.members.count) members. " + String(format: "Run time %.1f s on %@.", r.seconds, r.system)]),
        ]
        return HTMLReport(title: "Faultline report", subtitle: "Where and why the model fails: reliability and robustness on the bundled digits",
                          sections: sections, figures: figures).render()
    }
}
