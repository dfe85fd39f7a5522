import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// Logits, per-sample losses, input gradients and parameter gradients equal PyTorch's (fixtures from
/// scripts/fixtures/make_nn_fixtures.py) to ≤ 1e-5 relative.
@Suite("PyTorch agreement (MLP)")
struct PyTorchAgreementTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let spec = "linear:12-16,relu,linear:16-16,tanh,linear:16-8,gelu,linear:8-6"

    let model: Sequential
    let expected: [String: Tensor]

    init() throws {
        model = try Sequential.load(weights: Self.root + "/mlp.safetensors", spec: Self.spec)
        expected = Dictionary(uniqueKeysWithValues: try NPZ.read(Self.root + "/mlp_expected.npz").map { ($0.name, $0.tensor) })
    }

    func values(_ name: String) -> [Float] { expected[name]!.values(as: Float.self) }
    var x: Matrix<Float> { try! expected["x"]!.matrix(Float.self) }
    var y: [Int] { expected["y"]!.values(as: Double.self).map { Int($0) } }

    /// max |a − b| / max(max |b|, 1e-3): the error relative to the array's scale.
    func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        let scale = max(b.map { abs(Double($0)) }.max() ?? 0, 1e-3)
        return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    @Test func logits() throws {
        #expect(relativeError(try model.logits(x).elements, values("logits")) <= 1e-5)
    }

    @Test(arguments: [("ce", Loss.crossEntropy), ("margin", .margin), ("dlr", .dlr)])
    func lossesAndInputGradients(name: String, loss: Loss) throws {
        let result = try model.inputGradient(x, labels: y, loss: loss)
        #expect(relativeError(result.losses, values("\(name)_losses")) <= 1e-5, "\(name) losses")
        #expect(relativeError(result.gradient.elements, values("\(name)_input_grad")) <= 1e-5, "\(name) input gradient")
        // Batch-size invariance: the same rows in batches of 7 give the same numbers up to float32
        // rounding (BLAS may sum in another order for another batch size, so not bit for bit).
        let small = try model.inputGradient(x, labels: y, loss: loss, batchSize: 7)
        #expect(relativeError(small.gradient.elements, result.gradient.elements) <= 1e-5)
    }

    @Test func parameterGradientsOfOneSGDStep() throws {
        let (_, gradients) = try model.parameterGradients(x, labels: y)
        for ((name, _), gradient) in zip(model.namedParameters, gradients) {
            #expect(relativeError(gradient.elements, values("grad_\(name)")) <= 1e-5, "\(name)")
        }
    }
}
