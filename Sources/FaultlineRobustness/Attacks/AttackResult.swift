import FaultlineLinalg
import FaultlineNN

/// The per-sample outcome of an attack, measured at the returned examples.
public struct AttackResult: Sendable {
    /// The returned examples (the clean row for samples the attack did not break, unless the attack
    /// documents otherwise).
    public var adversarial: Matrix<Float>
    /// Whether the returned example is misclassified (untargeted) or classified as the target (targeted).
    public var success: [Bool]
    /// Gradient steps (or queries, for score-based attacks) taken when success was first seen
    /// (nil: never; 0: the start was already adversarial).
    public var successStep: [Int?]
    /// logit_true − max_{j≠true} logit_j at the returned example (negative: misclassified).
    public var margin: [Float]
    /// Share of samples correctly classified at their returned example.
    public var robustAccuracy: Double { Double(margin.filter { $0 > 0 }.count) / Double(max(margin.count, 1)) }

    /// A result as an attack assembles it (`evaluate` computes success and margins from a final pass).
    public init(adversarial: Matrix<Float>, success: [Bool], successStep: [Int?], margin: [Float]) {
        self.adversarial = adversarial
        self.success = success
        self.successStep = successStep
        self.margin = margin
    }

    /// Evaluates `adversarial` once more in `workspace` (batches of its capacity): the margin of the true
    /// class and success (misclassified, or predicted == target when `targets` is given). Success is
    /// always what this final pass says, so every attack reports it the same way.
    static func evaluate<Model: DifferentiableClassifier>(_ model: Model, adversarial: Matrix<Float>, labels: [Int], targets: [Int]?,
                                                          successStep: [Int?], workspace: Model.Workspace,
                                                          context: ForwardContext) -> AttackResult {
        let n = adversarial.rows, d = adversarial.columns, c = model.outputFeatures, batch = workspace.capacity
        var margin = [Float](repeating: 0, count: n)
        var success = [Bool](repeating: false, count: n)
        adversarial.withUnsafeBufferPointer { pa in
            for first in stride(from: 0, to: n, by: batch) {
                let rows = min(batch, n - first)
                let z = model.logits(pa.baseAddress! + first * d, rows: rows, workspace: workspace, context: context)
                for r in 0..<rows {
                    let i = first + r, row = z.base + r * z.rowStride
                    var best = -Float.infinity, predicted = 0
                    for j in 0..<c {
                        if j != labels[i] { best = max(best, row[j]) }
                        if row[j] > row[predicted] { predicted = j }
                    }
                    margin[i] = row[labels[i]] - best
                    success[i] = targets.map { predicted == $0[i] } ?? (predicted != labels[i])
                }
            }
        }
        var steps = successStep
        for i in 0..<n where !success[i] { steps[i] = nil }
        return AttackResult(adversarial: adversarial, success: success, successStep: steps, margin: margin)
    }
}
