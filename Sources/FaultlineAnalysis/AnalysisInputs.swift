import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness

extension FailureReport {
    /// The data a report is computed on. Every matrix must have the model's input width and lie in
    /// `Options.box`; labels must be class indices of the model. `build` checks this first and throws
    /// `AnalysisError.invalidInput` naming the set.
    public struct Data: Sendable {
        /// Fits the Mahalanobis detector (a class-conditional Gaussian with a tied covariance).
        public var train: LabeledDataset
        /// The rows every section is measured on (labels required).
        public var test: LabeledDataset
        /// Held-out rows: temperature scaling, the OOD threshold and conformal calibration. Without it
        /// the OOD threshold comes from the training rows, and there is no temperature or conformal row.
        public var calibration: LabeledDataset?
        /// Shifted or out-of-distribution sets, scored against the clean test set.
        public var shifted: [ShiftedSet]
        /// Image layout for the corruption sweep; nil skips the sweep (see `ImageShape.infer`).
        public var imageShape: ImageShape?
        /// A description of the data recorded in the report.
        public var description: String?
        /// Out-of-sample (e.g. cross-validated) probabilities of the test rows for the label issues of the
        /// data section, instead of the analysed model's (FailureReport+Data.swift).
        public var labelProbabilities: Matrix<Float>? = nil

        /// The data of a report (`labelProbabilities` is set separately).
        public init(train: LabeledDataset, test: LabeledDataset, calibration: LabeledDataset? = nil, shifted: [ShiftedSet] = [],
                    imageShape: ImageShape? = nil, description: String? = nil) {
            (self.train, self.test, self.calibration, self.shifted, self.imageShape, self.description) =
                (train, test, calibration, shifted, imageShape, description)
        }
    }

    /// Named, documented settings of the analysis. The defaults are those of `faultline report`.
    public struct Options: Codable, Sendable {
        /// L∞ budgets of the robustness table (in input units).
        public var epsilons: [Float] = [0.01, 0.02, 0.05, 0.1]
        /// The valid input box (one interval, or one per channel): attacks clip to it, certificates
        /// assume it, corruptions need [0, 1].
        public var box: InputBox = .unit
        /// ε of the attack that decides whether a right prediction is fragile; nil: the smallest
        /// positive budget of `epsilons`, or 0.05 when there is none.
        public var attributionEpsilon: Float?
        /// A wrong prediction with top-class probability ≥ this is a confident error.
        public var confidenceThreshold = 0.9
        /// A row is out of distribution when its Mahalanobis score exceeds this quantile (nearest rank) of
        /// the held-out in-distribution scores (0.95: 5 % false alarms).
        public var oodQuantile = 0.95
        /// Steps of the PGD attack (step size by `AttackRecipe`'s rule 2.5·ε/steps).
        public var pgdSteps = 20
        /// Also run FGSM at each ε.
        public var fgsm = false
        /// Also run the AutoAttack-style ensemble (APGD-CE, APGD-T, Square) at each ε.
        public var autoAttack = false
        /// Square attack queries inside the AutoAttack ensemble.
        public var squareQueries = 5000
        /// Certify with CROWN when the model is a ReLU network (and check every certificate against APGD).
        public var certify = true
        /// The median minimal PGD ε by bisection (8 rounds, costs 8 attacks).
        public var minimalEpsilon = false
        /// Monte Carlo dropout passes for the dropout-agreement figure; 0 skips it.
        public var monteCarloDropoutPasses = 0
        /// Miscoverage levels of the conformal rows.
        public var conformalAlphas: [Double] = [0.02, 0.05, 0.1, 0.2, 0.3]
        /// Shrinkage of the Mahalanobis covariance towards a scaled identity; nil: Ledoit–Wolf.
        public var mahalanobisShrinkage: Double?
        /// Attacks, certificates and corruptions use the first this many test rows (all when nil). The
        /// attribution's attack always covers every test row.
        public var robustnessSamples: Int?
        /// At most this many test rows (and rows of each shifted set), drawn uniformly without replacement
        /// with `seed` (`LabeledDataset.sampleRows`) before anything else runs: the whole report on a
        /// subsample. nil: every row. The training and calibration sets are used whole.
        public var maxSamples: Int?
        /// true: OOD detection on the raw inputs only (no feature-space detector, the input-space
        /// Mahalanobis decides "out of distribution"); nil or false: on the model's penultimate features
        /// when it has them (`FailureReport.featureSpace`), the input-space detector beside it.
        public var inputSpaceOOD: Bool? = nil
        /// Sections left out (nil or empty: none): attacks (the robustness table, the minimal ε and the
        /// attribution's fragility test), certification, the corruption sweep, conformal prediction.
        /// Encoded (report.json's `setup.options.skip`) in the order of `Section.allCases`, whatever the
        /// set's order, so equal options give equal JSON.
        public var skip: Set<Section>? {
            get { skipped.map(Set.init) }
            set { skipped = newValue.map { set in Section.allCases.filter(set.contains) } }
        }
        private var skipped: [Section]?
        /// A wall-clock budget for the whole build, in seconds (nil: none). Before each expensive stage —
        /// the attacks (the robustness table with its certification, the minimal ε and the attribution's
        /// fragility test) and the corruption sweep — the build compares the time spent since it started
        /// with the budget; a stage that would start over budget is left out and `robustnessNotes` says so,
        /// with the time spent. Reliability, shift and conformal always run, and a stage that started in
        /// budget runs to its end, so the build can overrun by one stage. Must be positive and finite.
        public var timeBudget: Double?
        /// Seed of attacks, corruptions, the `maxSamples` draw and conformal tie-breaking.
        public var seed: UInt64 = 0

