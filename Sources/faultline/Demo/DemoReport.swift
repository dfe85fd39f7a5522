import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import Foundation

extension DemoCommand {
    struct MemberResult: Codable { var seed: UInt64; var epochs: Int; var testAccuracy: Double; var trainingSeconds: Double }
    struct AttackRow: Codable {
        var epsilon: Float; var fgsm: Double; var pgd20: Double; var apgdCE: Double; var autoAttack: Double
        /// Share of test samples CROWN certifies at ε: a lower bound where the attacks give upper bounds.
        var certifiedCROWN: Double
    }
    struct HeldOutRow: Codable { var heldOutClass: Int; var mahalanobisAUROC: Double; var knnAUROC: Double; var mspAUROC: Double; var energyAUROC: Double }
    struct ConformalRow: Codable { var alpha: Double; var coverage: Double; var meanSetSize: Double }
    /// What the plots show, so report.json holds every number drawn.
    struct PlotData: Codable {
        var reliabilityBins: [CalibrationMetrics.Bin]
        /// (coverage, risk) pairs of the ensemble's selective risk.
        var riskCoverage: [[Double]]
        /// Histogram edges and counts of the ensemble's mutual information for correct and wrong predictions.
        var mutualInformationEdges: [Double]
        var mutualInformationCorrect: [Int]
        var mutualInformationWrong: [Int]
        /// (FPR, TPR) of the Mahalanobis score per shift.
        var roc: [String: [[Double]]]
    }
    /// Accuracy under a shift and how its errors split between flagged (out-of-distribution score above
    /// the threshold) and silent (unflagged and confident) failures.
    struct ShiftedAttribution: Codable { var shift: String; var accuracy: Double; var errors: Int; var flaggedErrors: Int; var silentConfidentErrors: Int }
    struct ShiftRow: Codable {
        var shift: String; var ensembleAccuracy: Double
        var mahalanobisAUROC: Double; var mahalanobisFPR95: Double
        var mspAUROC: Double; var energyAUROC: Double; var mutualInformationAUROC: Double
    }
    struct Calibration: Codable {
        var memberECE: Double; var memberNLL: Double; var temperature: Double
        var memberECEAfterTemperature: Double; var memberNLLAfterTemperature: Double
        var ensembleECE: Double; var ensembleNLL: Double; var ensembleBrier: Double
    }
    struct Uncertainty: Codable {
        var meanMutualInformationCorrect: Double; var meanMutualInformationWrong: Double
        var meanEntropyCorrect: Double; var meanEntropyWrong: Double
        var aurc: Double; var excessAURC: Double; var riskAt80PercentCoverage: Double
        var testErrorInterval95: [Double]
        /// Split conformal (LAC, α = 0.1) calibrated on the calibration split with the ensemble's mean probabilities.
        var conformalCoverage: Double
        var conformalMeanSetSize: Double
    }
    struct Report: Codable {
        var dataset: String
        var split: [String: Int]
        var spec: String
        var members: [MemberResult]
        var ensembleTestAccuracy: Double
        var memberDisagreement: Double
        var mcDropoutAgreement: Double
        var calibration: Calibration
        var uncertainty: Uncertainty
        var shift: [ShiftRow]
        var robustness: [AttackRow]
        var heldOutClass: HeldOutRow
        var corruptions: CorruptionSweep.Report
        var conformalByAlpha: [ConformalRow]
        var attribution: FailureAttribution
        var shiftedAttribution: [ShiftedAttribution]
        var plots: PlotData
        var medianMinimalPGDEpsilon: Float?
        var seconds: Double
        var system: String
    }

