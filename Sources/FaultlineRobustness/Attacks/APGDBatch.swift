import FaultlineLinalg
import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// The state of one APGD run on a batch: seven row buffers (clean, iterate, previous iterate, best
/// point, best adversarial point, gradient, gradient at the best point) and the per-sample step-size
/// bookkeeping, every one registered in `batch` so early stopping compacts them together. Allocated
/// once per `APGDAttack.run` and reused for every batch, restart and target.
final class APGDBatch {
    let capacity: Int, features: Int, steps: Int
    let batch: BatchRows
    let clean, current, previous, best, bestAdversarial, gradient, bestGradient: AlignedBuffer<Float>
    let losses: AlignedBuffer<Float>
    /// lossHistory[k·steps + i]: sample k's loss after step i (zero-initialised, as the reference).
    let lossHistory: AlignedBuffer<Float>
    let labels, targets: RowColumn<Int>
    let stepSize, bestLoss, bestLossAtLastCheck: RowColumn<Float>
    let reducedAtLastCheck, robust: RowColumn<Bool>
    let successStep: RowColumn<Int?>
    /// The input box per feature.
    let bounds: BoxBounds

    init(capacity: Int, features: Int, steps: Int, bounds: BoxBounds) {
        self.bounds = bounds
        self.capacity = capacity
        self.features = features
        self.steps = steps
        batch = BatchRows(capacity: capacity)
        (clean, current, previous, best) = (batch.floats(width: features), batch.floats(width: features),
                                            batch.floats(width: features), batch.floats(width: features))
        (bestAdversarial, gradient, bestGradient) = (batch.floats(width: features), batch.floats(width: features), batch.floats(width: features))
        losses = batch.floats(width: 1)
        lossHistory = batch.floats(width: steps)
        (labels, targets) = (batch.column(repeating: 0), batch.column(repeating: 0))
        (stepSize, bestLoss, bestLossAtLastCheck) = (batch.column(repeating: 0), batch.column(repeating: 0), batch.column(repeating: 0))
        (reducedAtLastCheck, robust) = (batch.column(repeating: true), batch.column(repeating: true))
        successStep = batch.column(repeating: nil)
    }

    /// Loads the clean rows and their start: clamp(x + δ₀) with δ₀ from `start`, else the random
    /// start of (rank, restart).
    func load(rows: [Int], x: Matrix<Float>, labels allLabels: [Int], targets batchTargets: [Int]?, start: Matrix<Float>?,
              attack: APGDAttack, rank: Int, restart: Int) {
        batch.load(rows)
        let d = features, eps = attack.epsilon, lo = bounds.lo, hi = bounds.hi
        x.withUnsafeBufferPointer { px in
            for (k, i) in rows.enumerated() {
                labels[k] = allLabels[i]
                targets[k] = batchTargets?[k] ?? 0
                let c = clean.pointer + k * d, a = current.pointer + k * d
                c.update(from: px.baseAddress! + i * d, count: d)
                if let start {
                    let s = start.row(i)
                    for j in 0..<d { a[j] = min(max(c[j] + s[j], lo[j]), hi[j]) }
                } else {
                    randomStart(a, c, sample: i, attack: attack, rank: rank, restart: restart)
                }
                for buffer in [previous, best, bestAdversarial] { (buffer.pointer + k * d).update(from: a, count: d) }
                (lossHistory.pointer + k * steps).update(repeating: 0, count: steps)
                stepSize[k] = 2 * eps
                reducedAtLastCheck[k] = true
                robust[k] = true
                successStep[k] = nil
            }
        }
    }

    /// The reference's random start on the ε-sphere of the norm, clamped to the box.
    private func randomStart(_ a: UnsafeMutablePointer<Float>, _ c: UnsafePointer<Float>, sample i: Int, attack: APGDAttack, rank: Int, restart: Int) {
        let d = features, eps = attack.epsilon, lo = bounds.lo, hi = bounds.hi
        var rng = Philox(seed: attack.seed, stream: UInt64(truncatingIfNeeded: attack.key(i)) << 20 | UInt64(rank) << 10 | UInt64(restart))
        var scale: Float = 0
        switch attack.norm {
        case .linf:
            for j in 0..<d { a[j] = Float(2 * rng.uniform() - 1); scale = max(scale, abs(a[j])) }
            scale = eps / scale
        case .l2:
            for j in 0..<d { a[j] = Float(rng.normal()); scale += a[j] * a[j] }
            scale = eps / (scale.squareRoot() + 1e-12)
        }
        for j in 0..<d { a[j] = min(max(c[j] + scale * a[j], lo[j]), hi[j]) }
    }

