import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// Properties every attack result must have, on a model trained on the bundled digits.
@Suite("attack properties", .serialized)
struct AttackPropertyTests {
    static let data: (model: Sequential, x: Matrix<Float>, y: [Int]) = {
        let split = try! BundledDatasets.digits().stratifiedSplit(seed: 0)
        var model = try! ModelSpec.build("linear:64-64,relu,linear:64-10", seed: 0)
        try! model.train(on: split.train, options: TrainingOptions(epochs: 15, batchSize: 32, seed: 0))
        let test = split.test.subset(Array(0..<120))
        return (model, test.features, test.labels)
    }()

    static let attacks: [(String, GradientAttack)] = [
        ("fgsm", .fgsm(epsilon: 0.1)),
        ("pgd-linf", .pgd(epsilon: 0.1, stepSize: 0.02, steps: 10, seed: 3)),
        ("pgd-l2", .pgd(epsilon: 1.0, stepSize: 0.25, steps: 10, norm: .l2, seed: 3)),
    ]

    @Test(arguments: attacks)
    func examplesStayInTheBallAndTheBox(name: String, attack: GradientAttack) throws {
        let (model, x, y) = Self.data
        let r = try attack.run(model, x, labels: y)
        for i in 0..<x.rows {
            let delta = zip(r.adversarial.row(i), x.row(i)).map { $0 - $1 }
            let size = attack.norm == .linf ? delta.map(abs).max()! : delta.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(size <= attack.epsilon * (1 + 1e-5) + 1e-6, "\(name) row \(i): ‖δ‖ = \(size)")
            #expect(r.adversarial.row(i).allSatisfy { $0 >= 0 && $0 <= 1 })
        }
    }

    @Test func robustAccuracyFallsWithEpsilonAndReachesZero() throws {
        let (model, x, y) = Self.data
        var previous = 1.0
        for eps: Float in [0, 0.02, 0.05, 0.1, 0.2, 1] {
            var a = GradientAttack.pgd(epsilon: eps, stepSize: max(eps / 4, 1e-3), steps: 20, seed: 1)
            a.restarts = 2
            let accuracy = try a.run(model, x, labels: y).robustAccuracy
            #expect(accuracy <= previous + 1e-12, "ε = \(eps): \(accuracy) > \(previous)")
            previous = accuracy
        }
        #expect(previous == 0, "ε covering the whole box must break every sample")
    }

    /// With the simd backend every output element is summed in a batch-independent order, so the
    /// attack is bit-identical for batch sizes 1, 7 and 256.
    @Test func identicalForAnyBatchSize() throws {
        let (model, x, y) = Self.data
        var results: [[UInt32]] = []
        for batch in [1, 7, 256] {
            var a = GradientAttack.pgd(epsilon: 0.1, stepSize: 0.02, steps: 5, seed: 11)
            a.batchSize = batch
            a.backend = .simd
            a.earlyStop = true
            results.append(try a.run(model, x, labels: y).adversarial.elements.map(\.bitPattern))
        }
        #expect(results[0] == results[1] && results[1] == results[2])
    }

    @Test func earlyStopReturnsTheFirstSuccessAndKeepsSuccesses() throws {
        let (model, x, y) = Self.data
        var a = GradientAttack.pgd(epsilon: 0.15, stepSize: 0.03, steps: 15, seed: 2)
        a.earlyStop = true
        let early = try a.run(model, x, labels: y)
        a.earlyStop = false
        let last = try a.run(model, x, labels: y)
        #expect(early.robustAccuracy <= last.robustAccuracy + 1e-12)
        for i in 0..<x.rows where early.success[i] { #expect(early.successStep[i] != nil && early.margin[i] <= 0) }
    }

    @Test func targetedAttackHitsTheTarget() throws {
        let (model, x, y) = Self.data
        let targets = y.map { ($0 + 1) % 10 }
        let r = try GradientAttack.pgd(epsilon: 0.3, stepSize: 0.03, steps: 30, seed: 4).run(model, x, labels: y, targets: targets)
        let predicted = try model.predict(r.adversarial)
        let hits = zip(predicted, targets).filter { $0 == $1 }.count
        #expect(Double(hits) / Double(x.rows) > 0.9)
        #expect(zip(r.success, zip(predicted, targets)).allSatisfy { $0 == ($1.0 == $1.1) })
    }

    @Test func badInputsAreRejected() throws {
        let (model, x, y) = Self.data
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: -1).run(model, x, labels: y) }
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: .nan).run(model, x, labels: y) }
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: 0.1).run(model, x, labels: Array(y.dropLast())) }
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: 0.1).run(model, x, labels: y.map { _ in 10 }) }
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: 0.1).run(model, x, labels: y, targets: y) }
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: 0.1).run(model, x.map { $0 * 2 }, labels: y) }
        #expect(throws: AttackError.self) { try GradientAttack.fgsm(epsilon: 0.1).run(model, Matrix(rows: 2, columns: 3), labels: [0, 1]) }
    }

    @Test func curveIsMonotoneAndMinimalEpsilonIsConsistent() throws {
        let (model, x, y) = Self.data
        let build = { (e: Float) -> GradientAttack in
            var a = GradientAttack.pgd(epsilon: e, stepSize: max(e / 4, 1e-4), steps: 10, seed: 5)
            a.earlyStop = true
            return a
        }
        let curve = try RobustnessCurve.robustAccuracy(model, x, labels: y, epsilons: [0.2, 0, 0.05, 0.1], attack: build)
        #expect(curve.map(\.epsilon) == [0, 0.05, 0.1, 0.2])
        #expect(zip(curve, curve.dropFirst()).allSatisfy { $0.robustAccuracy >= $1.robustAccuracy })
        let clean = Double(zip(try model.predict(x), y).filter { $0 == $1 }.count) / Double(x.rows)
        #expect(curve[0].robustAccuracy == clean)
        let minimal = try RobustnessCurve.minimalEpsilon(model, x, labels: y, upper: 0.5, rounds: 6, attack: build)
        let predicted = try model.predict(x)
        for i in 0..<x.rows {
            if predicted[i] != y[i] { #expect(minimal[i] == 0) } else if let e = minimal[i] { #expect(e > 0 && e <= 0.5) }
        }
        // Samples whose minimal ε is at most 0.1 are broken by the same attack at 0.1 or below: the curve at 0.1
        // cannot exceed the share of samples with a larger (or no) minimal ε.
        let resisting = Double(minimal.filter { $0 == nil || $0! > 0.1 }.count) / Double(x.rows)
        #expect(curve[2].robustAccuracy <= resisting + 0.05)
        #expect(throws: AttackError.self) { try RobustnessCurve.robustAccuracy(model, x, labels: y, epsilons: [], attack: build) }
    }
}
