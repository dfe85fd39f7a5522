import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// Per-channel input boxes (`InputBox(lower:upper:)`): the layout of the bounds, that every attack
/// keeps every feature inside its own channel's interval, that PGD equals a scalar reference written
/// here, that a per-channel box with equal channels is bit-identical to the one-interval box, and that
/// certificates over a per-channel box are sound and never looser than over its hull.
@Suite("per-channel input boxes")
struct PerChannelBoxTests {
    /// A ReLU CNN trained on the bundled digits read as 4 channels of 4×4 (CROWN-compatible), and 40
    /// test rows clamped into `box`.
    static let data: (model: Sequential, x: Matrix<Float>, y: [Int]) = {
        let split = try! BundledDatasets.digits().stratifiedSplit(seed: 0)
        var model = try! ModelSpec.build("input:4x4x4,conv2d:4-8-3-1-1,relu,flatten,linear:128-32,relu,linear:32-10", seed: 5)
        try! model.train(on: split.train, options: TrainingOptions(epochs: 10, batchSize: 32, seed: 0))
        let test = split.test.subset(Array(0..<40))
        return (model, clamped(test.features, box), test.labels)
    }()

    /// Channel 0 in [0, 1], channel 1 in [0.1, 0.6], channel 2 in [0, 1], channel 3 in [0, 0.8].
    static let box = try! InputBox(lower: [0, 0.1, 0, 0], upper: [1, 0.6, 1, 0.8])
    /// Three channels for the layout checks.
    static let threeChannels = try! InputBox(lower: [0, 0.2, 0.4], upper: [1, 0.7, 0.9])

    static func clamped(_ x: Matrix<Float>, _ box: InputBox) -> Matrix<Float> {
        let (lo, hi) = try! box.perFeature(features: x.columns, image: nil)
        var out = x
        for i in 0..<x.rows { for j in 0..<x.columns { out[i, j] = min(max(x[i, j], lo[j]), hi[j]) } }
        return out
    }

    @Test func layoutValidationAndNormalisation() throws {
        let (lo, hi) = try Self.threeChannels.perFeature(features: 12, image: ImageShape(channels: 3, height: 2, width: 2))
        #expect(lo == [0, 0, 0, 0, 0.2, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4])
        #expect(hi == [1, 1, 1, 1, 0.7, 0.7, 0.7, 0.7, 0.9, 0.9, 0.9, 0.9])
        let uniform = try InputBox(-1...1).perFeature(features: 5, image: nil)
        #expect(uniform.lower == [Float](repeating: -1, count: 5) && uniform.upper == [Float](repeating: 1, count: 5))
        #expect(throws: ModelError.self) { try Self.threeChannels.perFeature(features: 10, image: nil) }  // 3 does not divide 10
        #expect(throws: ModelError.self) { try Self.threeChannels.perFeature(features: 12, image: ImageShape(channels: 1, height: 3, width: 4)) }
        #expect(throws: ModelError.self) { try InputBox(lower: [0, 0], upper: [1, 1, 1]) }
        #expect(throws: ModelError.self) { try InputBox(lower: [0, 1], upper: [1, 1]) }  // empty channel
        #expect(throws: ModelError.self) { try InputBox(lower: [0, .nan], upper: [1, 1]) }
        #expect(throws: ModelError.self) { try InputBox(lower: [], upper: [1]) }
        #expect(try InputBox(lower: [0], upper: [1, 2, 3]).lower == [0, 0, 0])
        #expect(Self.threeChannels.description == "0.0,0.2,0.4:1.0,0.7,0.9" && InputBox.unit.description == "0.0,1.0")
        #expect(Self.threeChannels.hull == 0...1 && Self.threeChannels.uniform == nil && InputBox.unit.uniform == 0...1)
        // [0, 1] images normalised by ImageNet's mean/std: [(0 − m)/s, (1 − m)/s] per channel.
        let imagenet = try InputNormalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
        let normalised = try InputBox.unit.normalized(by: imagenet)
        for c in 0..<3 {
            #expect(normalised.lower[c] == (0 - imagenet.mean[c]) / imagenet.std[c])
            #expect(normalised.upper[c] == (1 - imagenet.mean[c]) / imagenet.std[c])
        }
    }

