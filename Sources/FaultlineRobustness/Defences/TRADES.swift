import FaultlineLinalg
import FaultlineNN
import Foundation

/// TRADES (Zhang et al. 2019) as a `TrainingObjective`: the batch mean of
///
///     CE(f(x), y) + β · KL(softmax f(x) ‖ softmax f(x′)),
///
/// where x′ approximately maximises the KL term in the L∞ ε-ball: x′₀ = x + 0.001·N(0, I), then `steps`
/// sign steps of size `stepSize` on the KL with softmax f(x) held fixed, each projected onto the ball
/// and the box (PGD's step kernel), with the model in inference mode — the reference implementation's
/// `trades_loss`. The outer gradient flows through both f(x) and f(x′) (neither side detached, as in
/// the reference): with p = softmax f(x), p′ = softmax f(x′), a = log p − log p′ and KLᵢ = Σ p a,
/// d/dz = (p − onehot(y))/n + β·p ⊙ (a − KLᵢ)/n and d/dz′ = β·(p′ − p)/n.
///
/// Cost per batch: `steps` + 1 forward and `steps` input-gradient passes for x′, then three forward and
/// two backward passes for the loss. Buffers are allocated on the first batch and reused. Draws are
/// Philox keyed by (`seed`, optimisation step, row).
public final class TRADES: TrainingObjective, @unchecked Sendable {
    /// β, the weight of the KL term.
    public let beta: Float
    /// The L∞ budget ε of x′.
    public let epsilon: Float
    /// Sign steps that maximise the KL term.
    public let steps: Int
    /// The size of each step.
    public let stepSize: Float
    /// The valid input box.
    public let box: InputBox
    /// Seed of the start x′₀.
    public let seed: UInt64

    private let lock = NSLock()
    private var capacity = 0, spec = ""
    private var clean = AlignedBuffer<Float>(uninitializedCount: 0), adversarial = AlignedBuffer<Float>(uninitializedCount: 0)
    private var gradient = AlignedBuffer<Float>(uninitializedCount: 0)
    private var p = AlignedBuffer<Float>(uninitializedCount: 0), logP = AlignedBuffer<Float>(uninitializedCount: 0)
    private var logPAdv = AlignedBuffer<Float>(uninitializedCount: 0), kl = AlignedBuffer<Float>(uninitializedCount: 0)
    private var attackWorkspace: AnyObject?  // the model type's workspace for the inner maximisation
    private var bounds: BoxBounds?

    /// Throws `AttackError.invalidParameter` unless β and ε are finite and ≥ 0, steps in 0…10000 and the
    /// step size finite and ≥ 0. The step size defaults to 2.5·ε/steps (the paper's CIFAR-10 setting is
    /// ε = 8/255, 10 steps of 2/255, β = 6; MNIST ε = 0.3, 40 steps of 0.01, β = 1).
    public init(beta: Float = 6, epsilon: Float, steps: Int = 10, stepSize: Float? = nil, box: InputBox = .unit, seed: UInt64 = 0) throws {
        guard beta.isFinite, beta >= 0 else { throw AttackError.invalidParameter("TRADES β must be finite and ≥ 0, got \(beta)") }
        guard epsilon.isFinite, epsilon >= 0 else { throw AttackError.invalidParameter("TRADES ε must be finite and ≥ 0, got \(epsilon)") }
        guard steps >= 0, steps <= 10_000 else { throw AttackError.invalidParameter("TRADES needs 0…10000 inner steps, got \(steps)") }
        let alpha = stepSize ?? 2.5 * epsilon / Float(max(steps, 1))
        guard alpha.isFinite, alpha >= 0 else { throw AttackError.invalidParameter("the TRADES step size must be finite and ≥ 0, got \(alpha)") }
        guard box.isFinite else { throw AttackError.invalidParameter("the input box must be finite, got \(box)") }
        (self.beta, self.epsilon, self.steps, self.stepSize, self.box, self.seed) = (beta, epsilon, steps, alpha, box, seed)
    }

    /// Row-wise softmax and log-softmax of `z` (n × c) into `prob` and `logProb`.
    static func softmax(_ z: MatrixPointer<Float>, prob: UnsafeMutablePointer<Float>?, logProb: UnsafeMutablePointer<Float>) {
        let c = z.columns
        for i in 0..<z.rows {
            let row = z.base + i * z.rowStride
            var top = row[0]
            for j in 1..<c { top = max(top, row[j]) }
            var sum = 0.0
            for j in 0..<c { sum += exp(Double(row[j] - top)) }
            let logSum = log(sum)
            for j in 0..<c {
                let lp = Double(row[j] - top) - logSum
                logProb[i * c + j] = Float(lp)
                prob?[i * c + j] = Float(exp(lp))
            }
        }
    }

