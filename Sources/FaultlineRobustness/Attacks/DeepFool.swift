import FaultlineLinalg
import FaultlineNN

/// DeepFool (Moosavi-Dezfooli et al. 2016), batched and multiclass, as the reference
/// `LTS4/DeepFool/Python/deepfool.py`: a minimal-perturbation attack, not a budgeted one.
///
/// Candidates are the `candidates` classes with the largest clean logits, k₀ = the clean prediction.
/// While a sample is still predicted k₀ (at most `maxIterations` times), with fₖ the logits at xᵢ,
/// w'ₖ = ∇fₖ − ∇f_k₀ and f'ₖ = fₖ − f_k₀ over the other candidates:
///
///     l = argminₖ |f'ₖ| / ‖w'ₖ‖₂,   rᵢ = (|f'ₗ| / ‖w'ₗ‖₂ + 1e-4) · w'ₗ / ‖w'ₗ‖₂,   r ← r + rᵢ,
///     xᵢ₊₁ = clamp(x + (1 + overshoot)·r)
///
/// (L∞: ‖·‖₁ in the denominator and rᵢ = (|f'ₗ|/‖w'ₗ‖₁ + 1e-4)·sign(w'ₗ).) One deviation from the
/// reference, as Foolbox: iterates are clamped to the box, so every example is a valid input. Cost per
/// iteration: one forward and (candidates − 1) backward passes on the samples not yet fooled.
/// Deterministic (no random draws). Samples already misclassified return the clean input.
public struct DeepFool: Sendable {
    /// L2 (the original) or L∞.
    public var norm: PerturbationNorm = .l2
    /// How many top classes of the clean logits are candidates (the prediction included).
    public var candidates: Int = 10
    /// The most linearisation steps per sample.
    public var maxIterations: Int = 50
    /// The final step is scaled by 1 + overshoot.
    public var overshoot: Float = 0.02
    /// The valid input box (one interval, or one per channel): iterates are clamped to it.
    public var box: InputBox = .unit
    /// Rows per batch (results do not depend on it).
    public var batchSize: Int = 256
    /// The GEMM backend (nil: the default).
    public var backend: Backend?

    /// DeepFool with the reference's defaults (10 candidates, 50 iterations, overshoot 0.02).
    public init(norm: PerturbationNorm = .l2, candidates: Int = 10, maxIterations: Int = 50, overshoot: Float = 0.02) {
        self.norm = norm
        self.candidates = candidates
        self.maxIterations = maxIterations
        self.overshoot = overshoot
    }

    /// Attacks every row of `x`. `successStep` is the number of iterations DeepFool needed; the
    /// perturbation size is `result.perturbationNorms(from: x, norm:)`. Throws `AttackError`.
    public func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> AttackResult {
        guard candidates >= 2, maxIterations >= 1, batchSize >= 1 else {
            throw AttackError.invalidParameter("DeepFool needs ≥ 2 candidate classes, ≥ 1 iteration and batch size ≥ 1")
        }
        guard overshoot.isFinite, overshoot >= 0 else { throw AttackError.invalidParameter("overshoot \(overshoot) must be finite and ≥ 0") }
        let bounds = try AttackInputs.check(model, x, labels: labels, targets: nil, box: box)
        let n = x.rows, batch = min(batchSize, max(n, 1))
        let context = ForwardContext(backend: backend)
        let workspace = model.makeWorkspace(capacity: batch)
        let clean = try model.logits(x, batchSize: batch, context: context)
        var adversarial = x
        var iterations = [Int?](repeating: nil, count: n)
        let cleanPredictions = try Linalg.rowArgmax(clean)
        let correct = (0..<n).map { cleanPredictions[$0] == labels[$0] }
        let attacked = (0..<n).filter { correct[$0] }
        for i in 0..<n where !correct[i] { iterations[i] = 0 }
        let k = min(candidates, model.outputFeatures)
        let state = DeepFoolBatch(capacity: batch, features: x.columns, classes: model.outputFeatures, candidates: k, bounds: bounds)
        for first in stride(from: 0, to: attacked.count, by: batch) {
            let rows = Array(attacked[first..<min(first + batch, attacked.count)])
            state.load(rows: rows, x: x, clean: clean)
            state.run(model, self, workspace: workspace, context: context)
            for slot in 0..<state.batch.count {
                let i = state.batch.origin[slot]
                state.copyOut(slot, into: &adversarial, row: i)
                iterations[i] = state.iterations[slot]
            }
            progress?(min(first + batch, attacked.count), attacked.count)
        }
        return AttackResult.evaluate(model, adversarial: adversarial, labels: labels, targets: nil, successStep: iterations,
                                     workspace: workspace, context: context)
    }
}

/// The buffers of one DeepFool batch: clean rows, iterates, accumulated perturbation r, one Jacobian
/// row difference and the best one so far, all registered in `batch` for compaction.
final class DeepFoolBatch {
    let capacity: Int, features: Int, classes: Int, candidates: Int
    let batch: BatchRows
    let clean, current, total, jacobianRow, bestDirection: AlignedBuffer<Float>
    let logitGradient: AlignedBuffer<Float>
    /// ranked[slot·candidates + r]: the class with the (r+1)-th largest clean logit.
    let ranked: RowColumn<Int>
    let bestDistance, bestNorm: RowColumn<Float>
    let iterations: RowColumn<Int?>
    /// The input box per feature.
    let bounds: BoxBounds

