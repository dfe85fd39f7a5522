import FaultlineLinalg
import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// Carlini–Wagner L2 (2017) as the reference `nn_robust_attacks/l2_attack.py`, batched: a
/// minimal-perturbation attack.
///
/// Change of variables x'(w) = lo + (hi − lo)·(tanh w + 1)/2 with w₀ = atanh((2(x − lo)/(hi − lo) − 1)·0.999999)
/// (so the start is x and pixels at the box edges keep a gradient), then Adam (lr, β = 0.9/0.999) on
///
///     ‖x'(w) − x‖₂² + c · max(Z_y − max_{j≠y} Z_j + κ, 0)
///
/// where the runner-up excludes y outright (never a zeroed logit). A binary search on c per sample
/// (`searchSteps` rounds from `initialConstant`: success ⇒ hi = c, c = (lo + hi)/2; failure ⇒ lo = c,
/// c = (lo + hi)/2, or 10c while no success yet) restarts w and Adam each round; the smallest successful
/// perturbation is kept (success: argmax of Z with Z_y + κ is not y). Early abort is checked per sample
/// every steps/10 iterations (the reference checks the batch's summed loss; per sample keeps results
/// independent of the batch). Samples misclassified at x, and those never broken, return x.
public struct CarliniWagnerL2: Sendable {
    /// κ: the logit margin the example must reach.
    public var confidence: Float = 0
    /// Adam steps per binary-search round.
    public var steps: Int = 1000
    /// Adam's learning rate.
    public var learningRate: Float = 0.01
    /// Rounds of the binary search on c.
    public var searchSteps: Int = 9
    /// c of the first round.
    public var initialConstant: Float = 1e-3
    /// Stop a round for a sample when its loss has not decreased over steps/10 iterations.
    public var abortEarly: Bool = true
    /// The valid input box (one interval, or one per channel): iterates are clamped to it.
    public var box: InputBox = .unit
    /// Rows per batch (results do not depend on it).
    public var batchSize: Int = 256
    /// The GEMM backend (nil: the default).
    public var backend: Backend?

    /// CW-L2 with the reference's defaults (κ = 0, 1,000 steps, 9 search rounds from c = 10⁻³, lr 0.01).
    public init(confidence: Float = 0, steps: Int = 1000, searchSteps: Int = 9, initialConstant: Float = 1e-3, learningRate: Float = 0.01) {
        self.confidence = confidence
        self.steps = steps
        self.searchSteps = searchSteps
        self.initialConstant = initialConstant
        self.learningRate = learningRate
    }