    /// Finds x′ for the batch, adds the gradient of the batch-mean TRADES loss into `gradients` and returns the loss.
    public func accumulate<Model: TrainableClassifier>(_ model: Model, rows x: MatrixPointer<Float>, labels: UnsafePointer<Int>,
                                                       into gradients: inout [Matrix<Float>], workspace: Model.Workspace, context: ForwardContext,
                                                       step: UInt64, epoch: Int) throws -> Double {
        lock.lock()
        defer { lock.unlock() }
        let n = x.rows, d = x.columns
        guard n > 0 else { return 0 }
        let ws = try prepare(model, rows: n, features: d, classes: model.outputFeatures)
        let (lo, hi) = (bounds!.lo, bounds!.hi)
        for r in 0..<n { (clean.pointer + r * d).update(from: x.base + r * x.rowStride, count: d) }
        for r in 0..<n {
            var rng = Philox(seed: seed, stream: step << 24 | UInt64(r))
            let a = adversarial.pointer + r * d, x0 = clean.pointer + r * d
            for j in 0..<d { a[j] = min(max(x0[j] + Float(0.001 * rng.normal()), lo[j]), hi[j]) }
        }
        maximizeInPlace(model, ws, rows: n, features: d)
        return lossInPlace(model, rows: n, features: d, labels: labels, into: &gradients, workspace: workspace, context: context)
    }

