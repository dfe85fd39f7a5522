import FaultlineRobustness
import Foundation

extension DemoCommand {
    /// The report's plots, by file name (each also embedded in report.html).
    static func figures(_ r: Report) -> [String: String] {
        let eps = r.robustness.map(\.epsilon)
        return [
            "reliability.svg": StandardFigures.reliability(r.plots.reliabilityBins, title: "Reliability diagram (ensemble)"),
            "risk_coverage.svg": StandardFigures.riskCoverage(r.plots.riskCoverage, title: "Selective risk (ensemble)"),
            "uncertainty.svg": StandardFigures.histograms(r.plots.mutualInformationEdges, [("correct", r.plots.mutualInformationCorrect),
                                                                                          ("wrong", r.plots.mutualInformationWrong)],
                                                         title: "Mutual information: right vs wrong", xLabel: "mutual information (nats)"),
            "roc.svg": StandardFigures.roc(r.plots.roc, title: "Shift detection (Mahalanobis)"),
            "robustness.svg": StandardFigures.robustness(eps, [("FGSM", r.robustness.map(\.fgsm), false), ("PGD-20", r.robustness.map(\.pgd20), false),
                                                               ("APGD-CE", r.robustness.map(\.apgdCE), false), ("AutoAttack", r.robustness.map(\.autoAttack), false),
                                                               ("CROWN certified", r.robustness.map(\.certifiedCROWN), true)],
                                                         title: "Robust accuracy vs ε (member 1, L∞)"),
            "corruptions.svg": StandardFigures.corruptions(r.corruptions, title: "Accuracy under corruptions (member 1)"),
            "conformal.svg": StandardFigures.conformal(r.conformalByAlpha.map { ($0.alpha, $0.coverage) }, title: "Conformal coverage (LAC)"),
        ]
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