    static func render(_ r: Report) -> String {
        var lines: [String] = []
        lines.append("Faultline demo — \(r.dataset)")
        lines.append("split: train \(r.split["train"]!), calibration \(r.split["calibration"]!), test \(r.split["test"]!); model \(r.spec)")
        lines.append("")
        lines.append("Reliability (in-distribution test set)")
        lines.append(TextTable.grid(header: ["member", "seed", "epochs", "test accuracy", "training s"], rows: r.members.enumerated().map {
            [String($0.offset + 1), String($0.element.seed), String($0.element.epochs), String(format: "%.4f", $0.element.testAccuracy),
             String(format: "%.2f", $0.element.trainingSeconds)]
        }))
        lines.append(String(format: "ensemble (mean probabilities) test accuracy %.4f; members disagree on %.1f%% of test samples; "
                            + "MC dropout (20 passes) agrees with the deterministic prediction %.1f%% of the time",
                            r.ensembleTestAccuracy, 100 * r.memberDisagreement, 100 * r.mcDropoutAgreement))
        let c = r.calibration, u = r.uncertainty
        lines.append(String(format: "calibration (15 equal-width bins): member 1 ECE %.4f, NLL %.4f; after temperature T = %.3f "
                            + "(fitted on the calibration split) ECE %.4f, NLL %.4f; ensemble ECE %.4f, NLL %.4f, Brier %.4f",
                            c.memberECE, c.memberNLL, c.temperature, c.memberECEAfterTemperature, c.memberNLLAfterTemperature,
                            c.ensembleECE, c.ensembleNLL, c.ensembleBrier))
        lines.append(String(format: "uncertainty: mutual information %.4f on correct vs %.4f on wrong predictions; predictive entropy %.4f vs %.4f",
                            u.meanMutualInformationCorrect, u.meanMutualInformationWrong, u.meanEntropyCorrect, u.meanEntropyWrong))
        lines.append(String(format: "selective prediction: AURC %.4f (E-AURC %.4f), risk %.4f at 80%% coverage; test error 95%% Clopper–Pearson interval [%.4f, %.4f]",
                            u.aurc, u.excessAURC, u.riskAt80PercentCoverage, u.testErrorInterval95[0], u.testErrorInterval95[1]))
        lines.append(String(format: "conformal prediction (LAC, α = 0.1, calibrated on the calibration split): coverage %.4f, mean set size %.2f",
                            u.conformalCoverage, u.conformalMeanSetSize))
        lines.append("")
        lines.append("Distribution shift (test set shifted; AUROC of telling shifted from clean samples, higher is better)")
        lines.append(TextTable.grid(header: ["shift", "ensemble acc.", "Mahalanobis", "FPR@95", "MSP", "energy", "MI"], rows: r.shift.map {
            [$0.shift, String(format: "%.4f", $0.ensembleAccuracy), String(format: "%.4f", $0.mahalanobisAUROC), String(format: "%.4f", $0.mahalanobisFPR95),
             String(format: "%.4f", $0.mspAUROC), String(format: "%.4f", $0.energyAUROC), String(format: "%.4f", $0.mutualInformationAUROC)]
        }))
        lines.append("")
        lines.append(String(format: "held-out class %d (a model trained without it): AUROC Mahalanobis %.4f, KNN %.4f, MSP %.4f, energy %.4f",
                            r.heldOutClass.heldOutClass, r.heldOutClass.mahalanobisAUROC, r.heldOutClass.knnAUROC, r.heldOutClass.mspAUROC,
                            r.heldOutClass.energyAUROC))
        lines.append("")
        lines.append("Robustness of member 1 (L∞, pixels in [0, 1]): attacks give upper bounds on robust accuracy, CROWN a certified lower bound")
        lines.append(TextTable.grid(header: ["ε", "FGSM", "PGD-20", "APGD-CE", "AutoAttack", "CROWN certified"], rows: r.robustness.map {
            [String($0.epsilon), String(format: "%.4f", $0.fgsm), String(format: "%.4f", $0.pgd20), String(format: "%.4f", $0.apgdCE),
             String(format: "%.4f", $0.autoAttack), String(format: "%.4f", $0.certifiedCROWN)]
        }))
        lines.append(r.medianMinimalPGDEpsilon.map { String(format: "median minimal PGD-20 ε over correctly classified test samples: %.4f", $0) }
                     ?? "median minimal PGD-20 ε: more than half of the samples resist ε = 0.5")
        lines.append("")
        lines.append(String(format: "Natural corruptions (member 1): clean accuracy %.4f, mean over 8 corruptions × 5 severities %.4f",
                            r.corruptions.cleanAccuracy, r.corruptions.meanAccuracy))
        lines.append(TextTable.grid(header: ["corruption"] + (1...5).map { "s\($0)" }, rows: Corruption.allCases.map { c in
            [c.rawValue] + (1...5).map { s in r.corruptions.cells.first { $0.corruption == c && $0.severity == s }.map { String(format: "%.3f", $0.accuracy) } ?? "" }
        }))
        lines.append("conformal (LAC) coverage vs α: " + r.conformalByAlpha.map { String(format: "α %.2f → %.3f (size %.2f)", $0.alpha, $0.coverage, $0.meanSetSize) }.joined(separator: "; "))
        lines.append("")
        let t = r.attribution.thresholds
        lines.append(String(format: "Failure attribution of member 1's test predictions (OOD: Mahalanobis > %.2f, the calibration split's 95th percentile; "
                            + "confident: p ≥ %.2f; fragile: flipped by %@ within ε = %.2f)", t.outOfDistributionScore, t.confidence, t.attack, t.epsilon))
        lines.append(TextTable.grid(header: ["category", "samples"], rows: FailureAttribution.Category.allCases.map { [$0.rawValue, String(r.attribution.counts[$0.rawValue] ?? 0)] }))
        lines.append(TextTable.grid(header: ["shifted set", "accuracy", "errors", "flagged OOD", "silent & confident"], rows: r.shiftedAttribution.map {
            [$0.shift, String(format: "%.4f", $0.accuracy), String($0.errors), String($0.flaggedErrors), String($0.silentConfidentErrors)]
        }))
        lines.append(String(format: "total %.1f s; %@", r.seconds, r.system))
        return lines.joined(separator: "\n")
    }
}
