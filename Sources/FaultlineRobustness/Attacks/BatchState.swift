import FaultlineLinalg
import FaultlineNN

#if canImport(Glibc)
import Glibc
#endif

/// The buffers of one batch of an iterative attack, allocated once per `run` and reused. Every
/// per-row buffer lives in `batch`, so early-stopping compaction moves all of them.
final class BatchState {
    let capacity: Int
    let features: Int
    let batch: BatchRows
    let clean, adversarial, gradient, velocity, losses: AlignedBuffer<Float>
    let labels, targets: RowColumn<Int>
    let success: RowColumn<Bool>
    let successStep: RowColumn<Int?>

    init(capacity: Int, features: Int) {
        self.capacity = capacity
        self.features = features
        batch = BatchRows(capacity: capacity)
        (clean, adversarial) = (batch.floats(width: features), batch.floats(width: features))
        (gradient, velocity) = (batch.floats(width: features), batch.floats(width: features))
        losses = batch.floats(width: 1)
        (labels, targets) = (batch.column(repeating: 0), batch.column(repeating: 0))
        success = batch.column(repeating: false)
        successStep = batch.column(repeating: nil)
    }

    /// Loads the clean rows and the starting point: clamp(x + δ₀), a random start, or x itself.
    func load(rows: [Int], x: Matrix<Float>, start: Matrix<Float>?, random: Bool, attack: GradientAttack, bounds: BoxBounds, restart: Int) {
        batch.load(rows)
        let d = features, lo = bounds.lo, hi = bounds.hi, eps = attack.epsilon
        x.withUnsafeBufferPointer { px in
            for (k, i) in rows.enumerated() {
                let x0 = px.baseAddress! + i * d, c = clean.pointer + k * d, a = adversarial.pointer + k * d
                c.update(from: x0, count: d)
                (velocity.pointer + k * d).update(repeating: 0, count: d)
                success[k] = false
                successStep[k] = nil
                if let start {
                    let s = start.row(i)
                    for j in 0..<d { a[j] = min(max(c[j] + s[j], lo[j]), hi[j]) }
                } else if random {
                    var rng = Philox(seed: attack.seed, stream: UInt64(truncatingIfNeeded: attack.key(i)) << 16 | UInt64(restart))
                    switch attack.norm {
                    case .linf:
                        for j in 0..<d { a[j] = min(max(c[j] + Float(Double(eps) * (2 * rng.uniform() - 1)), lo[j]), hi[j]) }
                    case .l2:
                        // Uniform in the ball: Gaussian direction, radius ε·U^(1/d).
                        var norm = 0.0
                        for j in 0..<d { let g = rng.normal(); a[j] = Float(g); norm += g * g }
                        let radius = Double(eps) * pow(rng.uniform(), 1 / Double(d)) / max(norm.squareRoot(), 1e-30)
                        for j in 0..<d { a[j] = min(max(c[j] + Float(Double(a[j]) * radius), lo[j]), hi[j]) }
                    }
                } else {
                    a.update(from: c, count: d)
                }
            }
        }
    }

    /// One update of every live row from `gradient` (ascending the loss, or descending it when
    /// `descend`), then the projection onto the ε-ball around the clean row and the box.
    func step(live: Int, attack: GradientAttack, bounds: BoxBounds, descend: Bool) {
        let d = features, lo = bounds.lo, hi = bounds.hi, eps = attack.epsilon
        let direction: Float = descend ? -1 : 1
        for k in 0..<live {
            let a = adversarial.pointer + k * d, g = gradient.pointer + k * d, c = clean.pointer + k * d
            var update = UnsafePointer(g)
            if let mu = attack.momentum {
                var l1: Float = 0
                for j in 0..<d { l1 += abs(g[j]) }
                let v = velocity.pointer + k * d, scale: Float = l1 > 0 ? 1 / l1 : 0
                for j in 0..<d { v[j] = mu * v[j] + g[j] * scale }
                update = UnsafePointer(v)
            }
            switch attack.norm {
            case .linf:
                BatchState.linfStep(a, update, c, d, alpha: direction * attack.stepSize, epsilon: eps, lo: lo, hi: hi)
            case .l2:
                var gn: Float = 0
                for j in 0..<d { gn += update[j] * update[j] }
                let scale = direction * attack.stepSize / (gn.squareRoot() + 1e-10)
                var dn: Float = 0
                for j in 0..<d {
                    a[j] += scale * update[j]
                    let delta = a[j] - c[j]
                    dn += delta * delta
                }
                let factor = BatchState.l2ProjectionFactor(squaredNorm: dn, epsilon: eps)
                for j in 0..<d { a[j] = min(max(c[j] + (a[j] - c[j]) * factor, lo[j]), hi[j]) }
            }
        }
    }

    /// The factor that projects δ with ‖δ‖₂² = `squaredNorm` onto the ε-ball: min(1, ε/‖δ‖₂), and 1 when
    /// δ already lies in the ball — in particular when ‖δ‖₂ = 0, so ε = 0 keeps the clean point instead of
    /// evaluating 0/0 (torchattacks' `min(ε/‖δ‖, 1)` is NaN there).
    @inline(__always)
    static func l2ProjectionFactor(squaredNorm: Float, epsilon: Float) -> Float {
        let norm = squaredNorm.squareRoot()
        return norm > epsilon ? epsilon / norm : 1
    }

    /// a ← clamp(c + clamp(a + α·sign(u) − c, ±ε), lo, hi) with sign(0) = 0 (torch's sign), lo and hi per
    /// feature, in the
    /// order of operations torchattacks uses. Branch-free so the compiler vectorises it.
    @inline(never)
    static func linfStep(_ a: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ d: Int,
                         alpha: Float, epsilon: Float, lo: UnsafePointer<Float>, hi: UnsafePointer<Float>) {
        for j in 0..<d {
            let g = u[j]
            let sign: Float = (g > 0 ? 1 : 0) - (g < 0 ? 1 : 0)
            let moved = a[j] + alpha * sign
            let delta = Swift.min(Swift.max(moved - c[j], -epsilon), epsilon)
            a[j] = Swift.min(Swift.max(c[j] + delta, lo[j]), hi[j])
        }
    }

    func copyOut(_ k: Int, into matrix: inout Matrix<Float>, row i: Int) {
        adversarial.copyRow(k, width: features, into: &matrix, row: i)
    }
}
