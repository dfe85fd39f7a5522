import FaultlineLinalg

/// First-order optimisers with PyTorch's update rules (`torch.optim.SGD`, `torch.optim.Adam`), weight
/// decay added to the gradient (L2, as PyTorch does for both).
public enum OptimizerKind: Sendable, Equatable {
    /// buf ← μ·buf + g (buf = g on the first step); θ ← θ − lr·buf.
    case sgd(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0)
    /// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; θ ← θ − lr·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.
    case adam(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0)
}

/// Optimiser state for one model's parameters.
struct Optimizer {
    let kind: OptimizerKind
    var first: [[Float]]
    var second: [[Float]]
    var step = 0

    init(_ kind: OptimizerKind, shapes: [Int]) {
        self.kind = kind
        first = shapes.map { [Float](repeating: 0, count: $0) }
        second = shapes.map { [Float](repeating: 0, count: $0) }
    }

    /// Counts one optimisation step; call once before the `update` calls of that step.
    mutating func beginStep() { step += 1 }

    /// Updates parameter `k` (namedParameters order) in place from its gradient.
    mutating func update(_ k: Int, _ p: UnsafeMutableBufferPointer<Float>, _ gradient: Matrix<Float>) {
        let (kind, step) = (self.kind, self.step)
        gradient.withUnsafeBufferPointer { g in
            first[k].withUnsafeMutableBufferPointer { m in
                second[k].withUnsafeMutableBufferPointer { v in
                    switch kind {
                    case let .sgd(lr, momentum, decay):
                        for i in p.indices {
                            let grad = g[i] + decay * p[i]
                            if momentum == 0 {
                                p[i] -= lr * grad
                            } else {
                                m[i] = step == 1 ? grad : momentum * m[i] + grad
                                p[i] -= lr * m[i]
                            }
                        }
                    case let .adam(lr, b1, b2, eps, decay):
                        let c1 = 1 - Float.pow(b1, step), c2 = 1 - Float.pow(b2, step)
                        for i in p.indices {
                            let grad = g[i] + decay * p[i]
                            m[i] = b1 * m[i] + (1 - b1) * grad
                            v[i] = b2 * v[i] + (1 - b2) * grad * grad
                            p[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }
}

extension Float {
    static func pow(_ base: Float, _ exponent: Int) -> Float {
        var r: Float = 1
        for _ in 0..<exponent { r *= base }
        return r
    }
}
