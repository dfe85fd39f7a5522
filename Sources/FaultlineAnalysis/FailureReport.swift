import FaultlineLinalg
import FaultlineReliability
import FaultlineRobustness

/// Why a model fails, in one value: the reliability of its predictions on data like its training data,
/// its robustness to shift, perturbations and corruptions, and the attribution of every test error to
/// one of those failures. `FailureReport.build` computes it; the FaultlineReport module renders it
/// (HTML with plots, text, JSON); `Codable`, so a report written by `faultline report` or `faultline
/// demo` (report.json) decodes back into this type.
///
/// Every number is measured on the data given, with the thresholds recorded in `attribution.thresholds`
/// and the options in `setup.options`. Sections the data does not allow are empty or nil (no calibration
/// split: no temperature and no conformal rows; no image layout: no corruption sweep; a layer without a
/// bound rule: no certified column, with a note in `robustnessNotes`).
public struct FailureReport: Codable, Sendable {
    /// The version of this schema; 1 since wave 2.
    public static let currentSchema = 1

    public var schema: Int
    public var title: String
    /// A description of the data (e.g. the bundled digits' provenance), if the caller gave one.
    public var dataset: String?
    public var model: ModelSummary
    public var samples: Samples
    /// The analysed model's predictions on the test set.
    public var reliability: Reliability
    /// The ensemble's mean prediction, when the analysis was given an ensemble.
    public var ensemble: Ensemble?
    /// Split conformal (LAC) coverage and set size at each α (needs a calibration set).
    public var conformal: [ConformalRow]
    /// One row per shifted set.
    public var shift: [ShiftRow]
    /// Accuracy predicted without labels (ATC, DoC) on every shifted set, next to the true accuracy
    /// where the set has labels; nil when there are no shifted sets (and in reports written before it).
    public var accuracyWithoutLabels: AccuracyWithoutLabels? = nil
    /// The feature space of the feature-space OOD detector (the model's penultimate features), which
    /// then also decides "out of distribution" in the attribution; nil when the model has none (the
    /// input-space Mahalanobis detector decides) and in reports written before it.
    public var featureSpace: String? = nil
    /// Label issues on the test split and train/test duplicates (FailureReport+Data.swift); nil in
    /// reports written before it.
    public var dataQuality: DataQuality? = nil
    /// A few failing rows of each kind (confident errors, flipped within ε, most out of distribution and
    /// silent under shift), with pixels or most deviating features (`FailureExamples`); nil in reports
    /// written before it.
    public var examples: FailureExamples? = nil
    /// The held-out-class study, when the caller ran it (`HeldOutClassStudy`).
    public var heldOutClass: HeldOutClassRow?
    /// Robust accuracy under attacks (upper bounds) and certified accuracy (lower bound) per ε.
    public var robustness: [RobustnessRow]
    /// Why a robustness column is missing, and any soundness inconsistency found.
    public var robustnessNotes: [String]
    /// The bound method behind `RobustnessRow.certifiedCROWN`: "IBP" for graphs (a robustness note says
    /// so), else "CROWN". Derived from the notes, so not a stored (JSON) field.
    public var certificationMethod: String { robustnessNotes.contains { $0.contains("IBP-certified") } ? "IBP" : "CROWN" }
    /// Median over correctly classified test rows of the smallest ε at which PGD flips them (bisection
    /// in [0, 0.5]); nil when more than half resist 0.5 or the option is off.
    public var medianMinimalEpsilon: Float?
    /// Accuracy under 8 corruptions × 5 severities (images in [0, 1] only).
    public var corruptions: CorruptionSweep.Report?
    /// Every test row's failure category and the thresholds that define them.
    public var attribution: FailureAttribution
    /// What the plots draw, so that report.json holds every number shown.
    public var plots: Plots
    public var setup: Setup

    public struct ModelSummary: Codable, Sendable {
        /// The architecture spec of the analysed model.
        public var spec: String
        public var parameters: Int
        public var inputFeatures: Int
        public var classes: Int
        /// Ensemble members (1 for a single model).
        public var members: Int
    }

    public struct Samples: Codable, Sendable {
        public var train: Int
        public var calibration: Int
        public var test: Int
    }

    public struct Reliability: Codable, Sendable {
        public var accuracy: Double
        /// Clopper–Pearson 95 % interval on the test error.
        public var testErrorInterval95: [Double]
        /// 15 equal-width bins, from the logits.
        public var calibration: CalibrationMetrics
        /// Temperature fitted on the calibration set, and the test metrics after it.
        public var temperature: Double?
        public var calibrationAfterTemperature: CalibrationMetrics?
        /// Selective prediction by the top-class probability.
        public var aurc: Double
        public var excessAURC: Double
        public var riskAt80PercentCoverage: Double
        /// Mean predictive entropy (nats) on right and on wrong predictions.
        public var entropyCorrect: Double
        public var entropyWrong: Double
        /// Share of Monte Carlo dropout predictions equal to the deterministic one (when requested).
        public var monteCarloDropoutAgreement: Double?
    }