    init(capacity: Int, features: Int, classes: Int, candidates: Int, bounds: BoxBounds) {
        (self.capacity, self.features, self.classes, self.candidates, self.bounds) = (capacity, features, classes, candidates, bounds)
        batch = BatchRows(capacity: capacity)
        (clean, current, total) = (batch.floats(width: features), batch.floats(width: features), batch.floats(width: features))
        (jacobianRow, bestDirection) = (batch.floats(width: features), batch.floats(width: features))
        logitGradient = batch.floats(width: classes)
        ranked = batch.column(width: candidates, repeating: 0)
        (bestDistance, bestNorm) = (batch.column(repeating: 0), batch.column(repeating: 0))
        iterations = batch.column(repeating: nil)
    }

    func load(rows: [Int], x: Matrix<Float>, clean logits: Matrix<Float>) {
        batch.load(rows)
        let d = features
        x.withUnsafeBufferPointer { px in
            for (slot, i) in rows.enumerated() {
                (clean.pointer + slot * d).update(from: px.baseAddress! + i * d, count: d)
                (current.pointer + slot * d).update(from: px.baseAddress! + i * d, count: d)
                (total.pointer + slot * d).update(repeating: 0, count: d)
                let z = logits.row(i)
                let order = z.indices.sorted { z[$0] > z[$1] || (z[$0] == z[$1] && $0 < $1) }
                for r in 0..<candidates { ranked[slot * candidates + r] = order[r] }
                iterations[slot] = nil
            }
        }
    }

    func run<Model: DifferentiableClassifier>(_ model: Model, _ attack: DeepFool, workspace: Model.Workspace, context: ForwardContext) {
        let d = features, c = classes
        var live = batch.count
        for iteration in 0...attack.maxIterations where live > 0 {
            let forwarded = live
            var z = model.logits(current.pointer, rows: live, workspace: workspace, context: context)
            // Samples no longer predicted k₀ are done: move them behind the live ones.
            let compaction = batch.compact(live: live, alongside: z) { slot in
                let row = z.base + slot * z.rowStride
                var predicted = 0
                for j in 1..<c where row[j] > row[predicted] { predicted = j }
                guard predicted != ranked[slot * candidates] else { return false }
                iterations[slot] = iteration
                return true
            }
            live = compaction.live
            let moved = compaction.moved
            if live == 0 || iteration == attack.maxIterations { break }
            // The workspace holds the hidden activations of the rows in their order before compaction,
            // and the backward passes below read them: after a move, or when rows finished (a workspace's
            // backward pass takes the rows of its last forward pass), forward the live rows again so that
            // every row's gradient is its own (a row's forward pass does not depend on its batch).
            if moved || live != forwarded { z = model.logits(current.pointer, rows: live, workspace: workspace, context: context) }
            for s in 0..<live { bestDistance[s] = .infinity }
            let dz = MutableMatrixPointer(logitGradient.pointer, rows: live, columns: c)
            for r in 1..<candidates {
                for s in 0..<live {
                    let row = dz.base + s * c
                    row.update(repeating: 0, count: c)
                    row[ranked[s * candidates + r]] = 1
                    row[ranked[s * candidates]] = -1
                }
                model.inputGradient(logitGradient: dz.readOnly, workspace: workspace, context: context,
                                    into: MutableMatrixPointer(jacobianRow.pointer, rows: live, columns: d))
                for s in 0..<live {
                    let logits = z.base + s * z.rowStride
                    let gap = abs(logits[ranked[s * candidates + r]] - logits[ranked[s * candidates]])
                    let w = jacobianRow.pointer + s * d
                    var size: Float = 0
                    if attack.norm == .l2 {
                        for j in 0..<d { size += w[j] * w[j] }
                        size = size.squareRoot()
                    } else {
                        for j in 0..<d { size += abs(w[j]) }
                    }
                    let distance = gap / size
                    if distance < bestDistance[s] {
                        bestDistance[s] = distance
                        bestNorm[s] = size
                        (bestDirection.pointer + s * d).update(from: w, count: d)
                    }
                }
            }
            let lo = bounds.lo, hi = bounds.hi, scale = 1 + attack.overshoot
            for s in 0..<live {
                let w = bestDirection.pointer + s * d, r = total.pointer + s * d
                let x0 = clean.pointer + s * d, x = current.pointer + s * d
                // A zero Jacobian difference gives an infinite step: the sample cannot be moved, stop it.
                guard bestDistance[s].isFinite, bestNorm[s] > 0 else { continue }
                let step = bestDistance[s] + 1e-4
                for j in 0..<d {
                    let direction = attack.norm == .l2 ? w[j] / bestNorm[s] : Float((w[j] > 0 ? 1 : 0) - (w[j] < 0 ? 1 : 0))
                    r[j] += step * direction
                    x[j] = min(max(x0[j] + scale * r[j], lo[j]), hi[j])
                }
            }
        }
    }

    func copyOut(_ slot: Int, into matrix: inout Matrix<Float>, row i: Int) {
        current.copyRow(slot, width: features, into: &matrix, row: i)
    }
}

extension AttackResult {
    /// ‖adversarialᵢ − xᵢ‖ per row in the given norm (for minimal-perturbation attacks such as DeepFool).
    public func perturbationNorms(from x: Matrix<Float>, norm: PerturbationNorm) -> [Float] {
        (0..<x.rows).map { i in
            let delta = zip(adversarial.row(i), x.row(i)).map { $0 - $1 }
            return norm == .linf ? delta.map(abs).max() ?? 0 : delta.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
    }
}
