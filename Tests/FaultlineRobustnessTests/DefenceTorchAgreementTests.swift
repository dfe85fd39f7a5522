import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// The defences against PyTorch (fixtures from scripts/fixtures/make_defence_fixtures.py, torch 2.15):
/// a PGD-AT step — the adversarial batch from a given start and the SGD update it produces — and TRADES'
/// inner maximisation from a given start, its loss and its parameter gradient.
@Suite("defences against PyTorch")
struct DefenceTorchAgreementTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path

    struct Fixture {
        let model: Sequential
        let arrays: [String: Tensor]
        let x: Matrix<Float>
        let y: [Int]

        init() throws {
            model = try Sequential.load(weights: DefenceTorchAgreementTests.root + "/defence_mlp.safetensors", spec: "linear:6-5,relu,linear:5-3")
            arrays = Dictionary(uniqueKeysWithValues: try NPZ.read(DefenceTorchAgreementTests.root + "/defence.npz").map { ($0.name, $0.tensor) })
            x = try arrays["x"]!.matrix(Float.self)
            y = arrays["y"]!.values(as: Double.self).map { Int($0) }
        }

        func matrix(_ key: String) throws -> Matrix<Float> { try arrays[key]!.matrix(Float.self) }
        func values(_ key: String) -> [Float] { arrays[key]!.values(as: Float.self) }
        func scalar(_ key: String) -> Double { arrays[key]!.values(as: Double.self)[0] }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// PGD-AT's batch is PGD from the training step's start (pinned bit-for-bit in AdversarialTrainingTests);
    /// from torch's start it equals torch's examples, and one SGD step on them gives torch's weights.
    @Test func pgdTrainingStepMatchesTorch() throws {
        let f = try Fixture()
        let pgd = GradientAttack(epsilon: 0.1, stepSize: 0.04, steps: 3)
        let delta = try Matrix<Float>(rows: f.x.rows, columns: f.x.columns, elements: zip(try f.matrix("pgd_start").elements, f.x.elements).map { $0 - $1 })
        let adversarial = try pgd.run(f.model, f.x, labels: f.y, start: delta).adversarial  // start = clamp(x + δ₀) = torch's start
        #expect(Self.maxDifference(adversarial.elements, f.values("pgd_adv")) <= 1e-6)
        var model = f.model
        let data = try LabeledDataset(name: "adversarial", features: try f.matrix("pgd_adv"), labels: f.y, classCount: 3)
        let report = try model.train(on: data, options: TrainingOptions(epochs: 1, batchSize: f.x.rows, optimizer: .sgd(learningRate: 0.1)))
        #expect(abs(report.trainLoss[0] - f.scalar("pgd_loss")) <= 1e-6 * max(1, abs(f.scalar("pgd_loss"))))
        for (name, value) in model.namedParameters {
            #expect(Self.maxDifference(value.elements, f.values("pgd_" + name)) <= 1e-6, "\(name)")
        }
    }

    /// TRADES' inner maximisation from torch's start lands on torch's x′; at that x′ the loss and its
    /// parameter gradient equal torch's (β = 6, nothing detached but x′).
    @Test func tradesMatchesTorch() throws {
        let f = try Fixture()
        let trades = try TRADES(beta: 6, epsilon: 0.1, steps: 3, stepSize: 0.03)
        let adversarial = try trades.maximize(f.model, f.x, start: try f.matrix("trades_start"))
        #expect(Self.maxDifference(adversarial.elements, f.values("trades_adv")) <= 1e-6)
        var gradients = f.model.namedParameters.map { Matrix<Float>(rows: $0.value.rows, columns: $0.value.columns) }
        let loss = try trades.loss(f.model, f.x, adversarial: try f.matrix("trades_adv"), labels: f.y, into: &gradients)
        #expect(abs(loss - f.scalar("trades_loss")) <= 1e-6 * max(1, abs(f.scalar("trades_loss"))))
        for ((name, _), gradient) in zip(f.model.namedParameters, gradients) {
            let reference = f.values("trades_grad_" + name)
            let scale = reference.map { abs($0) }.max() ?? 1
            #expect(Self.maxDifference(gradient.elements, reference) <= 1e-5 * max(scale, 1e-3), "\(name)")
        }
        // The composed objective, started at x′ with no inner steps, is the same loss.
        let noSteps = try TRADES(beta: 6, epsilon: 0.1, steps: 0)
        var again = gradients.map { Matrix<Float>(rows: $0.rows, columns: $0.columns) }
        let same = try noSteps.loss(f.model, f.x, adversarial: try f.matrix("trades_adv"), labels: f.y, into: &again)
        #expect(same == loss)
    }

    /// Bad shapes and labels are typed errors, not traps.
    @Test func tradesEntryPointsRejectMisfits() throws {
        let f = try Fixture()
        let trades = try TRADES(beta: 6, epsilon: 0.1, steps: 3)
        var gradients = f.model.namedParameters.map { Matrix<Float>(rows: $0.value.rows, columns: $0.value.columns) }
        #expect(throws: ModelError.self) { try trades.maximize(f.model, f.x, start: Matrix<Float>(rows: 2, columns: 6)) }
        #expect(throws: ModelError.self) { try trades.loss(f.model, f.x, adversarial: f.x, labels: [0, 1], into: &gradients) }
        #expect(throws: ModelError.self) { try trades.loss(f.model, f.x, adversarial: f.x, labels: f.y.map { $0 + 3 }, into: &gradients) }
        #expect(throws: ModelError.self) { try trades.maximize(f.model, Matrix<Float>(rows: 2, columns: 5), start: Matrix<Float>(rows: 2, columns: 5)) }
    }
}