    /// Runs the APGD iterations on the loaded rows.
    func attack<Model: DifferentiableClassifier>(_ model: Model, _ attack: APGDAttack, workspace: Model.Workspace, context: ForwardContext) {
        var live = batch.count
        let d = features
        gradientStep(model, attack, live: live, step: 0, workspace: workspace, context: context)
        for k in 0..<live {
            (bestGradient.pointer + k * d).update(from: gradient.pointer + k * d, count: d)
            bestLoss[k] = losses.pointer[k]
            bestLossAtLastCheck[k] = bestLoss[k]
        }
        if attack.earlyStop { live = compact(live) }
        let checks = Set(APGDAttack.checkpoints(steps: steps))
        var interval = checks.min() ?? 0
        for i in 0..<steps where live > 0 {
            let a: Float = i > 0 ? 0.75 : 1
            for k in 0..<live { move(k, attack, momentum: a) }
            gradientStep(model, attack, live: live, step: i + 1, workspace: workspace, context: context)
            for k in 0..<live {
                let loss = losses.pointer[k]
                lossHistory.pointer[k * steps + i] = loss
                if loss > bestLoss[k] {
                    (best.pointer + k * d).update(from: current.pointer + k * d, count: d)
                    (bestGradient.pointer + k * d).update(from: gradient.pointer + k * d, count: d)
                    bestLoss[k] = loss
                }
            }
            if checks.contains(i + 1) {
                for k in 0..<live { checkStepSize(k, at: i, interval: interval, rho: attack.rho) }
                interval = max(interval - max(Int(0.03 * Double(steps)), 1), max(Int(0.06 * Double(steps)), 1))
            }
            if attack.earlyStop { live = compact(live) }
        }
    }

    /// Loss and gradient at the current iterates of the first `live` rows; marks the misclassified
    /// ones broken and stores them as the best adversarial point.
    private func gradientStep<Model: DifferentiableClassifier>(_ model: Model, _ attack: APGDAttack, live: Int, step: Int,
                                                               workspace: Model.Workspace, context: ForwardContext) {
        let d = features, targeted = attack.targetClasses != nil
        let loss: Loss = switch (attack.objective, targeted) {
        case (.crossEntropy, _): .crossEntropy
        case (.dlr, false): .dlr
        case (.dlr, true): .targetedDLR
        }
        let descendTowardsTarget = targeted && attack.objective == .crossEntropy  // loss −CE(z, t)
        let y = UnsafePointer(labels.pointer), t = UnsafePointer(targets.pointer)
        model.inputGradient(MatrixPointer(current.pointer, rows: live, columns: d), labels: descendTowardsTarget ? t : y,
                            targets: loss == .targetedDLR ? t : nil, loss: loss, losses: losses.pointer,
                            into: MutableMatrixPointer(gradient.pointer, rows: live, columns: d), workspace: workspace, context: context)
        if descendTowardsTarget {
            for k in 0..<live { losses.pointer[k] = -losses.pointer[k] }
            for j in 0..<live * d { gradient.pointer[j] = -gradient.pointer[j] }
        }
        let z = workspace.logits(rows: live)
        for k in 0..<live where robust[k] || !attack.earlyStop {
            let row = z.base + k * z.rowStride
            var predicted = 0
            for j in 1..<z.columns where row[j] > row[predicted] { predicted = j }
            if predicted != labels[k] {
                if robust[k] { successStep[k] = step }
                robust[k] = false
                (bestAdversarial.pointer + k * d).update(from: current.pointer + k * d, count: d)
            }
        }
    }

