import FaultlineLinalg
import FaultlineNN

/// The perturbation norm of an attack.
public enum PerturbationNorm: String, Sendable, Codable {
    /// ‖δ‖∞ = max |δᵢ| ≤ ε (a box around x); ‖δ‖₂ ≤ ε (a ball).
    case linf, l2
}

/// FGSM, BIM, PGD (L∞ and L2) and MI-FGSM as one batched iterative gradient attack.
///
/// Step k (untargeted; targeted attacks descend the loss towards the target):
/// - L∞: x ← x + α·sign(g) (sign(0) = 0), with MI-FGSM g replaced by the momentum
///   m ← μ·m + g/‖g‖₁; L2: x ← x + α·g/(‖g‖₂ + 1e-10).
/// - then the projection of torchattacks: δ = x − x₀ clipped to the ε-ball (L∞: clamp to ±ε;
///   L2: δ·min(1, ε/‖δ‖₂)), then x = clamp(x₀ + δ) to the valid box.
/// The per-sample loss is summed over the batch, so each sample's step does not depend on the others.
/// Random start: L∞ uniform in the ε-box; L2 uniform in the ε-ball (Gaussian direction, radius
/// ε·U^(1/d)); both then clamped to the box. Every draw is Philox keyed by (seed, sample index,
/// restart), so the start does not depend on batch size. With `backend: .simd` the whole attack is
/// bit-identical for any batch size (see `ForwardContext.backend`).
public struct GradientAttack: Sendable {
    /// The ε-ball's norm: L∞ or L2.
    public var norm: PerturbationNorm = .linf
    /// The perturbation budget ε (≥ 0).
    public var epsilon: Float
    /// α, the step per iteration (L∞: per coordinate; L2: the step's norm).
    public var stepSize: Float
    /// Iterations per restart (1 with α = ε: FGSM).
    public var steps: Int
    /// Start from a random point of the ε-ball (PGD) instead of x (BIM, FGSM).
    public var randomStart: Bool = false
    /// Independent runs from new random starts; a sample broken in one run keeps that example.
    public var restarts: Int = 1
    /// The loss ascended (targeted attacks descend it towards the target).
    public var loss: Loss = .crossEntropy
    /// MI-FGSM decay μ (nil: plain PGD/BIM).
    public var momentum: Float?
    /// Stop updating a sample as soon as it is adversarial and return that first successful iterate.
    public var earlyStop: Bool = false
    /// The valid input box (one interval, or one per channel): iterates are clamped to it.
    public var box: InputBox = .unit
    /// Seed of the random starts.
    public var seed: UInt64 = 0
    /// The index of `x`'s first row in a larger data set: random starts are keyed by
    /// `sampleOffset + i`, so rows a..<b attacked with offset a get the starts they get inside the
    /// whole set (a shard of an `mpirun` job). Default 0.
    public var sampleOffset: Int = 0
    /// Explicit stream keys, one per row (nil: `sampleOffset + i`); see `SampleKeyed`.
    public var sampleKeys: [Int]?
    /// Rows per forward/backward batch (results do not depend on it).
    public var batchSize: Int = 1024
    /// The GEMM backend (nil: the default; `.simd` for batch-size-invariant results).
    public var backend: Backend?

    /// An iterative attack without a random start (BIM); see `fgsm` and `pgd` for the usual settings.
    public init(norm: PerturbationNorm = .linf, epsilon: Float, stepSize: Float, steps: Int) {
        self.norm = norm
        self.epsilon = epsilon
        self.stepSize = stepSize
        self.steps = steps
    }

    /// FGSM: one step of size ε from the clean point (L∞ unless `norm` says otherwise).
    public static func fgsm(epsilon: Float, norm: PerturbationNorm = .linf) -> GradientAttack {
        GradientAttack(norm: norm, epsilon: epsilon, stepSize: epsilon, steps: 1)
    }

    /// PGD (Madry et al.) with a random start.
    public static func pgd(epsilon: Float, stepSize: Float, steps: Int, norm: PerturbationNorm = .linf, seed: UInt64 = 0) -> GradientAttack {
        var a = GradientAttack(norm: norm, epsilon: epsilon, stepSize: stepSize, steps: steps)
        a.randomStart = true
        a.seed = seed
        return a
    }

    /// What `run` returns.
    public typealias Result = AttackResult