    /// The inner maximisation alone, from a given start: `steps` sign steps of `stepSize` on
    /// KL(softmax f(x) ‖ softmax f(x′)) from x′ = `start` (clamped to the box), each projected onto the
    /// ε-ball around `x` and the box, in inference mode. Returns x′ (n × d). `accumulate` starts from
    /// x + 0.001·N(0, I); this entry point lets a caller (or a test against the reference) fix the start.
    /// Throws `ModelError` when `x` does not fit the model or `start` differs from it in shape.
    public func maximize<Model: TrainableClassifier>(_ model: Model, _ x: Matrix<Float>, start: Matrix<Float>) throws -> Matrix<Float> {
        try model.checkInput(x, "TRADES rows")
        guard start.rows == x.rows, start.columns == x.columns else {
            throw ModelError.shapeMismatch("TRADES start is \(start.rows)×\(start.columns), the rows are \(x.rows)×\(x.columns)")
        }
        lock.lock()
        defer { lock.unlock() }
        let n = x.rows, d = x.columns
        guard n > 0 else { return x }
        let ws = try load(model, x, start)
        maximizeInPlace(model, ws, rows: n, features: d)
        var result = Matrix<Float>(uninitializedRows: n, columns: d)
        result.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: adversarial.pointer, count: n * d) }
        return result
    }

    /// The TRADES batch loss at a given adversarial point: (1/n) Σ CE(f(x), y) + β·KL(softmax f(x) ‖
    /// softmax f(x′)), with its parameter gradient (through both f(x) and f(x′)) added into `gradients`
    /// (namedParameters order). `adversarial` is used as given (no projection). Throws `ModelError` for
    /// rows that do not fit the model, shapes that differ or labels out of range.
    public func loss<Model: TrainableClassifier>(_ model: Model, _ x: Matrix<Float>, adversarial start: Matrix<Float>, labels: [Int], into gradients: inout [Matrix<Float>],
                     context: ForwardContext = ForwardContext(training: true)) throws -> Double {
        try model.checkInput(x, "TRADES rows")
        try model.checkLabels(labels, rows: x.rows, loss: .crossEntropy, targets: nil)
        guard start.rows == x.rows, start.columns == x.columns else {
            throw ModelError.shapeMismatch("TRADES adversarial rows are \(start.rows)×\(start.columns), the rows are \(x.rows)×\(x.columns)")
        }
        lock.lock()
        defer { lock.unlock() }
        let n = x.rows, d = x.columns
        guard n > 0 else { return 0 }
        _ = try load(model, x, start, clampStart: false)
        let workspace = model.makeWorkspace(capacity: n)
        return labels.withUnsafeBufferPointer {
            lossInPlace(model, rows: n, features: d, labels: $0.baseAddress!, into: &gradients, workspace: workspace, context: context)
        }
    }

    /// Copies `x` into the clean buffer and `start` (clamped to the box unless told not to) into the adversarial one.
    private func load<Model: TrainableClassifier>(_ model: Model, _ x: Matrix<Float>, _ start: Matrix<Float>,
                                                  clampStart: Bool = true) throws -> Model.Workspace {
        let n = x.rows, d = x.columns
        let ws = try prepare(model, rows: n, features: d, classes: model.outputFeatures)
        let (lo, hi) = (bounds!.lo, bounds!.hi)
        x.withUnsafeBufferPointer { clean.pointer.update(from: $0.baseAddress!, count: n * d) }
        start.withUnsafeBufferPointer { src in
            for k in 0..<(n * d) { adversarial.pointer[k] = clampStart ? min(max(src[k], lo[k % d]), hi[k % d]) : src[k] }
        }
        return ws
    }

    /// The inner maximisation on the buffers (clean rows, start in `adversarial`), in inference mode:
    /// p fixed at the clean rows' softmax.
    private func maximizeInPlace<Model: TrainableClassifier>(_ model: Model, _ ws: Model.Workspace, rows n: Int, features d: Int) {
        let (lo, hi) = (bounds!.lo, bounds!.hi), c = model.outputFeatures
        TRADES.softmax(model.logits(clean.pointer, rows: n, workspace: ws, context: .inference), prob: p.pointer, logProb: logP.pointer)
        for _ in 0..<steps {
            let z = model.logits(adversarial.pointer, rows: n, workspace: ws, context: .inference)
            TRADES.softmax(z, prob: gradient.pointer, logProb: logPAdv.pointer)  // gradient holds p′ for a moment
            let dz = MutableMatrixPointer(kl.pointer, rows: n, columns: c)  // d KL / d z′ = p′ − p (the scale is irrelevant to the sign)
            for k in 0..<(n * c) { dz.base[k] = gradient.pointer[k] - p.pointer[k] }
            model.inputGradient(logitGradient: dz.readOnly, workspace: ws, context: .inference,
                                into: MutableMatrixPointer(gradient.pointer, rows: n, columns: d))
            for r in 0..<n {
                BatchState.linfStep(adversarial.pointer + r * d, gradient.pointer + r * d, clean.pointer + r * d, d, alpha: stepSize,
                                    epsilon: epsilon, lo: lo, hi: hi)
            }
        }
    }

    /// The loss and its parameter gradient on the buffers (clean rows, x′ in `adversarial`), in `context`:
    /// p from x (forward only), then x′ and x each with its backward pass.
    private func lossInPlace<Model: TrainableClassifier>(_ model: Model, rows n: Int, features d: Int, labels: UnsafePointer<Int>,
                                                         into gradients: inout [Matrix<Float>], workspace: Model.Workspace,
                                                         context: ForwardContext) -> Double {
        let c = model.outputFeatures
        let scale = 1 / Float(n)
        TRADES.softmax(model.logits(clean.pointer, rows: n, workspace: workspace, context: context), prob: p.pointer, logProb: logP.pointer)
        var robust = 0.0
        model.accumulateParameterGradients(MatrixPointer(adversarial.pointer, rows: n, columns: d), into: &gradients, workspace: workspace,
                                           context: context) { z, dz in
            TRADES.softmax(z, prob: nil, logProb: logPAdv.pointer)
            for i in 0..<n {
                var divergence = 0.0
                for j in 0..<c {
                    let k = i * c + j
                    divergence += Double(p.pointer[k]) * Double(logP.pointer[k] - logPAdv.pointer[k])
                    dz.base[i * dz.rowStride + j] = beta * scale * (exp(logPAdv.pointer[k]) - p.pointer[k])
                }
                kl.pointer[i] = Float(divergence)
                robust += divergence
            }
        }
        var natural = 0.0
        model.accumulateParameterGradients(MatrixPointer(clean.pointer, rows: n, columns: d), into: &gradients, workspace: workspace,
                                           context: context) { _, dz in
            for i in 0..<n {
                let y = labels[i]
                natural -= Double(logP.pointer[i * c + y])
                for j in 0..<c {
                    let k = i * c + j
                    let kld = p.pointer[k] * (logP.pointer[k] - logPAdv.pointer[k] - kl.pointer[i])
                    dz.base[i * dz.rowStride + j] = scale * (p.pointer[k] - (j == y ? 1 : 0) + beta * kld)
                }
            }
        }
        return (natural + Double(beta) * robust) / Double(n)
    }

    private func prepare<Model: TrainableClassifier>(_ model: Model, rows: Int, features d: Int, classes c: Int) throws -> Model.Workspace {
        if let ws = attackWorkspace as? Model.Workspace, rows <= capacity, spec == model.spec { return ws }
        capacity = max(rows, capacity)
        spec = model.spec
        bounds = try BoxBounds(box, for: model)
        attackWorkspace = model.makeWorkspace(capacity: capacity)
        (clean, adversarial, gradient) = (AlignedBuffer(uninitializedCount: capacity * d), AlignedBuffer(uninitializedCount: capacity * d),
                                          AlignedBuffer(uninitializedCount: capacity * max(d, c)))
        (p, logP, logPAdv) = (AlignedBuffer(uninitializedCount: capacity * c), AlignedBuffer(uninitializedCount: capacity * c),
                              AlignedBuffer(uninitializedCount: capacity * c))
        kl = AlignedBuffer(uninitializedCount: capacity * c)
        return attackWorkspace as! Model.Workspace  // made above for this model type
    }
}
