import FaultlineLinalg
import FaultlineNN
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Adversarial and noise training: a `BatchAugmentation` for `train` (of a `Sequential` or a `GraphModel`) that replaces each
/// training batch by perturbed copies computed with the model's current weights.
///
/// - `.pgd` — PGD-AT (Madry et al. 2018): L∞ PGD on the cross-entropy, `steps` steps of size
///   `stepSize` from a uniform random start in the ε-ball; the batch becomes the last iterate.
/// - `.fast` — fast adversarial training (Wong et al. 2020): one FGSM step of size `stepSize`
///   (1.25 ε in the paper) from a uniform random start, projected onto the ε-ball.
/// - `.gaussianNoise` — x + N(0, σ²) per feature (Cohen et al. 2019), the training of a base classifier
///   for randomized smoothing.
/// Every iterate is clamped to `box`. The step is PGD's kernel (`BatchState.linfStep`: torch's sign, the
/// order of operations torchattacks uses) on the model's input gradients in inference mode (no
/// dropout), so one PGD-AT step equals `GradientAttack.pgd` run on the batch from the same start.
///
/// ε may ramp up: with `rampEpochs` = R > 0, epoch e uses ε·min(1, (e + 1)/R) (and the step size scaled
/// alike). Random draws are Philox keyed by (`seed`, optimisation step, row): training stays
/// deterministic. Buffers (clean rows, gradients, the model workspace, per-feature box bounds) are
/// allocated on the first batch and reused: later steps allocate nothing. Cost per batch: `steps`
/// forward + input-gradient passes (PGD), one (fast), none (noise).
public final class AdversarialTraining: BatchAugmentation, @unchecked Sendable {
    /// How each batch is perturbed.
    public enum Method: Sendable, Equatable {
        /// PGD-AT: `steps` PGD steps of `stepSize` from a random start.
        case pgd(steps: Int, stepSize: Float)
        /// Fast AT: one FGSM step of `stepSize` from a random start.
        case fast(stepSize: Float)
        /// Gaussian noise of deviation σ (no attack).
        case gaussianNoise(sigma: Float)
    }

    /// The perturbation.
    public let method: Method
    /// The L∞ budget ε (after the ramp).
    public let epsilon: Float
    /// The valid input box: every iterate is clamped to it.
    public let box: InputBox
    /// Epochs over which ε ramps up linearly (0: none).
    public let rampEpochs: Int
    /// Seed of the random starts and the noise.
    public let seed: UInt64

    private let lock = NSLock()
    private var capacity = 0, features = 0, spec = ""
    private var clean = AlignedBuffer<Float>(uninitializedCount: 0), gradient = AlignedBuffer<Float>(uninitializedCount: 0)
    private var losses = AlignedBuffer<Float>(uninitializedCount: 0)
    private var workspace: AnyObject?  // the model type's workspace, reused while the architecture stays
    private var bounds: BoxBounds?

    /// Throws `AttackError.invalidParameter` for ε not finite and ≥ 0 (> 0 for the attacks), steps < 1,
    /// a step size or σ not finite and > 0, a negative ramp, or a box that is not finite.
    public init(_ method: Method, epsilon: Float = 0, box: InputBox = .unit, rampEpochs: Int = 0, seed: UInt64 = 0) throws {
        switch method {
        case .pgd(let steps, let stepSize):
            guard steps >= 1, steps <= 10_000 else { throw AttackError.invalidParameter("PGD-AT needs 1…10000 steps, got \(steps)") }
            guard stepSize.isFinite, stepSize > 0 else { throw AttackError.invalidParameter("the PGD-AT step size must be finite and > 0, got \(stepSize)") }
            guard epsilon.isFinite, epsilon > 0 else { throw AttackError.invalidParameter("adversarial training needs a finite ε > 0, got \(epsilon)") }
        case .fast(let stepSize):
            guard stepSize.isFinite, stepSize > 0 else { throw AttackError.invalidParameter("the FGSM step size must be finite and > 0, got \(stepSize)") }
            guard epsilon.isFinite, epsilon > 0 else { throw AttackError.invalidParameter("adversarial training needs a finite ε > 0, got \(epsilon)") }
        case .gaussianNoise(let sigma):
            guard sigma.isFinite, sigma > 0 else { throw AttackError.invalidParameter("the noise σ must be finite and > 0, got \(sigma)") }
        }
        guard rampEpochs >= 0 else { throw AttackError.invalidParameter("the ε ramp must be ≥ 0 epochs, got \(rampEpochs)") }
        guard box.isFinite else { throw AttackError.invalidParameter("the input box must be finite, got \(box)") }
        (self.method, self.epsilon, self.box, self.rampEpochs, self.seed) = (method, epsilon, box, rampEpochs, seed)
    }

    /// PGD-AT with the usual step rule: `steps` steps of 2.5·ε/steps.
    public static func pgd(epsilon: Float, steps: Int = 10, stepSize: Float? = nil, box: InputBox = .unit, rampEpochs: Int = 0,
                           seed: UInt64 = 0) throws -> AdversarialTraining {
        try AdversarialTraining(.pgd(steps: steps, stepSize: stepSize ?? 2.5 * epsilon / Float(max(steps, 1))), epsilon: epsilon, box: box,
                                rampEpochs: rampEpochs, seed: seed)
    }

