import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation

/// One attack, chosen by name, run over a grid of budgets: robust accuracy per ε, the time each took,
/// AutoAttack's per-stage accuracies and the adversarial examples (`faultline attack`).
///
/// Gradient and score attacks (FGSM, BIM, PGD, MI-FGSM, APGD-CE/DLR/T, Square, AutoAttack) run once per ε
/// with the settings of `recipe` (`AttackRecipe`'s step rule, restarts, early stopping, box, seed).
/// The minimal-perturbation attacks (DeepFool, CW-L2) run once and answer every ε: a sample counts as
/// robust at ε when the attack failed on it or its perturbation's norm exceeds ε·(1 + 10⁻⁶).
/// Cost: one attack per ε (once for DeepFool/CW). Errors: the attacks' `AttackError`, including a norm the
/// attack does not support (CW and DeepFool's CW are L2, Square is L∞).
public struct AttackSweep: Sendable {
    /// The attacks by their command-line names.
    public enum Kind: String, CaseIterable, Sendable {
        /// FGSM, BIM, PGD, MI-FGSM, APGD-CE, APGD-DLR, APGD-T, Square, the AutoAttack-style ensemble, DeepFool, Carlini–Wagner L2.
        case fgsm, bim, pgd, mifgsm, apgdCE = "apgd-ce", apgdDLR = "apgd-dlr", apgdT = "apgd-t", square, autoattack, deepfool, cw
        /// DeepFool and CW: one run answers every ε.
        public var isMinimalPerturbation: Bool { self == .deepfool || self == .cw }
    }
    /// AutoAttack only: robust accuracy after each of its attacks.
    public struct Stage: Codable, Sendable {
        /// The attack's name (`apgd-ce`, `apgd-t`, `square`).
        public var attack: String
        /// Robust accuracy after it (and every attack before it).
        public var robustAccuracy: Double
        /// A stage from its values (e.g. counts summed over the ranks of an `mpirun` job).
        public init(attack: String, robustAccuracy: Double) { (self.attack, self.robustAccuracy) = (attack, robustAccuracy) }
    }
    /// The result at one budget.
    public struct Row: Codable, Sendable {
        /// The budget ε.
        public var epsilon: Float
        /// The share of samples still correctly classified at their returned example.
        public var robustAccuracy: Double
        /// Wall time of this ε's attack (of the single run for DeepFool/CW).
        public var seconds: Double
        /// Samples misclassified before any perturbation.
        public var brokenAtStart: Int
        /// AutoAttack's accuracy after each of its attacks (nil for the other attacks).
        public var stages: [Stage]?
        /// A row from its values (e.g. counts summed over the ranks of an `mpirun` job).
        public init(epsilon: Float, robustAccuracy: Double, seconds: Double, brokenAtStart: Int, stages: [Stage]? = nil) {
            (self.epsilon, self.robustAccuracy, self.seconds, self.brokenAtStart, self.stages) = (epsilon, robustAccuracy, seconds, brokenAtStart, stages)
        }
    }
    /// Rows in the order of the budgets, the adversarial examples (`eps_<ε>` per budget, or one array named
    /// after DeepFool/CW) and AutoAttack's warnings (e.g. signs of gradient masking).
    public struct Result: Sendable {
        /// One row per budget, in the order given.
        public var rows: [Row]
        /// The adversarial examples as named arrays.
        public var examples: [(name: String, tensor: Tensor)]
        /// AutoAttack's warnings about the evaluation (empty for the other attacks).
        public var warnings: [String]
    }

    /// The attack.
    public var kind: Kind
    /// The shared settings it is built from.
    public var recipe: AttackRecipe
    /// The index of the input's first row in a larger data set: every random draw of row i is keyed by
    /// `sampleOffset + i` (`SampleKeyed`), so a shard of an `mpirun` job gets, row for row, the outcomes
    /// of the whole set. DeepFool, CW, FGSM, BIM and MI-FGSM draw nothing at random.
    public var sampleOffset: Int = 0
    /// A sweep of `kind` with `recipe`'s settings.
    public init(_ kind: Kind, recipe: AttackRecipe) { (self.kind, self.recipe) = (kind, recipe) }

