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
    /// The version of report.json's layout (docs/report.schema.json describes it): 1 since wave 2; 2
    /// since the JSON uses stable identifiers — `plots.roc` an array of named curves instead of an
    /// object keyed by set name, `attribution` categories and counts by identifier
    /// (`FailureAttribution.Category`) instead of display title. Schema-1 reports still decode.
    public static let currentSchema = 2

    /// The layout version this report was written with (`currentSchema` for a new report).
    public var schema: Int
    /// The report's heading ("Faultline report").
    public var title: String
    /// A description of the data (e.g. the bundled digits' provenance), if the caller gave one.
    public var dataset: String?
    /// The analysed model (for an ensemble: its first member, with the member count).
    public var model: ModelSummary
    /// Rows in each split, after `Options.maxSamples` sampling of the test rows.
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
    /// The options, the wall-clock time and the machine of the run.
    public var setup: Setup

    /// The analysed model's shape.
    public struct ModelSummary: Codable, Sendable {
        /// The architecture spec of the analysed model.
        public var spec: String
        /// Trainable parameters of the analysed model (one member, not the whole ensemble).
        public var parameters: Int
        /// Input width (features per row).
        public var inputFeatures: Int
        /// Output width: the number of classes.
        public var classes: Int
        /// Ensemble members (1 for a single model).
        public var members: Int
    }

    /// Rows per split.
    public struct Samples: Codable, Sendable {
        /// Training rows (the Mahalanobis fit, z-scores, leakage check).
        public var train: Int
        /// Calibration rows; 0 when none was given.
        public var calibration: Int
        /// Test rows analysed (after `Options.maxSamples` sampling).
        public var test: Int
    }

    /// Reliability of the analysed model (for an ensemble: its first member) on the test rows.
    public struct Reliability: Codable, Sendable {
        /// Share of test rows predicted right, in [0, 1].
        public var accuracy: Double
        /// Clopper–Pearson 95 % interval on the test error.
        public var testErrorInterval95: [Double]
        /// 15 equal-width bins, from the logits.
        public var calibration: CalibrationMetrics
        /// Temperature fitted on the calibration set, and the test metrics after it.
        public var temperature: Double?
        /// The test calibration metrics after dividing the logits by `temperature` (nil without it).
        public var calibrationAfterTemperature: CalibrationMetrics?
        /// Area under the risk–coverage curve of selective prediction by the top-class probability, in [0, 1].
        public var aurc: Double
        /// AURC minus the AURC of an oracle ranking with the same accuracy (0: perfect ranking).
        public var excessAURC: Double
        /// Error rate on the 80 % most confident test rows, in [0, 1].
        public var riskAt80PercentCoverage: Double
        /// Mean predictive entropy (nats) on right predictions (0 when there are none).
        public var entropyCorrect: Double
        /// Mean predictive entropy (nats) on wrong predictions (0 when there are none).
        public var entropyWrong: Double
        /// Share of Monte Carlo dropout predictions equal to the deterministic one (when requested).
        public var monteCarloDropoutAgreement: Double?
    }

    /// The ensemble's mean prediction on the test rows (numbers of the ensemble, not of a member).
    public struct Ensemble: Codable, Sendable {
        /// Test accuracy of each member alone, in member order.
        public var memberAccuracy: [Double]
        /// Accuracy of the mean probabilities.
        public var accuracy: Double
        /// Share of test rows on which the members do not all agree.
        public var disagreement: Double
        /// Calibration of the mean probabilities (15 equal-width bins).
        public var calibration: CalibrationMetrics
        /// Mean mutual information (nats) between prediction and member on rows the ensemble gets right.
        public var mutualInformationCorrect: Double
        /// Mean mutual information (nats) on rows the ensemble gets wrong.
        public var mutualInformationWrong: Double
        /// Mean entropy (nats) of the mean probabilities on rows the ensemble gets right.
        public var entropyCorrect: Double
        /// Mean entropy (nats) of the mean probabilities on rows the ensemble gets wrong.
        public var entropyWrong: Double
        /// AURC of selective prediction by the ensemble's top mean probability.
        public var aurc: Double
        /// The ensemble's AURC minus its oracle AURC.
        public var excessAURC: Double
    }

    /// Split conformal prediction at one miscoverage level (of the ensemble's mean probabilities when
    /// there is an ensemble, else of the analysed model's).
    public struct ConformalRow: Codable, Sendable {
        /// The miscoverage level α in (0, 1): the sets target coverage 1 − α.
        public var alpha: Double
        /// Share of test rows whose set contains the label, in [0, 1].
        public var coverage: Double
        /// Mean number of classes per set.
        public var meanSetSize: Double
    }

    /// How a shifted set is detected, and how its errors split between flagged and silent ones.
    public struct ShiftRow: Codable, Sendable {
        /// The shifted set's name (as the caller gave it).
        public var shift: String
        /// Rows of the set analysed (after `Options.maxSamples` sampling).
        public var samples: Int
        /// The analysed model's accuracy (when the set has labels).
        public var accuracy: Double?
        /// The ensemble's accuracy (when the set has labels and the analysis an ensemble).
        public var ensembleAccuracy: Double?
        /// AUROC of telling the shifted rows from the clean test rows (0.5: indistinguishable).
        public var mahalanobisAUROC: Double
        /// False-positive rate on the clean test rows at 95 % true-positive rate (input-space Mahalanobis).
        public var mahalanobisFPR95: Double
        /// Mahalanobis (Ledoit–Wolf) on the model's penultimate features (`featureSpace`), when it has them.
        public var featureMahalanobisAUROC: Double?
        /// FPR at 95 % TPR of the feature-space Mahalanobis score.
        public var featureMahalanobisFPR95: Double?
        /// AUROC of the analysed model's maximum softmax probability (lower: more shifted).
        public var mspAUROC: Double
        /// AUROC of the analysed model's energy score (−logsumexp of the logits).
        public var energyAUROC: Double
        /// By the ensemble's mutual information (ensembles only).
        public var mutualInformationAUROC: Double?
        /// The analysed model's errors on the set (labels only), those the OOD threshold flags, and those
        /// neither flagged nor low-confidence.
        public var errors: Int?
        /// Errors whose OOD score (the one that decides, see `featureSpace`) exceeds the attribution threshold.
        public var flaggedErrors: Int?
        /// Errors not flagged and with confidence ≥ `Options.confidenceThreshold`: the silent failures.
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
        /// The analysed model's accuracy on the source rows, in [0, 1].
        public var sourceAccuracy: Double
        /// ATC's threshold on the score.
        public var threshold: Double
        /// The weight, in [0, 1], of a score equal to `threshold`.
        public var tieWeight: Double
        /// One row per evaluated set ("clean test" first when the source is the calibration set).
        public var rows: [Row]

        /// The estimates on one set.
        public struct Row: Codable, Sendable {
            /// The set: a shifted set's name, or "clean test".
            public var shift: String
            /// Rows of the set.
            public var samples: Int
            /// The true accuracy (labelled sets only).
            public var accuracy: Double?
            /// ATC's estimate of the accuracy, in [0, 1].
            public var atc: Double
            /// DoC's estimate: source accuracy minus the drop in average confidence (may leave [0, 1]).
            public var doc: Double
            /// Mean top-class probability of the analysed model on the set.
            public var averageConfidence: Double
        }
    }

    /// OOD detection of a class the model never saw (`HeldOutClassStudy`); AUROCs in [0, 1], 1 perfect.
    public struct HeldOutClassRow: Codable, Sendable {
        /// The class left out of training.
        public var heldOutClass: Int
        /// AUROC of Mahalanobis on the inputs (fitted on the seen classes).
        public var mahalanobisAUROC: Double
        /// AUROC of the k = 10 nearest-neighbour distance to the training rows.
        public var knnAUROC: Double
        /// AUROC of the study model's maximum softmax probability.
        public var mspAUROC: Double
        /// AUROC of the study model's energy score.
        public var energyAUROC: Double
        /// (FPR, TPR) of the Mahalanobis (input-space) score, subsampled; nil in reports written before it.
        public var roc: [[Double]]? = nil

        /// A row (`roc` nil: no curve).
        public init(heldOutClass: Int, mahalanobisAUROC: Double, knnAUROC: Double, mspAUROC: Double, energyAUROC: Double,
                    roc: [[Double]]? = nil) {
            (self.heldOutClass, self.mahalanobisAUROC, self.knnAUROC, self.mspAUROC, self.energyAUROC, self.roc) =
                (heldOutClass, mahalanobisAUROC, knnAUROC, mspAUROC, energyAUROC, roc)
        }
    }

    /// Robust accuracy of the analysed model (for an ensemble: its first member) on the robustness rows
    /// at one L∞ budget; every share in [0, 1].
    public struct RobustnessRow: Codable, Sendable {
        /// The L∞ budget, in input units.
        public var epsilon: Float
        /// Accuracy under FGSM (when `Options.fgsm`): an upper bound on robust accuracy.
        public var fgsm: Double?
        /// Accuracy under PGD with `Options.pgdSteps` steps (the key keeps the default's name): an upper bound.
        public var pgd20: Double
        /// Accuracy under APGD-CE: an upper bound.
        public var apgdCE: Double
        /// Accuracy under the AutoAttack-style ensemble (when `Options.autoAttack`): an upper bound.
        public var autoAttack: Double?
        /// Share certified by CROWN (ReLU networks): a lower bound where the attacks give upper bounds.
        public var certifiedCROWN: Double?
        /// Rows certified at ε that APGD-CE broke within ε: must be empty (a soundness check).
        public var inconsistencies: [Int]?
    }

    /// What the report's plots draw (report.json holds every number shown).
    public struct Plots: Codable, Sendable {
        /// The analysed model's reliability-diagram bins on the test set (as `reliability.calibration.bins`).
        public var reliabilityBins: [CalibrationMetrics.Bin]
        /// (coverage, risk) pairs of the selective-prediction curve by top-class probability (of the
        /// analysed model), subsampled to at most 80 points; coverage in (0, 1], risk in [0, 1].
        public var riskCoverage: [[Double]]
        /// "entropy" for a single model (the analysed model's predictive entropy), "mutual information"
        /// for an ensemble (its members' mutual information); both in nats.
        public var uncertaintyMeasure: String
        /// The 21 edges of the 20 equal-width histogram bins on [0, max value], in nats.
        public var uncertaintyEdges: [Double]
        /// Test rows per bin predicted right and wrong (by the ensemble's mean for an ensemble).
        public var uncertaintyCorrect: [Int]
        /// Test rows per bin predicted wrong.
        public var uncertaintyWrong: [Int]
        /// (FPR, TPR) of the score that decides "out of distribution" per shifted set, subsampled; with
        /// the corruption sweep and shifted sets, also of the test rows under severity-1 Gaussian noise
        /// (`ROCCurve.Kind.mildShift`, named `mildShiftName`), a mild shift whose curve is rarely in the
        /// corner. An array of named curves (schema 2; schema 1 keyed the curves by display name, which
        /// still decodes).
        public var roc: [ROCCurve]

        /// The plot data (see the properties).
        public init(reliabilityBins: [CalibrationMetrics.Bin], riskCoverage: [[Double]], uncertaintyMeasure: String, uncertaintyEdges: [Double],
                    uncertaintyCorrect: [Int], uncertaintyWrong: [Int], roc: [ROCCurve]) {
            (self.reliabilityBins, self.riskCoverage, self.uncertaintyMeasure, self.uncertaintyEdges) =
                (reliabilityBins, riskCoverage, uncertaintyMeasure, uncertaintyEdges)
            (self.uncertaintyCorrect, self.uncertaintyWrong, self.roc) = (uncertaintyCorrect, uncertaintyWrong, roc)
        }

        enum CodingKeys: String, CodingKey {
            case reliabilityBins, riskCoverage, uncertaintyMeasure, uncertaintyEdges, uncertaintyCorrect, uncertaintyWrong, roc
        }

        /// Decodes schema 2, or schema 1 whose `roc` was an object keyed by display name (sorted by name;
        /// `mildShiftName` becomes the mild-shift curve).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            reliabilityBins = try c.decode([CalibrationMetrics.Bin].self, forKey: .reliabilityBins)
            riskCoverage = try c.decode([[Double]].self, forKey: .riskCoverage)
            uncertaintyMeasure = try c.decode(String.self, forKey: .uncertaintyMeasure)
            uncertaintyEdges = try c.decode([Double].self, forKey: .uncertaintyEdges)
            uncertaintyCorrect = try c.decode([Int].self, forKey: .uncertaintyCorrect)
            uncertaintyWrong = try c.decode([Int].self, forKey: .uncertaintyWrong)
            if let curves = try? c.decode([ROCCurve].self, forKey: .roc) {
                roc = curves
            } else {
                roc = try c.decode([String: [[Double]]].self, forKey: .roc).sorted { $0.key < $1.key }.map { name, points in
                    ROCCurve(kind: name == FailureReport.mildShiftName ? .mildShift : .shiftedSet, name: name, points: points)
                }
            }
        }
    }

    /// One ROC curve of the shift plot: (FPR, TPR) pairs, FPR and TPR in [0, 1], subsampled to at most
    /// 80 points, of the score that decides "out of distribution" (`featureSpace`, else the inputs'
    /// Mahalanobis) on a set against the clean test rows.
    public struct ROCCurve: Codable, Sendable, Equatable {
        /// Where the curve's rows come from.
        public enum Kind: String, Codable, Sendable, CaseIterable {
            /// A shifted set the caller gave; `name` is its name (`ShiftedSet.name`).
            case shiftedSet = "shifted-set"
            /// The test rows under severity-1 Gaussian noise that `build` adds; `name` is `mildShiftName`.
            case mildShift = "mild-shift"
        }

        /// Where the curve's rows come from.
        public var kind: Kind
        /// The set's name (data, not an identifier: any text the caller chose).
        public var name: String
        /// (FPR, TPR) pairs.
        public var points: [[Double]]

        /// A curve.
        public init(kind: Kind, name: String, points: [[Double]]) { (self.kind, self.name, self.points) = (kind, name, points) }
    }

    /// How the report was computed.
    public struct Setup: Codable, Sendable {
        /// The options of the analysis.
        public var options: Options
        /// Wall-clock seconds of `build`.
        public var seconds: Double
        /// The machine and linear-algebra backend (`SystemReport.current()`).
        public var system: SystemReport
        /// Wall-clock seconds of each stage, keyed by its name in `FailureReport.stages` (the last,
        /// "attribution", includes the failing examples and the data-quality checks).
        public var stageSeconds: [String: Double]? = nil
    }
}