    /// Fast AT with the paper's step of 1.25·ε.
    public static func fast(epsilon: Float, stepSize: Float? = nil, box: InputBox = .unit, rampEpochs: Int = 0, seed: UInt64 = 0) throws -> AdversarialTraining {
        try AdversarialTraining(.fast(stepSize: stepSize ?? 1.25 * epsilon), epsilon: epsilon, box: box, rampEpochs: rampEpochs, seed: seed)
    }

    /// The ε of `epoch` (the ramp's value, then `epsilon`).
    public func epsilon(atEpoch epoch: Int) -> Float {
        rampEpochs > 0 ? epsilon * min(1, Float(epoch + 1) / Float(rampEpochs)) : epsilon
    }

    public func augment<Model: TrainableClassifier>(_ model: Model, rows x: MutableMatrixPointer<Float>, labels: UnsafePointer<Int>, step: UInt64,
                                                    epoch: Int) throws {
        lock.lock()
        defer { lock.unlock() }
        let n = x.rows, d = x.columns
        guard n > 0 else { return }
        let workspace = try prepare(model, rows: n, features: d)
        let (lo, hi) = (bounds!.lo, bounds!.hi)
        let scale = epsilon > 0 ? epsilon(atEpoch: epoch) / epsilon : 1
        let eps = epsilon * scale
        for r in 0..<n { (clean.pointer + r * d).update(from: x.base + r * x.rowStride, count: d) }
        // Row r of the batch draws from its own stream: (step, r).
        func stream(_ r: Int) -> Philox { Philox(seed: seed, stream: step << 24 | UInt64(r)) }
        switch method {
        case .gaussianNoise(let sigma):
            for r in 0..<n {
                var rng = stream(r)
                let a = x.base + r * x.rowStride, c = clean.pointer + r * d
                for j in 0..<d { a[j] = min(max(c[j] + Float(Double(sigma) * rng.normal()), lo[j]), hi[j]) }
            }
        case .pgd(let steps, let stepSize):
            randomStart(x, epsilon: eps, stream: stream, lo: lo, hi: hi)
            for _ in 0..<steps { ascend(model, workspace, x, alpha: stepSize * scale, epsilon: eps, labels: labels, lo: lo, hi: hi) }
        case .fast(let stepSize):
            randomStart(x, epsilon: eps, stream: stream, lo: lo, hi: hi)
            ascend(model, workspace, x, alpha: stepSize * scale, epsilon: eps, labels: labels, lo: lo, hi: hi)
        }
    }

    /// (Re)allocates the buffers when the batch outgrows them or the architecture changes.
    private func prepare<Model: TrainableClassifier>(_ model: Model, rows: Int, features d: Int) throws -> Model.Workspace {
        if bounds == nil || features != d || spec != model.spec { bounds = try BoxBounds(box, for: model) }
        if !(workspace is Model.Workspace) || rows > capacity || features != d || spec != model.spec {
            capacity = max(rows, capacity)
            workspace = model.makeWorkspace(capacity: capacity)
            (clean, gradient) = (AlignedBuffer(uninitializedCount: capacity * d), AlignedBuffer(uninitializedCount: capacity * d))
            losses = AlignedBuffer(uninitializedCount: capacity)
        }
        (features, spec) = (d, model.spec)
        return workspace as! Model.Workspace  // made above for this model type
    }

    /// x ← clamp(clean + U(−ε, ε)) per feature (PGD's random start).
    private func randomStart(_ x: MutableMatrixPointer<Float>, epsilon eps: Float, stream: (Int) -> Philox,
                             lo: UnsafePointer<Float>, hi: UnsafePointer<Float>) {
        let d = x.columns
        for r in 0..<x.rows {
            var rng = stream(r)
            let a = x.base + r * x.rowStride, c = clean.pointer + r * d
            for j in 0..<d { a[j] = min(max(c[j] + Float(Double(eps) * (2 * rng.uniform() - 1)), lo[j]), hi[j]) }
        }
    }

    /// One PGD step on every row: the cross-entropy input gradient at x, then x ← clamp(clean +
    /// clamp(x + α·sign(g) − clean, ±ε), box).
    private func ascend<Model: TrainableClassifier>(_ model: Model, _ workspace: Model.Workspace, _ x: MutableMatrixPointer<Float>, alpha: Float, epsilon eps: Float, labels: UnsafePointer<Int>,
                        lo: UnsafePointer<Float>, hi: UnsafePointer<Float>) {
        let n = x.rows, d = x.columns
        model.inputGradient(MatrixPointer(UnsafePointer(x.base), rows: n, columns: d, rowStride: x.rowStride), labels: labels, targets: nil,
                            loss: .crossEntropy, losses: losses.pointer, into: MutableMatrixPointer(gradient.pointer, rows: n, columns: d),
                            workspace: workspace, context: .inference)
        for r in 0..<n {
            BatchState.linfStep(x.base + r * x.rowStride, gradient.pointer + r * d, clean.pointer + r * d, d, alpha: alpha, epsilon: eps, lo: lo, hi: hi)
        }
    }
}
