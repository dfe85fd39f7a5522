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
    /// The same attack with row i of its input keyed by `keys[i]` (see `SampleKeyed`); attacks that draw
    /// nothing at random return themselves. `AutoAttack` keys the subsets it attacks by their rows' indices
    /// in its own input, so a row's outcome does not depend on which other rows are still robust.
    func keyed(by keys: [Int]) -> any Attack
}

extension Attack {
    public var usesGradients: Bool { true }
    public func keyed(by keys: [Int]) -> any Attack { self }
}

/// An attack whose random draws for row i of its input (random starts, Square's proposals) come from
/// a Philox stream keyed by `key(i)`: `sampleKeys[i]` when given, else `sampleOffset + i`. Rows a..<b of
/// a larger set attacked with offset a (a shard of an `mpirun` job), or any subset attacked with its
/// rows' indices as keys, then get exactly the draws, and so the outcome, they get in the whole set.
public protocol SampleKeyed {
    /// The index of the input's first row in a larger data set (default 0).
    var sampleOffset: Int { get set }
    /// Explicit keys, one per input row (nil: `sampleOffset + i`).
    var sampleKeys: [Int]? { get set }
}

extension SampleKeyed {
    /// The stream key of row i.
    @inline(__always)
    public func key(_ i: Int) -> Int { sampleKeys.map { $0[i] } ?? sampleOffset &+ i }

    /// Throws unless `sampleKeys` is nil or has one key per row.
    func checkSampleKeys(rows: Int) throws {
        if let keys = sampleKeys, keys.count != rows {
            throw AttackError.invalidParameter("sampleKeys has \(keys.count) keys for \(rows) rows; give one key per row, or none")
        }
    }
}

extension Attack where Self: SampleKeyed {
    public func keyed(by keys: [Int]) -> any Attack {
        var keyed = self
        keyed.sampleKeys = keys
        return keyed
    }
}

extension GradientAttack: SampleKeyed {}
extension APGDAttack: SampleKeyed {}
extension SquareAttack: SampleKeyed {}

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
