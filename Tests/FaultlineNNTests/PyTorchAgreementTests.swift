import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// Logits, per-sample losses, input gradients and parameter gradients equal PyTorch's (fixtures from
/// scripts/fixtures/make_nn_fixtures.py) to ≤ 1e-5 relative, for an MLP and a small CNN.
@Suite("PyTorch agreement")
struct PyTorchAgreementTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let models = [
        ("mlp", "linear:12-16,relu,linear:16-16,tanh,linear:16-8,gelu,linear:8-6"),
        ("cnn", "input:1x9x9,conv2d:1-4-3-1-1,relu,maxpool:2,conv2d:4-6-3-2-1,gelu,avgpool:2-1,flatten,linear:6-5"),
    ]
    static let cases = models.flatMap { m in [("ce", Loss.crossEntropy), ("margin", .margin), ("dlr", .dlr)].map { (m.0, m.1, $0.0, $0.1) } }

    struct Fixture {
        let model: Sequential
        let expected: [String: Tensor]

        init(_ name: String, _ spec: String) throws {
            model = try Sequential.load(weights: PyTorchAgreementTests.root + "/\(name).safetensors", spec: spec)
            expected = Dictionary(uniqueKeysWithValues: try NPZ.read(PyTorchAgreementTests.root + "/\(name)_expected.npz").map { ($0.name, $0.tensor) })
        }

        func values(_ name: String) -> [Float] { expected[name]!.values(as: Float.self) }
        var x: Matrix<Float> { try! expected["x"]!.matrix(Float.self) }
        var y: [Int] { expected["y"]!.values(as: Double.self).map { Int($0) } }
    }

    /// max |a − b| / max(max |b|, 1e-3): the error relative to the array's scale.
    func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        let scale = max(b.map { abs(Double($0)) }.max() ?? 0, 1e-3)
        return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    @Test(arguments: models)
    func logits(name: String, spec: String) throws {
        let f = try Fixture(name, spec)
        #expect(try ModelSpec.build(f.model.spec).spec == f.model.spec)  // the canonical spec round-trips
        #expect(relativeError(try f.model.logits(f.x).elements, f.values("logits")) <= 1e-5)
    }

    @Test(arguments: cases)
    func lossesAndInputGradients(model modelName: String, spec: String, name: String, loss: Loss) throws {
        let f = try Fixture(modelName, spec)
        let (model, x, y) = (f.model, f.x, f.y)
        func values(_ n: String) -> [Float] { f.values(n) }
        let result = try model.inputGradient(x, labels: y, loss: loss)
        #expect(relativeError(result.losses, values("\(name)_losses")) <= 1e-5, "\(name) losses")
        #expect(relativeError(result.gradient.elements, values("\(name)_input_grad")) <= 1e-5, "\(name) input gradient")
        // Batch-size invariance: the same rows in batches of 7 give the same numbers up to float32
        // rounding (BLAS may sum in another order for another batch size, so not bit for bit).
        let small = try model.inputGradient(x, labels: y, loss: loss, batchSize: 7)
        #expect(relativeError(small.gradient.elements, result.gradient.elements) <= 1e-5)
    }

    @Test(arguments: models)
    func parameterGradientsOfOneSGDStep(name modelName: String, spec: String) throws {
        let f = try Fixture(modelName, spec)
        let (_, gradients) = try f.model.parameterGradients(f.x, labels: f.y)
        for ((name, _), gradient) in zip(f.model.namedParameters, gradients) {
            #expect(relativeError(gradient.elements, f.values("grad_\(name)")) <= 1e-5, "\(modelName) \(name)")
        }
    }
}
