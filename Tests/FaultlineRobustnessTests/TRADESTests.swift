import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// TRADES: its parameter gradient against central finite differences of its own loss, β = 0 against
/// plain cross-entropy training, and its effect on robust accuracy on the digits.
@Suite("TRADES", .serialized)
struct TRADESTests {
    static let split = try! BundledDatasets.digits().stratifiedSplit(seed: 0)

    /// The loss and gradient of one TRADES batch at the model's current weights.
    static func evaluate(_ trades: TRADES, _ model: Sequential, _ x: Matrix<Float>, _ y: [Int]) throws -> (Double, [Matrix<Float>]) {
        var gradients = model.namedParameters.map { Matrix<Float>(rows: $0.value.rows, columns: $0.value.columns) }
        let workspace = Sequential.Workspace(for: model, capacity: x.rows)
        let loss = try x.withUnsafeBufferPointer { px in
            try y.withUnsafeBufferPointer { py in
                try trades.accumulate(model, rows: MatrixPointer(px.baseAddress!, rows: x.rows, columns: x.columns), labels: py.baseAddress!,
                                      into: &gradients, workspace: workspace, context: ForwardContext(training: true), step: 4, epoch: 0)
            }
        }
        return (loss, gradients)
    }

    /// With no inner steps x′ = x + 0.001·N(0, I) does not depend on the weights, so the returned
    /// gradient must be the derivative of the returned loss: central differences (h = 1e-2) on every
    /// parameter of a small tanh network agree within 2 % of the gradient's scale.
    @Test(arguments: [0.5, 6.0] as [Float])
    func gradientMatchesFiniteDifferences(beta: Float) throws {
        var model = try ModelSpec.build("linear:6-5,tanh,linear:5-3", seed: 11)
        var rng = Philox(seed: 2)
        let x = Matrix<Float>(rows: 7, columns: 6).map { _ in Float(rng.uniform()) }
        let y = (0..<7).map { $0 % 3 }
        // ε large enough that the start noise is not clipped by the ball.
        let trades = try TRADES(beta: beta, epsilon: 0.05, steps: 0, box: InputBox(-10...10), seed: 3)
        let (_, analytic) = try Self.evaluate(trades, model, x, y)
        let scale = analytic.flatMap(\.elements).map { abs($0) }.max()!
        let base = model.namedParameters.map(\.value)
        let h: Float = 1e-2
        for (k, parameter) in base.enumerated() {
            for e in 0..<parameter.count {
                var plus = base, minus = base
                plus[k].withUnsafeMutableBufferPointer { $0[e] += h }
                minus[k].withUnsafeMutableBufferPointer { $0[e] -= h }
                model.setParameters(plus)
                let (up, _) = try Self.evaluate(trades, model, x, y)
                model.setParameters(minus)
                let (down, _) = try Self.evaluate(trades, model, x, y)
                let numeric = (up - down) / Double(2 * h)
                let value = Double(analytic[k].withUnsafeBufferPointer { $0[e] })
                #expect(abs(numeric - value) <= 0.02 * Double(scale), "parameter \(k)[\(e)]: analytic \(value), numeric \(numeric)")
            }
        }
        model.setParameters(base)
    }

    /// β = 0 is cross-entropy training: SGD weights after two epochs agree within 1e-5.
    @Test func betaZeroIsCrossEntropy() throws {
        func trained(_ objective: (any TrainingObjective)?) throws -> [Float] {
            var model = try ModelSpec.build("linear:64-16,relu,linear:16-10", seed: 5)
            try model.train(on: Self.split.train, options: TrainingOptions(epochs: 2, optimizer: .sgd(learningRate: 0.05), seed: 1, objective: objective))
            return model.namedParameters.flatMap(\.value.elements)
        }
        let plain = try trained(nil), trades = try trained(try TRADES(beta: 0, epsilon: 0.1, steps: 2))
        #expect(zip(plain, trades).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    /// TRADES (β = 3, ε = 0.1, 5 steps) against standard training of the same MLP: accuracy under
    /// PGD-20 at ε = 0.1 rises by ≥ 0.08, clean accuracy stays ≥ 0.85.
    @Test func tradesRaisesRobustAccuracy() throws {
        func trained(_ objective: (any TrainingObjective)?) throws -> Sequential {
            var model = try ModelSpec.build("linear:64-128,relu,linear:128-10", seed: 0)
            try model.train(on: Self.split.train, options: TrainingOptions(epochs: 30, seed: 0, objective: objective))
            return model
        }
        let test = Self.split.test
        func robust(_ model: Sequential) throws -> Double {
            try GradientAttack.pgd(epsilon: 0.1, stepSize: 0.025, steps: 20, seed: 1).run(model, test.features, labels: test.labels).robustAccuracy
        }
        let standard = try trained(nil), trades = try trained(try TRADES(beta: 3, epsilon: 0.1, steps: 5))
        let (base, defended) = (try robust(standard), try robust(trades))
        #expect(defended >= base + 0.08, "standard \(base), TRADES \(defended)")
        #expect(try trades.accuracy(on: test) >= 0.85)
    }

    @Test func invalidSettingsThrow() {
        #expect(throws: AttackError.self) { try TRADES(beta: -1, epsilon: 0.1) }
        #expect(throws: AttackError.self) { try TRADES(epsilon: .nan) }
        #expect(throws: AttackError.self) { try TRADES(epsilon: 0.1, steps: -1) }
    }
}