    /// Runs the sweep over `epsilons` (in the given order). `progress(done, total, ε)` counts sample-budgets:
    /// total = epsilons.count · rows.
    public func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float],
                    progress: ((Int, Int, Float?) -> Void)? = nil) throws -> Result {
        let n = x.rows, total = epsilons.count * x.rows
        var result = Result(rows: [], examples: [], warnings: [])
        if kind.isMinimalPerturbation {
            let start = Date()
            let update: (Int, Int) -> Void = { done, all in progress?(done * total / max(all, 1), total, nil) }
            let attack: AttackResult
            if kind == .cw {
                guard recipe.norm == .l2 else { throw AttackError.invalidParameter("cw is an L2 attack; use the l2 norm") }
                var cw = CarliniWagnerL2(steps: recipe.steps)
                (cw.box, cw.backend) = (recipe.box, recipe.backend)
                attack = try cw.run(model, x, labels: labels, progress: update)
            } else {
                var deepFool = DeepFool(norm: recipe.norm)
                (deepFool.box, deepFool.backend) = (recipe.box, recipe.backend)
                attack = try deepFool.run(model, x, labels: labels, progress: update)
            }
            let sizes = attack.perturbationNorms(from: x, norm: recipe.norm), seconds = Date().timeIntervalSince(start)
            let broken = attack.successStep.filter { $0 == 0 }.count
            for e in epsilons {
                let robust = (0..<n).filter { attack.margin[$0] > 0 || (attack.successStep[$0] != 0 && sizes[$0] > e * (1 + 1e-6)) }.count
                result.rows.append(Row(epsilon: e, robustAccuracy: Double(robust) / Double(max(n, 1)), seconds: seconds, brokenAtStart: broken))
            }
            result.examples.append((kind.rawValue, Tensor(attack.adversarial)))
            return result
        }
        for (k, e) in epsilons.enumerated() {
            let start = Date()
            let update: (Int, Int) -> Void = { done, all in progress?(k * n + done * n / max(all, 1), total, e) }
            let (attack, stages) = try run(model, x, labels: labels, epsilon: e, progress: update, warnings: &result.warnings)
            result.rows.append(Row(epsilon: e, robustAccuracy: attack.robustAccuracy, seconds: Date().timeIntervalSince(start),
                                   brokenAtStart: attack.successStep.filter { $0 == 0 }.count, stages: stages))
            result.examples.append(("eps_\(e)", Tensor(attack.adversarial)))
        }
        return result
    }

    private func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilon e: Float,
                     progress: @escaping (Int, Int) -> Void, warnings: inout [String]) throws -> (AttackResult, [Stage]?) {
        switch kind {
        case .apgdCE, .apgdDLR, .apgdT:
            var attack = recipe.apgd(epsilon: e, objective: kind == .apgdCE ? .crossEntropy : .dlr,
                                     targetClasses: kind == .apgdT ? min(9, model.outputFeatures - 1) : nil)
            attack.sampleOffset = sampleOffset
            return (try attack.run(model, x, labels: labels, progress: progress), nil)
        case .square:
            guard recipe.norm == .linf else { throw AttackError.invalidParameter("square is an L∞ attack; use the linf norm") }
            var attack = recipe.square(epsilon: e)
            attack.restarts = 1  // restarts are documented for PGD and APGD only
            attack.sampleOffset = sampleOffset
            return (try attack.run(model, x, labels: labels, progress: progress), nil)
        case .autoattack:
            // AutoAttack keeps its reference protocol: one restart, no early stopping.
            var options = recipe
            (options.restarts, options.earlyStop) = (1, false)
            var ensemble = AutoAttack.standard(epsilon: e, classes: model.outputFeatures, options: options)
            ensemble.sampleOffset = sampleOffset
            let report = try ensemble.run(model, x, labels: labels) { stage, done, total in
                progress(stage * total + done, ensemble.attacks.count * total)
            }
            warnings += report.warnings
            return (report.result, report.robustAccuracyAfter.map { Stage(attack: $0.attack, robustAccuracy: $0.accuracy) })
        case .fgsm: return (try recipe.fgsm(epsilon: e).run(model, x, labels: labels, progress: progress), nil)
        case .bim: return (try recipe.bim(epsilon: e).run(model, x, labels: labels, progress: progress), nil)
        case .mifgsm: return (try recipe.miFGSM(epsilon: e).run(model, x, labels: labels, progress: progress), nil)
        case .pgd, .deepfool, .cw:
            var attack = recipe.pgd(epsilon: e)
            attack.sampleOffset = sampleOffset
            return (try attack.run(model, x, labels: labels, progress: progress), nil)
        }
    }
}

/// The identity "attack": returns the clean inputs (robust accuracy = clean accuracy). Used when an
/// upper bound by attack is switched off, e.g. `TwoSidedEvaluation` with `certify --steps 0`.
public struct NoAttack: Attack {
    /// The identity attack.
    public init() {}
    public var name: String { "none" }
    public func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                        progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try GradientAttack(epsilon: 0, stepSize: 0, steps: 1).run(model, x, labels: labels)
    }
}