    /// Attacks every row of `x`; `successStep` is the binary-search round of the kept example.
    public func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> AttackResult {
        guard confidence.isFinite, confidence >= 0 else { throw AttackError.invalidParameter("κ = \(confidence) must be finite and ≥ 0") }
        guard steps >= 1, searchSteps >= 1, batchSize >= 1 else { throw AttackError.invalidParameter("steps, search steps and batch size must be ≥ 1") }
        guard learningRate > 0, learningRate.isFinite, initialConstant > 0, initialConstant.isFinite else {
            throw AttackError.invalidParameter("learning rate and initial constant must be finite and > 0")
        }
        let bounds = try AttackInputs.check(model, x, labels: labels, targets: nil, box: box)
        guard (0..<x.columns).allSatisfy({ bounds.hi[$0] > bounds.lo[$0] }) else { throw AttackError.invalidParameter("the box must have positive width") }
        let n = x.rows, d = x.columns, c = model.outputFeatures, batch = min(batchSize, max(n, 1))
        let context = ForwardContext(backend: backend)
        let workspace = model.makeWorkspace(capacity: batch)
        let predicted = try model.predict(x)
        var adversarial = x
        var round = [Int?](repeating: nil, count: n)
        for i in 0..<n where predicted[i] != labels[i] { round[i] = 0 }
        let attacked = (0..<n).filter { predicted[$0] == labels[$0] }
        // x' = lo + half·(tanh w + 1) per feature; the flat index j of a batch holds feature j % d.
        let lo = bounds.lo, half = AlignedBuffer<Float>(uninitializedCount: d)
        for j in 0..<d { half.pointer[j] = (bounds.hi[j] - bounds.lo[j]) / 2 }
        // Buffers per batch row: w, x', gradient, Adam moments, the clean row, the best example.
        let size = batch * d
        let (w, xp, grad, m1, m2) = (AlignedBuffer<Float>(uninitializedCount: size), AlignedBuffer<Float>(uninitializedCount: size),
                                     AlignedBuffer<Float>(uninitializedCount: size), AlignedBuffer<Float>(uninitializedCount: size),
                                     AlignedBuffer<Float>(uninitializedCount: size))
        let (clean, best) = (AlignedBuffer<Float>(uninitializedCount: size), AlignedBuffer<Float>(uninitializedCount: size))
        let dz = AlignedBuffer<Float>(uninitializedCount: batch * c)
        for first in stride(from: 0, to: attacked.count, by: batch) {
            let rows = Array(attacked[first..<min(first + batch, attacked.count)])
            let r = rows.count
            var constant = [Float](repeating: initialConstant, count: r), lower = [Float](repeating: 0, count: r), upper = [Float](repeating: 1e10, count: r)
            var bestNorm = [Float](repeating: .infinity, count: r), bestRound = [Int?](repeating: nil, count: r)
            x.withUnsafeBufferPointer { px in
                for (k, i) in rows.enumerated() { (clean.pointer + k * d).update(from: px.baseAddress! + i * d, count: d) }
            }
            for search in 0..<searchSteps {
                // Restart w at the clean point and reset Adam.
                for j in 0..<(r * d) {
                    let t = ((clean.pointer[j] - lo[j % d]) / half.pointer[j % d] - 1) * 0.999999
                    w.pointer[j] = Float(atanh(Double(t)))
                }
                m1.pointer.update(repeating: 0, count: r * d)
                m2.pointer.update(repeating: 0, count: r * d)
                var succeeded = [Bool](repeating: false, count: r), active = [Bool](repeating: true, count: r)
                var previous = [Float](repeating: .infinity, count: r)
                for step in 0..<steps {
                    for j in 0..<(r * d) { xp.pointer[j] = lo[j % d] + half.pointer[j % d] * (Float(tanh(Double(w.pointer[j]))) + 1) }
                    let z = model.logits(xp.pointer, rows: r, workspace: workspace, context: context)
                    var anyActive = false
                    for k in 0..<r {
                        let row = z.base + k * z.rowStride, y = labels[rows[k]], g = dz.pointer + k * c
                        g.update(repeating: 0, count: c)
                        var other = y == 0 ? 1 : 0
                        for j in 0..<c where j != y && row[j] > row[other] { other = j }
                        let margin = row[y] - row[other] + confidence
                        var distance: Float = 0
                        for j in 0..<d { let e = xp.pointer[k * d + j] - clean.pointer[k * d + j]; distance += e * e }
                        // Success check on the current iterate (argmax of Z with Z_y + κ is not y).
                        if row[other] > row[y] + confidence {
                            succeeded[k] = true
                            if distance < bestNorm[k] {
                                bestNorm[k] = distance
                                bestRound[k] = search + 1
                                (best.pointer + k * d).update(from: xp.pointer + k * d, count: d)
                            }
                        }
                        guard active[k] else { continue }
                        let loss = distance + constant[k] * max(margin, 0)
                        if abortEarly && step % max(steps / 10, 1) == 0 {
                            if loss > previous[k] * 0.9999 { active[k] = false; continue }
                            previous[k] = loss
                        }
                        anyActive = true
                        if margin > 0 { g[y] = constant[k]; g[other] = -constant[k] }
                    }
                    if !anyActive { break }
                    model.inputGradient(logitGradient: MatrixPointer(dz.pointer, rows: r, columns: c), workspace: workspace, context: context,
                                        into: MutableMatrixPointer(grad.pointer, rows: r, columns: d))
                    // Adam on w: d loss/dx' = 2(x' − x) + c·∂f, dx'/dw = half·(1 − tanh²w).
                    let t = Float(step + 1)
                    let correction1 = 1 - Float(pow(0.9, Double(t))), correction2 = 1 - Float(pow(0.999, Double(t)))
                    for k in 0..<r where active[k] {
                        for j in (k * d)..<((k + 1) * d) {
                            let th = (xp.pointer[j] - lo[j - k * d]) / half.pointer[j - k * d] - 1
                            let gw = (2 * (xp.pointer[j] - clean.pointer[j]) + grad.pointer[j]) * half.pointer[j - k * d] * (1 - th * th)
                            m1.pointer[j] = 0.9 * m1.pointer[j] + 0.1 * gw
                            m2.pointer[j] = 0.999 * m2.pointer[j] + 0.001 * gw * gw
                            w.pointer[j] -= learningRate * (m1.pointer[j] / correction1) / ((m2.pointer[j] / correction2).squareRoot() + 1e-8)
                        }
                    }
                }
                for k in 0..<r {
                    if succeeded[k] {
                        upper[k] = min(upper[k], constant[k])
                        constant[k] = (lower[k] + upper[k]) / 2
                    } else {
                        lower[k] = max(lower[k], constant[k])
                        constant[k] = upper[k] < 1e9 ? (lower[k] + upper[k]) / 2 : constant[k] * 10
                    }
                }
                progress?(first * searchSteps + (search + 1) * r, attacked.count * searchSteps)
            }
            adversarial.withUnsafeMutableBufferPointer { out in
                for (k, i) in rows.enumerated() where bestRound[k] != nil {
                    (out.baseAddress! + i * d).update(from: best.pointer + k * d, count: d)
                    round[i] = bestRound[k]
                }
            }
        }
        return AttackResult.evaluate(model, adversarial: adversarial, labels: labels, targets: nil, successStep: round,
                                     workspace: workspace, context: context)
    }
}
