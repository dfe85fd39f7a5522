import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import FaultlineRobustness
import Foundation
import Testing

/// The attacks take an imported graph like a Sequential: FGSM and PGD-L∞ (no random start) on the
/// ResNet-style fixture equal torchattacks' examples (scripts/fixtures/make_onnx_fixtures.py).
@Suite("Attacks on ONNX models")
struct ONNXAttackTests {
    static let root = ONNXFixtureTests.root

    @Test func fgsmAndPGDMatchTorchattacks() throws {
        let model = try ONNXModel.load(path: "\(Self.root)/resnet.onnx")
        let x = try NPY.readMatrix("\(Self.root)/resnet_attack_x.npy", as: Float.self)
        let y = try NPY.read("\(Self.root)/resnet_y.npy").values(as: Double.self).map { Int($0) }
        for (key, attack) in [("fgsm", GradientAttack.fgsm(epsilon: 8 / 255)),
                              ("pgd", GradientAttack(epsilon: 8 / 255, stepSize: 2 / 255, steps: 10))] {
            let expected = try NPY.read("\(Self.root)/resnet_\(key).npy").values(as: Float.self)
            let result = try attack.run(model, x, labels: y)
            let difference = zip(result.adversarial.elements, expected).map { abs($0 - $1) }.max()!
            #expect(difference <= 1e-5, "\(key): max difference \(difference)")
            // The robust flags follow from the examples: misclassified at the example ⇔ success.
            let predicted = try model.predict(try Matrix(rows: x.rows, columns: x.columns, elements: expected))
            #expect(result.success == zip(predicted, y).map { $0 != $1 }, "\(key) success flags")
        }
    }
}
