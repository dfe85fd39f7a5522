import Foundation
import FaultlineLinalg

/// First-order optimisers with PyTorch's update rules (`torch.optim.SGD`, `torch.optim.Adam`), weight
/// decay added to the gradient (L2, as PyTorch does for both).
public enum OptimizerKind: Sendable, Equatable {
    /// buf ← μ·buf + g (buf = g on the first step); θ ← θ − lr·buf.
    case sgd(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0)
    /// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; θ ← θ − lr·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.
    case adam(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0)
}

/// How the learning rate changes over training: a multiplier of the optimiser's learning rate at each
/// optimisation step t = 0, 1, …, T − 1 (T = epochs × batches per epoch), the schedules of the
/// adversarial-training papers.
public enum LearningRateSchedule: Sendable, Equatable {
    /// 1 throughout.
    case constant
    /// `factor`^(number of milestones ≤ epoch): PyTorch's `MultiStepLR` stepped once per epoch (Madry et al.,
    /// Rice et al.: ×0.1 at two milestones).
    case piecewise(milestones: [Int], factor: Float)
    /// (1 + cos(π t / T)) / 2: cosine annealing to 0 over all steps, PyTorch's `CosineAnnealingLR` with
    /// T_max = T and η_min = 0 stepped once per batch.
    case cosine
    /// The triangular one-cycle of fast adversarial training (Wong et al. 2020): from 0 up to 1 at t = T/2,
    /// then down to 0 at t = T, linear in t (`np.interp([t], [0, T/2, T], [0, 1, 0])`).
    case oneCycle

    /// The multiplier at optimisation step `step` of `totalSteps`, in epoch `epoch`.
    public func multiplier(step: Int, epoch: Int, totalSteps: Int) -> Float {
        switch self {
        case .constant:
            return 1
        case let .piecewise(milestones, factor):
            return Float.pow(factor, milestones.filter { $0 <= epoch }.count)
        case .cosine:
            let t = Double(step) / Double(max(totalSteps, 1))
            return Float((1 + Foundation.cos(Double.pi * t)) / 2)
        case .oneCycle:
            let half = Double(max(totalSteps, 1)) / 2, t = Double(step)
            return Float(t <= half ? t / half : max(0, (2 * half - t) / half))
        }
    }
}

/// Optimiser state for one model's parameters.
struct Optimizer {
    let kind: OptimizerKind
    var first: [[Float]]
    var second: [[Float]]
    var step = 0
    /// The schedule's multiplier of the learning rate for the current step.
    var learningRateScale: Float = 1

    init(_ kind: OptimizerKind, shapes: [Int]) {
        self.kind = kind
        first = shapes.map { [Float](repeating: 0, count: $0) }
        second = shapes.map { [Float](repeating: 0, count: $0) }
    }

    /// Counts one optimisation step; call once before the `update` calls of that step.
    mutating func beginStep() { step += 1 }

    /// Updates parameter `k` (namedParameters order) in place from its gradient.
    mutating func update(_ k: Int, _ p: UnsafeMutableBufferPointer<Float>, _ gradient: Matrix<Float>) {
        let (kind, step, scale) = (self.kind, self.step, learningRateScale)
        gradient.withUnsafeBufferPointer { g in
            first[k].withUnsafeMutableBufferPointer { m in
                second[k].withUnsafeMutableBufferPointer { v in
                    switch kind {
                    case let .sgd(rate, momentum, decay):
                        let lr = scale == 1 ? rate : rate * scale
                        for i in p.indices {
                            let grad = g[i] + decay * p[i]
                            if momentum == 0 {
                                p[i] -= lr * grad
                            } else {
                                m[i] = step == 1 ? grad : momentum * m[i] + grad
                                p[i] -= lr * m[i]
                            }
                        }
                    case let .adam(rate, b1, b2, eps, decay):
                        let lr = scale == 1 ? rate : rate * scale
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