    /// Every attack, both norms where it has them: every adversarial feature lies in its channel's
    /// interval (and in the ε-ball for the budgeted attacks).
    @Test func everyAttackStaysInsideEachChannelsInterval() throws {
        let (model, x, y) = Self.data
        let (lo, hi) = try Self.box.perFeature(features: 64, image: nil)
        let eps: Float = 0.3
        var pgd = GradientAttack.pgd(epsilon: eps, stepSize: 0.1, steps: 8, seed: 2)
        pgd.box = Self.box
        var pgd2 = GradientAttack.pgd(epsilon: 2, stepSize: 0.5, steps: 8, norm: .l2, seed: 2)
        pgd2.box = Self.box
        var apgd = APGDAttack(norm: .linf, epsilon: eps, steps: 10)
        apgd.box = Self.box
        var apgd2 = APGDAttack(norm: .l2, epsilon: 2, steps: 10)
        apgd2.box = Self.box
        var square = SquareAttack(epsilon: eps, queries: 60)
        square.box = Self.box
        var deepFool = DeepFool(norm: .linf, candidates: 4)
        deepFool.box = Self.box
        var cw = CarliniWagnerL2(steps: 30, searchSteps: 2, initialConstant: 1, learningRate: 0.05)
        cw.box = Self.box
        let results: [(String, AttackResult, Float?)] = [
            ("pgd-linf", try pgd.run(model, x, labels: y), eps), ("pgd-l2", try pgd2.run(model, x, labels: y), nil),
            ("apgd-linf", try apgd.run(model, x, labels: y), eps), ("apgd-l2", try apgd2.run(model, x, labels: y), nil),
            ("square", try square.run(model, x, labels: y), eps), ("deepfool", try deepFool.run(model, x, labels: y), nil),
            ("cw", try cw.run(model, x, labels: y), nil),
        ]
        for (name, result, budget) in results {
            var moved = false
            for i in 0..<x.rows {
                for j in 0..<64 {
                    let a = result.adversarial[i, j]
                    #expect(a >= lo[j] && a <= hi[j], "\(name) row \(i) feature \(j): \(a) outside \(lo[j])…\(hi[j])")
                    if let budget { #expect(abs(a - x[i, j]) <= budget * (1 + 1e-6), "\(name) row \(i) feature \(j)") }
                    if a != x[i, j] { moved = true }
                }
            }
            #expect(moved && result.robustAccuracy < 0.8, "\(name) broke too few samples (robust accuracy \(result.robustAccuracy)): the test proves nothing")
        }
    }

    /// PGD (L∞, no random start) against a scalar reference: x ← clamp(c + clamp(x + α·sign(g) − c, ±ε),
    /// lo_j, hi_j) with g the model's cross-entropy input gradient. Bit-identical for every step count.
    @Test(arguments: [1, 3, 7])
    func pgdEqualsAScalarReference(steps: Int) throws {
        let (model, x, y) = Self.data
        let (lo, hi) = try Self.box.perFeature(features: 64, image: nil)
        let (eps, alpha): (Float, Float) = (0.25, 0.07)
        var attack = GradientAttack.pgd(epsilon: eps, stepSize: alpha, steps: steps, seed: 0)
        (attack.randomStart, attack.box, attack.backend) = (false, Self.box, .simd)
        let result = try attack.run(model, x, labels: y)
        var a = x
        for _ in 0..<steps {
            let g = try model.inputGradient(a, labels: y, context: ForwardContext(backend: .simd)).gradient
            for i in 0..<x.rows {
                for j in 0..<64 {
                    let sign: Float = g[i, j] > 0 ? 1 : (g[i, j] < 0 ? -1 : 0)
                    let delta = min(max(a[i, j] + alpha * sign - x[i, j], -eps), eps)
                    a[i, j] = min(max(x[i, j] + delta, lo[j]), hi[j])
                }
            }
        }
        #expect(result.adversarial.elements.map(\.bitPattern) == a.elements.map(\.bitPattern))
    }

    /// A per-channel box whose channels are all [lo, hi] is the one-interval box: bit-identical examples.
    @Test func equalChannelsAreTheUniformBox() throws {
        let (model, x0, y) = Self.data
        let x = Self.clamped(x0, InputBox(0.1...0.8))
        let perChannel = try InputBox(lower: [0.1, 0.1, 0.1, 0.1], upper: [0.8, 0.8, 0.8, 0.8])
        func both<A>(_ attack: A, _ set: (inout A, InputBox) -> Void, _ run: (A) throws -> AttackResult) throws -> Bool {
            var (a, b) = (attack, attack)
            set(&a, InputBox(0.1...0.8))
            set(&b, perChannel)
            return try run(a).adversarial.elements.map(\.bitPattern) == run(b).adversarial.elements.map(\.bitPattern)
        }
        #expect(try both(GradientAttack.pgd(epsilon: 0.2, stepSize: 0.05, steps: 5, seed: 4), { $0.box = $1 }) { try $0.run(model, x, labels: y) })
        #expect(try both(APGDAttack(norm: .l2, epsilon: 1, steps: 8), { $0.box = $1 }) { try $0.run(model, x, labels: y) })
        #expect(try both(SquareAttack(epsilon: 0.2, queries: 40), { $0.box = $1 }) { try $0.run(model, x, labels: y) })
        #expect(try both(DeepFool(norm: .l2, candidates: 3), { $0.box = $1 }) { try $0.run(model, x, labels: y) })
    }

    @Test func attacksRefuseInputsOutsideTheirChannelAndBoxesThatDoNotFit() throws {
        let (model, x0, y) = Self.data
        var x = x0
        x[3, 20] = 0.05  // feature 20 is channel 1, whose interval is [0.1, 0.6]
        var pgd = GradientAttack.pgd(epsilon: 0.1, stepSize: 0.05, steps: 2, seed: 0)
        pgd.box = Self.box
        #expect { try pgd.run(model, x, labels: y) } throws: { "\($0)".contains("x[3, 20]") && "\($0)".contains("0.1…0.6") }
        pgd.box = try InputBox(lower: [0, 0, 0], upper: [1, 1, 1])  // three channels for a four-channel image
        #expect { try pgd.run(model, x0, labels: y) } throws: { "\($0)".contains("3 channels") }
        let region = BoundPropagation.Region(epsilon: 0.01, box: try InputBox(lower: [0, 0, 0], upper: [1, 1, 1]))
        #expect(throws: CertificationError.self) { try BoundPropagation(model).certify(x0, labels: y, region: region, method: .ibp) }
    }

    /// IBP and CROWN over a per-channel box: every logit at random points of the region lies within the
    /// bounds, and the bounds are never looser than those over the hull box [0, 1].
    @Test(arguments: [BoundPropagation.Method.ibp, .crown])
    func certificatesAreSoundAndNoLooserThanTheHull(method: BoundPropagation.Method) throws {
        let (model, x, _) = Self.data
        let (lo, hi) = try Self.box.perFeature(features: 64, image: nil)
        let propagation = try BoundPropagation(model)
        let eps: Float = 0.05
        let tight = try propagation.logitBounds(x, region: .init(epsilon: eps, box: Self.box), method: method)
        let hull = try propagation.logitBounds(x, region: .init(epsilon: eps, box: .unit), method: method)
        var rng = Philox(seed: 8)
        var strictlyTighter = false
        for i in 0..<x.rows {
            for k in 0..<10 {
                #expect(tight.lower[i, k] >= hull.lower[i, k] - 1e-9 && tight.upper[i, k] <= hull.upper[i, k] + 1e-9)
                if tight.upper[i, k] - tight.lower[i, k] < hull.upper[i, k] - hull.lower[i, k] - 1e-6 { strictlyTighter = true }
            }
            let region = (0..<64).map { j in (max(x[i, j] - eps, lo[j]), min(x[i, j] + eps, hi[j])) }
            var points = Matrix<Float>(rows: 200, columns: 64)
            for p in 0..<200 {
                for j in 0..<64 {
                    let (a, b) = region[j]
                    points[p, j] = p < 2 ? (p == 0 ? a : b) : a + (b - a) * Float(rng.uniform())
                }
            }
            let logits = try model.logits(points)
            for p in 0..<200 {
                for k in 0..<10 {
                    let z = Double(logits[p, k])
                    #expect(z >= tight.lower[i, k] - 1e-4 && z <= tight.upper[i, k] + 1e-4, "row \(i) point \(p) logit \(k)")
                }
            }
        }
        #expect(strictlyTighter, "the narrower channels never tightened a bound: the test proves nothing")
    }
}