        enum CodingKeys: String, CodingKey {
            case epsilons, box, attributionEpsilon, confidenceThreshold, oodQuantile, pgdSteps, fgsm, autoAttack, squareQueries
            case certify, minimalEpsilon, monteCarloDropoutPasses, conformalAlphas, mahalanobisShrinkage, robustnessSamples
            case maxSamples, inputSpaceOOD, timeBudget, seed
            case skipped = "skip"
        }

        /// The sections `skip` can leave out.
        public enum Section: String, Codable, Sendable, CaseIterable {
            /// The attacks: the robustness table, the minimal ε and the attribution's fragility test.
            case attacks
            /// Certification (the certified column).
            case certify
            /// The corruption sweep.
            case corruptions
            /// Conformal prediction.
            case conformal
        }

        /// Whether `section` runs.
        public func runs(_ section: Section) -> Bool { !(skip ?? []).contains(section) && (section != .certify || certify) }

        /// The defaults of `faultline report`.
        public init() {}

        /// The recipe of every attack of the report: box, seed, PGD steps and Square queries from these
        /// options, early stopping on (a sample counts as broken at its first adversarial iterate).
        public var attackRecipe: AttackRecipe {
            AttackRecipe(box: box, seed: seed, steps: pgdSteps, squareQueries: squareQueries, earlyStop: true)
        }

        /// The attribution ε as the report uses it.
        public var resolvedAttributionEpsilon: Float { attributionEpsilon ?? epsilons.filter { $0 > 0 }.min() ?? 0.05 }
    }

    /// A named set of inputs, with labels when known.
    public struct ShiftedSet: Sendable {
        /// The set's name as the report shows it (any text; must differ between sets).
        public var name: String
        /// The rows, of the model's input width and inside `Options.box`.
        public var features: Matrix<Float>
        /// Class labels, one per row, when known (accuracy, errors, silent examples need them).
        public var labels: [Int]?

        /// A set.
        public init(name: String, features: Matrix<Float>, labels: [Int]? = nil) {
            (self.name, self.features, self.labels) = (name, features, labels)
        }

        /// `x` plus N(0, σ²) noise, clipped to `box` (Philox stream 99 of `seed`).
        public static func gaussianNoise(_ x: Matrix<Float>, sigma: Double, box: ClosedRange<Float> = 0...1, seed: UInt64,
                                         name: String? = nil, labels: [Int]? = nil) -> ShiftedSet {
            var rng = Philox(seed: seed, stream: 99)
            let noisy = x.map { min(max($0 + Float(sigma * rng.normal()), box.lowerBound), box.upperBound) }
            return ShiftedSet(name: name ?? "Gaussian noise σ = \(sigma)", features: noisy, labels: labels)
        }

        /// Every image of `x` (layout `shape`, square images) rotated by 90°.
        public static func rotated90(_ x: Matrix<Float>, shape: ImageShape, name: String = "rotated 90°", labels: [Int]? = nil) throws -> ShiftedSet {
            guard shape.height == shape.width, shape.features == x.columns else {
                throw AnalysisError.invalidInput("rotated90 needs square images of \(x.columns) features, got \(shape)")
            }
            let side = shape.height, plane = side * side
            var rotated = x
            for i in 0..<x.rows {
                for c in 0..<shape.channels {
                    for r in 0..<side { for q in 0..<side { rotated[i, c * plane + r * side + q] = x[i, c * plane + (side - 1 - q) * side + r] } }
                }
            }
            return ShiftedSet(name: name, features: rotated, labels: labels)
        }
    }
}

extension ImageShape {
    /// The layout a report assumes for a model's inputs: the model's own (`inputImageShape`, e.g. a first
    /// convolution's input) when its size is `features`, else a single square channel when the width is a
    /// square ≥ 4, else nil (no corruption sweep).
    public static func infer(model: some DifferentiableClassifier, features: Int) -> ImageShape? {
        if let shape = model.inputImageShape, shape.features == features { return shape }
        let side = Int(Double(features).squareRoot().rounded())
        return side * side == features && side >= 2 ? ImageShape(channels: 1, height: side, width: side) : nil
    }
}

/// Errors of the analysis layer: data that does not fit the model or each other.
public enum AnalysisError: Error, CustomStringConvertible, Sendable {
    /// The data or the options do not fit; the message names the set or option.
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidInput(let message): return message
        }
    }
}
