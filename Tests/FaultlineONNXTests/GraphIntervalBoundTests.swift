import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// IBP through `GraphModel`s: equal to the Sequential's IBP on graphs built from a Sequential, sound on
/// graphs using every operation (sampled points never leave the bounds), exact on single nodes (GELU's
/// minimum).
@Suite("graph interval bounds")
struct GraphIntervalBoundTests {
    static let specs = [
        "linear:12-16,relu,linear:16-16,tanh,linear:16-8,sigmoid,linear:8-6",
        "input:1x9x9,conv2d:1-4-3-1-1,relu,maxpool:2,conv2d:4-6-3-2-1,leakyrelu:0.1,avgpool:2,flatten,linear:6-5",
        "input:3x8x8,conv2d:3-5-3-1-0,relu,conv2d:5-4-1,flatten,linear:144-7",
    ]

    static func relative(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Double {
        let scale = max(b.elements.map(abs).max() ?? 0, 1)
        return zip(a.elements, b.elements).map { abs($0 - $1) }.max()! / scale
    }

    @Test(arguments: specs, [PerturbationNorm.linf, .l2])
    func graphFromSequentialEqualsSequential(spec: String, norm: PerturbationNorm) throws {
        let s = try ModelSpec.build(spec, seed: 8)
        let sequential = try BoundPropagation(s), graph = try BoundPropagation(try GraphModel(sequential: s))
        // A graph built from a Sequential is a layer chain (max pooling has no CROWN relaxation: no chain).
        #expect(sequential.supportsCROWN && graph.supportsCROWN == !spec.contains("maxpool"))
        var rng = Philox(seed: 3)
        let x: Matrix<Float> = rng.matrix(rows: 4, columns: s.inputFeatures, .uniform(0, 1))
        let labels = [0, 1, 2, 3]
        for epsilon: Float in [0, 0.01, 0.1] {
            let region = BoundPropagation.Region(norm: norm, epsilon: epsilon, box: norm == .linf ? InputBox.unit : nil)
            let a = try sequential.logitBounds(x, region: region, method: .ibp), b = try graph.logitBounds(x, region: region, method: .ibp)
            #expect(Self.relative(b.lower, a.lower) <= 1e-9 && Self.relative(b.upper, a.upper) <= 1e-9, "\(spec) ε \(epsilon)")
            let m = try sequential.marginLowerBounds(x, labels: labels, region: region, method: .ibp)
            let n = try graph.marginLowerBounds(x, labels: labels, region: region, method: .ibp)
            #expect(Self.relative(n, m) <= 1e-9, "\(spec) ε \(epsilon) margins")
            #expect(try graph.certify(x, labels: labels, region: region, method: .ibp) == sequential.certify(x, labels: labels, region: region, method: .ibp))
        }
        // CROWN: the Sequential's bounds where it has them (GraphCROWNTests), refused alike where it has not
        // (tanh/sigmoid or max pooling), pointing to IBP.
        let region = BoundPropagation.Region(epsilon: 0.01)
        if (try? sequential.logitBounds(x, region: region, method: .crown)) == nil {
            #expect(throws: CertificationError.self) { try graph.logitBounds(x, region: region, method: .crown) }
            do { _ = try graph.certify(x, labels: labels, region: region, method: .crown) } catch {
                #expect("\(error)".contains("IBP"))
            }
        }
    }

    /// A graph with every elementwise rule: constants on both sides, interval mul/div/sub, GELU (both
    /// forms), erf, softplus, clip, leaky ReLU with α < 0, channelAffine with negative scales, grouped
    /// strided convolution, padded pooling in ceil mode, concat and a final log-softmax.
    static func graph(seed: UInt64) throws -> GraphModel {
        var rng = Philox(seed: seed)
        func conv(_ cin: Int, _ cout: Int, groups: Int = 1, stride: Int = 1) -> GraphOperation {
            .convolution(.init(weight: rng.matrix(rows: cout, columns: cin / groups * 9, .uniform(-0.6, 0.6)),
                               bias: (0..<cout).map { _ in Float(rng.uniform() - 0.5) }, inChannels: cin, kernel: (3, 3),
                               stride: (stride, stride), pads: (1, 0, 1, 2), dilation: (1, 1), groups: groups))
        }
        let nodes: [GraphModel.Node] = [
            .init(name: "norm", operation: .constantBinary(.div, constant: [0.5, -0.8], shape: [2, 1, 1], constantOnLeft: false), inputs: ["x"], output: "x1"),
            .init(name: "shift", operation: .constantBinary(.sub, constant: [0.3], shape: [1], constantOnLeft: true), inputs: ["x1"], output: "x2"),
            .init(name: "c1", operation: conv(2, 4), inputs: ["x2"], output: "a"),
            .init(name: "bn", operation: .channelAffine(scale: [0.9, -1.1, 1.3, -0.7], shift: [0.1, 0, -0.2, 0.05]), inputs: ["a"], output: "b"),
            .init(name: "gelu", operation: .unary(.gelu(tanhApproximation: false)), inputs: ["b"], output: "c"),
            .init(name: "gelut", operation: .unary(.gelu(tanhApproximation: true)), inputs: ["a"], output: "d"),
            .init(name: "mul", operation: .binary(.mul), inputs: ["c", "d"], output: "e"),
            .init(name: "erf", operation: .unary(.erf), inputs: ["e"], output: "f"),
            .init(name: "pos", operation: .unary(.softplus), inputs: ["b"], output: "g"),
            .init(name: "inv", operation: .constantBinary(.div, constant: [2], shape: [1], constantOnLeft: true), inputs: ["g"], output: "g2"),
            .init(name: "div", operation: .binary(.div), inputs: ["f", "g"], output: "h"),
            .init(name: "sub", operation: .binary(.sub), inputs: ["h", "g2"], output: "i"),
            .init(name: "c2", operation: conv(4, 4, groups: 2, stride: 2), inputs: ["i"], output: "j"),
            .init(name: "leaky", operation: .unary(.leakyReLU(alpha: -0.3)), inputs: ["j"], output: "k"),
            .init(name: "clip", operation: .unary(.clip(lower: -0.5, upper: 1)), inputs: ["k"], output: "l"),
            .init(name: "mp", operation: .pool(.init(.max, kernel: (2, 2), stride: (2, 2), pads: (1, 1, 0, 0), ceilMode: true)), inputs: ["i"], output: "m"),
            .init(name: "ap", operation: .pool(.init(.average, kernel: (2, 2), stride: (1, 1), countIncludePad: true)), inputs: ["m"], output: "n"),
            .init(name: "gap", operation: .globalAveragePool, inputs: ["l"], output: "o"),
            .init(name: "sig", operation: .unary(.sigmoid), inputs: ["n"], output: "p"),
            .init(name: "flat1", operation: .reshape([4]), inputs: ["o"], output: "q"),
            .init(name: "flat2", operation: .reshape([36]), inputs: ["p"], output: "r"),
            .init(name: "cat", operation: .concat(axis: 0), inputs: ["q", "r"], output: "s"),
            .init(name: "fc", operation: .dense(weight: rng.matrix(rows: 4, columns: 40, .uniform(-0.6, 0.6)), bias: [0.1, 0, -0.1, 0.2]), inputs: ["s"], output: "t"),
            .init(name: "tanh", operation: .unary(.tanh), inputs: ["t"], output: "u"),
            .init(name: "sm", operation: .softmax(axis: 0, log: true), inputs: ["u"], output: "logits"),
        ]
        return try GraphModel(inputName: "x", inputShape: [2, 6, 6], nodes: nodes, outputName: "logits")
    }

    /// Uniform points of the ε-box (∩ the input box) and its corners, checked against the bounds; at ε = 0 the
    /// bounds are the logits. Returns the largest excess beyond the bounds relative to the logits' scale.
    static func worstExcess(_ model: GraphModel, _ bounds: BoundPropagation, _ x0: [Float], epsilon: Float, box: ClosedRange<Float>?,
                            points: Int, rng: inout Philox) throws -> Double {
        let region = BoundPropagation.Region(epsilon: epsilon, box: box.map(InputBox.init))
        let (lower, upper) = try bounds.logitBounds(try Matrix(rows: 1, columns: x0.count, elements: x0), region: region, method: .ibp)
        let lo = x0.map { max($0 - epsilon, box?.lowerBound ?? -.infinity) }, hi = x0.map { min($0 + epsilon, box?.upperBound ?? .infinity) }
        var worst = 0.0
        let batch = 1000
        for start in stride(from: 0, to: points, by: batch) {
            let n = min(batch, points - start)
            var x = Matrix<Float>(rows: n, columns: x0.count)
            for r in 0..<n {
                let kind = (start + r) % 4  // uniform, corners, all-lower/all-upper mixes
                for j in 0..<x0.count {
                    let u = rng.uniform()
                    switch kind {
                    case 0, 1: x[r, j] = lo[j] + Float(u) * (hi[j] - lo[j])
                    case 2: x[r, j] = u < 0.5 ? lo[j] : hi[j]
                    default: x[r, j] = (start + r) % 8 == 3 ? (j % 2 == 0 ? lo[j] : hi[j]) : (u < 0.9 ? (r % 2 == 0 ? lo[j] : hi[j]) : x0[j])
                    }
                }
            }
            let z = try model.logits(x)
            for r in 0..<n {
                for k in 0..<z.columns {
                    let v = Double(z[r, k])
                    worst = max(worst, (lower[0, k] - v) / max(1, abs(v)), (v - upper[0, k]) / max(1, abs(v)))
                }
            }
        }
        return worst
    }

    @Test(arguments: [1, 2, 3])
    func everyOperationIsSound(seed: UInt64) throws {
        let model = try Self.graph(seed: seed)
        let bounds = try BoundPropagation(model)
        var rng = Philox(seed: seed + 50)
        for row in 0..<3 {
            let x0 = (0..<model.inputFeatures).map { _ in Float(rng.uniform()) }
            for epsilon: Float in [0, 0.02, 0.2] {
                let excess = try Self.worstExcess(model, bounds, x0, epsilon: epsilon, box: 0...1, points: 2000, rng: &rng)
                #expect(excess <= 1e-5, "seed \(seed) row \(row) ε \(epsilon): excess \(excess)")
            }
            let (l, u) = try bounds.logitBounds(try Matrix(rows: 1, columns: x0.count, elements: x0), region: .init(epsilon: 0), method: .ibp)
            let z = try model.logits(try Matrix(rows: 1, columns: x0.count, elements: x0))
            #expect(zip(l.elements, u.elements).allSatisfy { $0 == $1 } && zip(l.elements, z.elements).allSatisfy { abs($0 - Double($1)) <= 1e-5 * max(1, abs($0)) })
        }
    }

    /// On [x₀ − ε, x₀ + ε] a single GELU node's bounds are its exact range: the minimum −0.16997… at
    /// x ≈ −0.75179 when the interval holds it, the ends otherwise.
    @Test(arguments: [(Float(-0.75), Float(1)), (-2, 0.5), (1, 0.5), (-0.2, 0.3)])
    func geluBoundsAreItsExactRange(centre: Float, epsilon: Float) throws {
        for tanhForm in [false, true] {
            let model = try GraphModel(inputName: "x", inputShape: [1], nodes: [.init(name: "g", operation: .unary(.gelu(tanhApproximation: tanhForm)),
                                                                                           inputs: ["x"], output: "y")], outputName: "y")
            let (l, u) = try BoundPropagation(model).logitBounds(try Matrix(rows: 1, columns: 1, elements: [centre]),
                                                                 region: .init(epsilon: epsilon, box: nil), method: .ibp)
            let grid = (0...20000).map { Double(centre) - Double(epsilon) + 2 * Double(epsilon) * Double($0) / 20000 }  // the region in Double
            let values = grid.map { x in tanhForm ? 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) : 0.5 * x * erfc(-x / 2.0.squareRoot()) }
            #expect(l[0, 0] <= values.min()! && l[0, 0] >= values.min()! - 1e-8, "lower \(l[0, 0]) vs \(values.min()!)")
            #expect(abs(u[0, 0] - values.max()!) <= 1e-12, "upper \(u[0, 0]) vs \(values.max()!)")
            if centre - epsilon < -0.76 && centre + epsilon > -0.74 && !tanhForm { #expect(abs(l[0, 0] + 0.169971) < 1e-5) }
        }
    }
}
