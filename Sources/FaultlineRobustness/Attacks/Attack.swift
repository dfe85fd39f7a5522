import FaultlineLinalg
import FaultlineNN

/// An adversarial attack on any `DifferentiableClassifier`: what `AutoAttack`, `RobustnessCurve` and
/// `TwoSidedEvaluation` run. Success is untargeted misclassification at the returned example.
///
/// To add an attack: a `Sendable` struct of its settings with a generic `run(_:_:labels:…)`, a batch
/// state whose per-row buffers are allocated from one `BatchRows` (so early stopping compacts all of
/// them), results through `AttackResult.evaluate`, and this conformance.
public protocol Attack: Sendable {
    /// Short name for reports ("apgd-ce", "square", …).
    var name: String { get }
    /// Whether the attack follows the model's gradients (false: a score-based black-box attack, whose
    /// success where gradient attacks failed signals masked gradients).
    var usesGradients: Bool { get }
    /// Attacks every row of `x` (true classes `labels`); `progress(done, total)` as the attack counts.
    /// Throws `AttackError` for invalid parameters or inputs.
    func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                 progress: ((Int, Int) -> Void)?) throws -> AttackResult
}

extension Attack {
    public var usesGradients: Bool { true }
}

/// The former name of `Attack`.
public typealias EnsembleAttack = Attack

extension GradientAttack: Attack {
    public var name: String { steps == 1 ? "fgsm" : (momentum == nil ? "pgd" : "mi-fgsm") }
    public func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                        progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try run(model, x, labels: labels, progress: progress)
    }
}

extension APGDAttack: Attack {
    public var name: String {
        let loss = objective == .crossEntropy ? "ce" : "dlr"
        return targetClasses == nil ? "apgd-\(loss)" : "apgd-t-\(loss)"
    }
    public func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                        progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try run(model, x, labels: labels, progress: progress)
    }
}

extension SquareAttack: Attack {
    public var name: String { "square" }
    public var usesGradients: Bool { false }
    public func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                        progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try run(model, x, labels: labels, progress: progress)
    }
}

extension DeepFool: Attack {
    public var name: String { "deepfool-\(norm.rawValue)" }
    public func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                        progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try run(model, x, labels: labels, progress: progress)
    }
}

extension CarliniWagnerL2: Attack {
    public var name: String { "cw-l2" }
    public func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                        progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try run(model, x, labels: labels, progress: progress)
    }
}
