import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// With the same start (none, or a given δ₀), FGSM, PGD-L∞, PGD-L2 and MI-FGSM examples equal
/// torchattacks' to ≤ 1e-5 (fixtures from scripts/fixtures/make_attack_fixtures.py).
@Suite("torchattacks agreement")
struct TorchattacksAgreementTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let models = [
        ("mlp", "linear:12-16,relu,linear:16-16,tanh,linear:16-8,gelu,linear:8-6"),
        ("cnn", "input:1x9x9,conv2d:1-4-3-1-1,relu,maxpool:2,conv2d:4-6-3-2-1,gelu,avgpool:2-1,flatten,linear:6-5"),
    ]

    static func attacks() -> [(String, GradientAttack)] {
        var mi = GradientAttack(epsilon: 0.1, stepSize: 0.02, steps: 10)
        mi.momentum = 1
        return [
            ("fgsm", .fgsm(epsilon: 0.1)),
            ("pgd_linf", GradientAttack(epsilon: 0.1, stepSize: 0.02, steps: 10)),
            ("pgd_l2", GradientAttack(norm: .l2, epsilon: 0.5, stepSize: 0.1, steps: 10)),
            ("mifgsm", mi),
        ]
    }

    @Test(arguments: models)
    func matchesTorchattacks(name: String, spec: String) throws {
        let model = try Sequential.load(weights: Self.root + "/\(name).safetensors", spec: spec)
        let arrays = Dictionary(uniqueKeysWithValues: try NPZ.read(Self.root + "/\(name)_attacks.npz").map { ($0.name, $0.tensor) })
        let x = try arrays["x"]!.matrix(Float.self)
        let y = arrays["y"]!.values(as: Double.self).map { Int($0) }
        func maxDifference(_ a: Matrix<Float>, _ key: String) -> Float {
            zip(a.elements, arrays[key]!.values(as: Float.self)).map { abs($0 - $1) }.max()!
        }
        for (key, attack) in Self.attacks() {
            let result = try attack.run(model, x, labels: y)
            #expect(maxDifference(result.adversarial, key) <= 1e-5, "\(name) \(key)")
        }
        var fromStart = GradientAttack(epsilon: 0.1, stepSize: 0.02, steps: 10)
        fromStart.randomStart = true  // ignored on the first run when a start is given
        let start = try arrays["delta0"]!.matrix(Float.self)
        let result = try fromStart.run(model, x, labels: y, start: start)
        #expect(maxDifference(result.adversarial, "pgd_linf_start") <= 1e-5, "\(name) PGD from δ0")
    }
}