    public struct Ensemble: Codable, Sendable {
        public var memberAccuracy: [Double]
        /// Accuracy of the mean probabilities.
        public var accuracy: Double
        /// Share of test rows on which the members do not all agree.
        public var disagreement: Double
        public var calibration: CalibrationMetrics
        public var mutualInformationCorrect: Double
        public var mutualInformationWrong: Double
        public var entropyCorrect: Double
        public var entropyWrong: Double
        public var aurc: Double
        public var excessAURC: Double
    }

    public struct ConformalRow: Codable, Sendable {
        public var alpha: Double
        public var coverage: Double
        public var meanSetSize: Double
    }

    /// How a shifted set is detected, and how its errors split between flagged and silent ones.
    public struct ShiftRow: Codable, Sendable {
        public var shift: String
        public var samples: Int
        /// The analysed model's accuracy (when the set has labels).
        public var accuracy: Double?
        /// The ensemble's accuracy (when the set has labels and the analysis an ensemble).
        public var ensembleAccuracy: Double?
        /// AUROC of telling the shifted rows from the clean test rows (0.5: indistinguishable).
        public var mahalanobisAUROC: Double
        public var mahalanobisFPR95: Double
        /// Mahalanobis (Ledoit–Wolf) on the model's penultimate features (`featureSpace`), when it has them.
        public var featureMahalanobisAUROC: Double?
        public var featureMahalanobisFPR95: Double?
        public var mspAUROC: Double
        public var energyAUROC: Double
        /// By the ensemble's mutual information (ensembles only).
        public var mutualInformationAUROC: Double?
        /// The analysed model's errors on the set (labels only), those the OOD threshold flags, and those
        /// neither flagged nor low-confidence.
        public var errors: Int?
        public var flaggedErrors: Int?
        public var silentConfidentErrors: Int?
    }

    /// ATC (Garg et al. 2022) and DoC (Guillory et al. 2021) of the analysed model: fitted on labelled
    /// source rows (the calibration set, else the clean test set), evaluated on each shifted set and, when
    /// the source is the calibration set, on the clean test set ("clean test"). See `AccuracyEstimate`.
    public struct AccuracyWithoutLabels: Codable, Sendable {
        /// "calibration" or "test".
        public var source: String
        /// The ATC score ("msp").
        public var score: String
        public var sourceAccuracy: Double
        /// ATC's threshold on the score, and the weight of a score equal to it.
        public var threshold: Double
        public var tieWeight: Double
        public var rows: [Row]

        public struct Row: Codable, Sendable {
            public var shift: String
            public var samples: Int
            /// The true accuracy (labelled sets only).
            public var accuracy: Double?
            public var atc: Double
            public var doc: Double
            public var averageConfidence: Double
        }
    }

    public struct HeldOutClassRow: Codable, Sendable {
        public var heldOutClass: Int
        public var mahalanobisAUROC: Double
        public var knnAUROC: Double
        public var mspAUROC: Double
        public var energyAUROC: Double
        /// (FPR, TPR) of the Mahalanobis (input-space) score, subsampled; nil in reports written before it.
        public var roc: [[Double]]? = nil

        public init(heldOutClass: Int, mahalanobisAUROC: Double, knnAUROC: Double, mspAUROC: Double, energyAUROC: Double,
                    roc: [[Double]]? = nil) {
            (self.heldOutClass, self.mahalanobisAUROC, self.knnAUROC, self.mspAUROC, self.energyAUROC, self.roc) =
                (heldOutClass, mahalanobisAUROC, knnAUROC, mspAUROC, energyAUROC, roc)
        }
    }

    public struct RobustnessRow: Codable, Sendable {
        public var epsilon: Float
        public var fgsm: Double?
        public var pgd20: Double
        public var apgdCE: Double
        public var autoAttack: Double?
        /// Share certified by CROWN (ReLU networks): a lower bound where the attacks give upper bounds.
        public var certifiedCROWN: Double?
        /// Rows certified at ε that APGD-CE broke within ε: must be empty (a soundness check).
        public var inconsistencies: [Int]?
    }

    public struct Plots: Codable, Sendable {
        public var reliabilityBins: [CalibrationMetrics.Bin]
        /// (coverage, risk) pairs, subsampled.
        public var riskCoverage: [[Double]]
        /// "entropy" for a single model, "mutual information" for an ensemble.
        public var uncertaintyMeasure: String
        public var uncertaintyEdges: [Double]
        public var uncertaintyCorrect: [Int]
        public var uncertaintyWrong: [Int]
        /// (FPR, TPR) of the Mahalanobis score per shifted set, subsampled; with the corruption sweep and
        /// shifted sets, also of the test rows under severity-1 Gaussian noise (key `mildShiftName`), a
        /// mild shift whose curve is rarely in the corner.
        public var roc: [String: [[Double]]]
    }

    public struct Setup: Codable, Sendable {
        public var options: Options
        public var seconds: Double
        public var system: SystemReport
    }
}