    /// One momentum step of row k: z = P(x + η·dir(g)), x ← P(x + a(z − x) + (1 − a)(x − x_prev)).
    private func move(_ k: Int, _ attack: APGDAttack, momentum a: Float) {
        let d = features, eps = attack.epsilon, lo = bounds.lo, hi = bounds.hi
        let x = current.pointer + k * d, old = previous.pointer + k * d, c = clean.pointer + k * d, g = gradient.pointer + k * d
        let eta = stepSize[k], b = 1 - a
        switch attack.norm {
        case .linf:
            APGDBatch.linfMove(x, old, c, g, d, eta: eta, a: a, b: b, epsilon: eps, lo: lo, hi: hi)
        case .l2:
            var gn: Float = 0
            for j in 0..<d { gn += g[j] * g[j] }
            let scale = eta / (gn.squareRoot() + 1e-12)
            // z = clamp(c + δ/(‖δ‖ + 1e-12)·min(ε, ‖δ‖)), δ = x + scale·g − c; stored in `old` after its use below.
            var dn: Float = 0
            for j in 0..<d { let delta = x[j] + scale * g[j] - c[j]; dn += delta * delta }
            dn = dn.squareRoot()
            let f1 = min(eps, dn) / (dn + 1e-12)
            var mn: Float = 0
            for j in 0..<d {
                let z = min(max(c[j] + (x[j] + scale * g[j] - c[j]) * f1, lo[j]), hi[j])
                let m = x[j] + (z - x[j]) * a + (x[j] - old[j]) * b
                old[j] = x[j]
                x[j] = m
                mn += (m - c[j]) * (m - c[j])
            }
            mn = mn.squareRoot()
            let f2 = min(eps, mn + 1e-12) / (mn + 1e-12)
            for j in 0..<d { x[j] = min(max(c[j] + (x[j] - c[j]) * f2, lo[j]), hi[j]) }
        }
    }

    /// The L∞ momentum step, branch-free so it vectorises (sign(0) = 0 as torch.sign).
    @inline(never)
    static func linfMove(_ x: UnsafeMutablePointer<Float>, _ old: UnsafeMutablePointer<Float>, _ c: UnsafePointer<Float>,
                         _ g: UnsafePointer<Float>, _ d: Int, eta: Float, a: Float, b: Float, epsilon: Float, lo: UnsafePointer<Float>, hi: UnsafePointer<Float>) {
        for j in 0..<d {
            let s: Float = (g[j] > 0 ? 1 : 0) - (g[j] < 0 ? 1 : 0)
            let xj = x[j], lower = c[j] - epsilon, upper = c[j] + epsilon
            let z = Swift.min(Swift.max(Swift.min(Swift.max(xj + eta * s, lower), upper), lo[j]), hi[j])
            let m = xj + (z - xj) * a + (xj - old[j]) * b
            old[j] = xj
            x[j] = Swift.min(Swift.max(Swift.min(Swift.max(m, lower), upper), lo[j]), hi[j])
        }
    }

    /// The checkpoint test of row k after iteration i: halve η and return to the best point if the
    /// loss rose in at most ρ·k of the last k steps, or if η was not halved last time and the best
    /// loss has not improved since.
    private func checkStepSize(_ k: Int, at i: Int, interval: Int, rho: Float) {
        let history = lossHistory.pointer + k * steps
        var rises = 0
        for back in 0..<interval {
            let previousIndex = (i - back - 1 + steps) % steps  // index −1 is the last (zero) slot, as the reference
            if history[i - back] > history[previousIndex] { rises += 1 }
        }
        let oscillating = Float(rises) <= Float(interval) * rho
        let stalled = !reducedAtLastCheck[k] && bestLossAtLastCheck[k] >= bestLoss[k]
        let reduce = oscillating || stalled
        reducedAtLastCheck[k] = reduce
        bestLossAtLastCheck[k] = bestLoss[k]
        if reduce {
            let d = features
            stepSize[k] /= 2
            (current.pointer + k * d).update(from: best.pointer + k * d, count: d)
            (gradient.pointer + k * d).update(from: bestGradient.pointer + k * d, count: d)
        }
    }

    /// Moves broken rows behind the live ones (early stopping) and returns the new live count.
    private func compact(_ live: Int) -> Int {
        batch.compact(live: live) { !robust[$0] }.live
    }

    /// Writes row k's best adversarial point into `matrix` row i.
    func copyBestAdversarial(_ k: Int, into matrix: inout Matrix<Float>, row i: Int) {
        bestAdversarial.copyRow(k, width: features, into: &matrix, row: i)
    }
}