    /// Returns the box's per-feature bounds.
    func validate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, _ labels: [Int], _ targets: [Int]?) throws -> BoxBounds {
        try AttackInputs.checkEpsilon(epsilon)
        guard stepSize.isFinite, stepSize >= 0 else { throw AttackError.invalidParameter("step size \(stepSize) must be finite and ≥ 0") }
        guard steps >= 1, restarts >= 1, batchSize >= 1 else { throw AttackError.invalidParameter("steps, restarts and batch size must be ≥ 1") }
        return try AttackInputs.check(model, x, labels: labels, targets: targets, box: box)
    }

    /// Attacks every row of `x` (true classes `labels`; `targets` for a targeted attack). `start`
    /// gives an explicit initial perturbation δ₀ (the start is then clamp(x + δ₀), and `randomStart`
    /// is ignored for the first restart). Pass the same `workspace` to repeated calls (an ε sweep, a
    /// benchmark) to reuse its buffers. Throws `AttackError` for invalid parameters or inputs.
    public func run<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int], targets: [Int]? = nil,
                                                     start: Matrix<Float>? = nil, workspace reusable: AttackWorkspace<Model>? = nil,
                                                     progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let bounds = try validate(model, x, labels, targets)
        try checkSampleKeys(rows: x.rows)
        if let start, start.rows != x.rows || start.columns != x.columns {
            throw AttackError.invalidInput("start δ₀ is \(start.rows)×\(start.columns), x is \(x.rows)×\(x.columns)")
        }
        if targets == nil && loss == .targetedDLR { throw AttackError.invalidParameter("targeted DLR needs targets") }
        let n = x.rows
        var adversarial = x
        var success = [Bool](repeating: false, count: n)
        var successStep = [Int?](repeating: nil, count: n)
        let batch = min(batchSize, max(n, 1))
        let buffers = reusable?.fits(model, capacity: batch) == true ? reusable! : AttackWorkspace(for: model, capacity: batch)
        let workspace = buffers.model, state = buffers.state
        for restart in 0..<restarts {
            for first in stride(from: 0, to: n, by: batch) {
                // Only samples not yet broken are attacked again.
                let rows = (first..<min(first + batch, n)).filter { restart == 0 || !success[$0] }
                if rows.isEmpty { continue }
                state.load(rows: rows, x: x, start: restart == 0 ? start : nil, random: randomStart && (restart > 0 || start == nil),
                           attack: self, bounds: bounds, restart: restart)
                attackBatch(model, state, labels: labels, targets: targets, bounds: bounds, workspace: workspace)
                for k in 0..<state.batch.count {  // early stopping reorders the batch: follow the slots' origin
                    let i = state.batch.origin[k]
                    if state.success[k] || restart == 0 {
                        state.copyOut(k, into: &adversarial, row: i)
                        success[i] = state.success[k]
                        successStep[i] = state.successStep[k]
                    }
                }
                progress?(restart * n + min(first + batch, n), restarts * n)
            }
        }
        return AttackResult.evaluate(model, adversarial: adversarial, labels: labels, targets: targets, successStep: successStep,
                                     workspace: workspace, context: ForwardContext(backend: backend))
    }

    /// Runs the steps on the rows loaded in `state`. With early stopping, rows that succeed are
    /// swapped behind the live ones, so later passes run only on samples still being attacked.
    func attackBatch<Model: DifferentiableClassifier>(_ model: Model, _ state: BatchState, labels: [Int], targets: [Int]?,
                                                      bounds: BoxBounds, workspace: Model.Workspace) {
        let d = state.features, c = model.outputFeatures
        let targeted = targets != nil
        for k in 0..<state.batch.count {
            state.labels[k] = labels[state.batch.origin[k]]
            state.targets[k] = targets?[state.batch.origin[k]] ?? 0
        }
        // Targeted cross-entropy is descended towards the target; every other loss is ascended.
        let descend = targeted && loss == .crossEntropy
        let context = ForwardContext(backend: backend)
        var live = state.batch.count
        // Succeeded rows move behind the live ones, their logits with them.
        func checkSuccess(step: Int, logits z: MatrixPointer<Float>) {
            live = state.batch.compact(live: live, alongside: z) { k in
                let row = z.base + k * z.rowStride
                var predicted = 0
                for j in 1..<c where row[j] > row[predicted] { predicted = j }
                guard targeted ? predicted == state.targets[k] : predicted != state.labels[k] else { return false }
                state.success[k] = true
                state.successStep[k] = step
                return true
            }.live
        }
        let trueLabels = UnsafePointer(state.labels.pointer), tgt = UnsafePointer(state.targets.pointer)
        for step in 0..<steps where live > 0 {
            model.inputGradient(MatrixPointer(state.adversarial.pointer, rows: live, columns: d), labels: descend ? tgt : trueLabels,
                                targets: loss == .targetedDLR ? tgt : nil, loss: loss, losses: state.losses.pointer,
                                into: MutableMatrixPointer(state.gradient.pointer, rows: live, columns: d), workspace: workspace, context: context)
            if earlyStop { checkSuccess(step: step, logits: workspace.logits(rows: live)) }
            state.step(live: live, attack: self, bounds: bounds, descend: descend)
        }
        // The last iterate's success needs one more forward pass (only with early stopping).
        if earlyStop && live > 0 {
            let z = model.logits(state.adversarial.pointer, rows: live, workspace: workspace, context: context)
            checkSuccess(step: steps, logits: z)
        }
    }
}

/// The buffers of an attack (the model workspace and the batch state), reusable across `run` calls on
/// the same model architecture with batches up to `capacity` rows. Not for concurrent use.
public final class AttackWorkspace<Model: DifferentiableClassifier>: @unchecked Sendable {
    let model: Model.Workspace
    let state: BatchState
    let spec: String

    /// Buffers for batches of up to `capacity` rows of `model`.
    public init(for model: Model, capacity: Int) {
        self.model = model.makeWorkspace(capacity: capacity)
        state = BatchState(capacity: capacity, features: model.inputFeatures)
        spec = model.spec
    }

    func fits(_ model: Model, capacity: Int) -> Bool {
        model.spec == spec && capacity <= self.model.capacity
    }
}
