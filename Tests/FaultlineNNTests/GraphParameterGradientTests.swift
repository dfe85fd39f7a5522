import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// Parameter gradients of `GraphModel`: equal to Sequential's on the same layers, to central
/// differences on graphs with residual adds, concat, depthwise/strided/padded/dilated/grouped
/// convolutions, pooling, GELU and channelAffine, independent of the batch size; SGD steps and
/// `setParameters` checks.
@Suite("GraphModel parameter gradients")
struct GraphParameterGradientTests {
    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        let scale = max(b.map { abs(Double($0)) }.max() ?? 0, 1e-6)
        return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    @Test(arguments: GraphModelTests.specs, [1, 5, 11])
    func equalsSequential(spec: String, batch: Int) throws {
        let s = try ModelSpec.build(spec, seed: 4)
        let g = try GraphModel(sequential: s)
        var rng = Philox(seed: 12)
        let x: Matrix<Float> = rng.matrix(rows: 11, columns: s.inputFeatures, .uniform(-1, 1))
        let labels = (0..<11).map { ($0 * 7) % s.outputFeatures }
        let reference = try s.parameterGradients(x, labels: labels)
        let graph = try g.parameterGradients(x, labels: labels, batchSize: batch)
        #expect(abs(graph.loss - reference.loss) <= 1e-5 * max(1, abs(reference.loss)))
        let flat = graph.gradients.flatMap { [$0.weight.elements, $0.bias] }
        #expect(flat.count == reference.gradients.count && g.trainableNodes.count * 2 == flat.count)
        for (k, (a, b)) in zip(flat, reference.gradients).enumerated() {
            #expect(Self.relative(a, b.elements) <= 1e-5, "\(spec) parameter \(k)")
        }
    }

    /// A graph exercising every trainable kind and the structural operations around them.
    static func graph(seed: UInt64) throws -> GraphModel {
        var rng = Philox(seed: seed)
        func conv(_ cin: Int, _ cout: Int, _ k: (Int, Int), groups: Int = 1, dilation: (Int, Int) = (1, 1), stride: (Int, Int) = (1, 1),
                  pads: (Int, Int, Int, Int) = (1, 1, 1, 1)) -> GraphOperation {
            .convolution(.init(weight: rng.matrix(rows: cout, columns: cin / groups * k.0 * k.1, .uniform(-0.5, 0.5)),
                               bias: (0..<cout).map { _ in Float(rng.uniform() - 0.5) }, inChannels: cin, kernel: k,
                               stride: stride, pads: pads, dilation: dilation, groups: groups))
        }
        let nodes: [GraphModel.Node] = [
            .init(name: "norm", operation: .constantBinary(.sub, constant: [0.1, -0.2], shape: [2, 1, 1], constantOnLeft: false),
                  inputs: ["x"], output: "xn"),
            .init(name: "c1", operation: conv(2, 4, (3, 3)), inputs: ["xn"], output: "a"),
            .init(name: "bn", operation: .channelAffine(scale: [0.9, -1.1, 1.3, 0.7], shift: [0.1, 0, -0.2, 0.05]), inputs: ["a"], output: "a2"),
            .init(name: "g1", operation: .unary(.gelu(tanhApproximation: false)), inputs: ["a2"], output: "b"),
            .init(name: "c2", operation: conv(4, 4, (3, 3), groups: 2, dilation: (2, 2), pads: (2, 2, 2, 2)), inputs: ["b"], output: "c"),
            .init(name: "res", operation: .binary(.add), inputs: ["c", "b"], output: "d"),
            .init(name: "dw", operation: conv(4, 8, (3, 2), groups: 4, stride: (2, 1), pads: (1, 0, 0, 1)), inputs: ["d"], output: "e"),
            .init(name: "t", operation: .unary(.tanh), inputs: ["e"], output: "f"),
            .init(name: "strided", operation: conv(4, 3, (2, 3), stride: (2, 2), pads: (0, 1, 1, 1)), inputs: ["d"], output: "s"),
            .init(name: "mp", operation: .pool(.init(.max, kernel: (2, 2), stride: (2, 2), ceilMode: true)), inputs: ["d"], output: "m"),
            .init(name: "ap", operation: .pool(.init(.average, kernel: (3, 3), stride: (1, 1), pads: (1, 1, 1, 1))), inputs: ["f"], output: "h"),
            .init(name: "gap", operation: .globalAveragePool, inputs: ["h"], output: "i"),
            .init(name: "cat", operation: .concat(axis: 0), inputs: ["s", "m"], output: "j"),
            .init(name: "sp", operation: .unary(.softplus), inputs: ["j"], output: "k"),
            .init(name: "flat", operation: .reshape([7 * 3 * 3]), inputs: ["k"], output: "kf"),
            .init(name: "flat2", operation: .reshape([8]), inputs: ["i"], output: "if"),
            .init(name: "fc1", operation: .dense(weight: rng.matrix(rows: 3, columns: 63, .uniform(-0.5, 0.5)), bias: [0.1, 0, -0.1]),
                  inputs: ["kf"], output: "l"),
            .init(name: "fc2", operation: .dense(weight: rng.matrix(rows: 3, columns: 8, .uniform(-1, 1)), bias: [0, 0.2, 0]),
                  inputs: ["if"], output: "n"),
            .init(name: "sum", operation: .binary(.add), inputs: ["l", "n"], output: "logits"),
        ]
        return try GraphModel(inputName: "x", inputShape: [2, 5, 5], nodes: nodes, outputName: "logits")
    }

    /// Mean cross-entropy (in Double from float logits).
    static func meanLoss(_ g: GraphModel, _ x: Matrix<Float>, _ labels: [Int]) -> Double {
        let z = try! g.logits(x)
        var total = 0.0
        for r in 0..<z.rows {
            let row = (0..<z.columns).map { Double(z[r, $0]) }
            let m = row.max()!
            total += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[labels[r]]
        }
        return total / Double(z.rows)
    }

    /// Central differences (step 1e-2, or 1e-3 where a max-pool window switches its maximum within the
    /// step, on 12 or more parameters of every trainable node, float32 forward passes, loss summed in
    /// Double): agreement within 1 % of the gradient's scale per node.
    @Test(arguments: [1, 2, 3])
    func matchesFiniteDifferences(seed: UInt64) throws {
        let g = try Self.graph(seed: seed)
        #expect(g.trainableNodes == ["c1", "bn", "c2", "dw", "strided", "fc1", "fc2"])
        #expect(g.shape(of: "e") == [8, 2, 5] && g.shape(of: "s") == [3, 3, 3] && g.shape(of: "m") == [4, 3, 3])
        var rng = Philox(seed: seed + 100)
        let x: Matrix<Float> = rng.matrix(rows: 3, columns: 50, .uniform(-1, 1))
        let labels = [0, 2, 1]
        let (_, analytic) = try g.parameterGradients(x, labels: labels, batchSize: 2)
        let base = g.parameters
        for (k, p) in base.enumerated() {
            let count = p.weight.count + p.bias.count
            var worst = 0.0
            let scale = max((analytic[k].weight.elements + analytic[k].bias).map { abs(Double($0)) }.max()!, 1e-3)
            for i in stride(from: 0, to: count, by: max(1, count / 12)) {
                func shifted(_ h: Float) throws -> Double {
                    var values = base, model = g
                    if i < p.weight.count { values[k].weight.withUnsafeMutableBufferPointer { $0[i] += h } } else { values[k].bias[i - p.weight.count] += h }
                    try model.setParameters(values)
                    return Self.meanLoss(model, x, labels)
                }
                let value = Double(i < p.weight.count ? analytic[k].weight.elements[i] : analytic[k].bias[i - p.weight.count])
                var error = abs((try shifted(1e-2) - shifted(-1e-2)) / 2e-2 - value)
                if error >= 1e-2 * scale {  // a max-pool window may switch its maximum within ±h: a shorter step must agree
                    error = min(error, abs((try shifted(1e-3) - shifted(-1e-3)) / 2e-3 - value))
                }
                worst = max(worst, error)
            }
            #expect(worst / scale < 1e-2, "node \(p.node): worst \(worst) at scale \(scale)")
        }
    }

    @Test(arguments: [(4, 1), (4, 3), (4, 17), (9, 7)])
    func independentOfBatchSize(seed: UInt64, batch: Int) throws {
        let g = try Self.graph(seed: seed)
        var rng = Philox(seed: seed)
        let x: Matrix<Float> = rng.matrix(rows: 17, columns: 50, .uniform(-1, 1))
        let labels = (0..<17).map { $0 % 3 }
        let reference = try g.parameterGradients(x, labels: labels, batchSize: 17)
        let result = try g.parameterGradients(x, labels: labels, batchSize: batch)
        #expect(abs(result.loss - reference.loss) <= 1e-6 * max(1, abs(reference.loss)))
        // The workspace kernel: accumulate per batch, read in place.
        let workspace = g.makeWorkspace(capacity: batch)
        workspace.resetParameterGradients()
        x.withUnsafeBufferPointer { px in
            labels.withUnsafeBufferPointer { py in
                for start in stride(from: 0, to: 17, by: batch) {
                    let n = min(batch, 17 - start)
                    _ = g.accumulateParameterGradients(MatrixPointer(px.baseAddress! + start * 50, rows: n, columns: 50), labels: py.baseAddress! + start,
                                                       targets: nil, loss: .crossEntropy, scale: 1 / 17, workspace: workspace, context: .inference)
                }
            }
        }
        for (slot, b) in reference.gradients.enumerated() {
            let inPlace = workspace.withParameterGradient(slot: slot) { Array($0) + Array($1) }
            #expect(Self.relative(inPlace, b.weight.elements + b.bias) <= 1e-5, "\(b.node) in place")
        }
        for (a, b) in zip(result.gradients, reference.gradients) {
            #expect(a.node == b.node)
            #expect(Self.relative(a.weight.elements + a.bias, b.weight.elements + b.bias) <= 1e-5, "\(a.node)")
        }
        for loss in [Loss.margin, .dlr] {  // other losses run through the same pass
            let r = try g.parameterGradients(x, labels: labels, loss: loss, batchSize: batch)
            let s = try g.parameterGradients(x, labels: labels, loss: loss, batchSize: 17)
            #expect(zip(r.gradients, s.gradients).allSatisfy { Self.relative($0.weight.elements + $0.bias, $1.weight.elements + $1.bias) <= 1e-5 })
        }
    }

    @Test func sgdStepsLowerTheLossAndSetParametersChecks() throws {
        var g = try Self.graph(seed: 5)
        var rng = Philox(seed: 6)
        let x: Matrix<Float> = rng.matrix(rows: 24, columns: 50, .uniform(-1, 1))
        let labels = (0..<24).map { $0 % 3 }
        let start = Self.meanLoss(g, x, labels)
        var last = start
        for _ in 0..<5 {
            let (loss, gradients) = try g.parameterGradients(x, labels: labels)
            #expect(abs(loss - last) <= 1e-4 * max(1, last))
            try g.applyGradientStep(gradients, learningRate: 0.05)
            last = Self.meanLoss(g, x, labels)
        }
        #expect(last < start)
        // The model's nodes carry the new parameters: a graph rebuilt from them computes the same logits.
        let rebuilt = try GraphModel(inputName: "x", inputShape: [2, 5, 5], nodes: g.nodes, outputName: "logits")
        #expect(try rebuilt.logits(x).elements == g.logits(x).elements)
        // Wrong names, shapes or values are refused and leave the model unchanged.
        var bad = g.parameters
        bad[1].node = "other"
        #expect(throws: GraphError.self) { try g.setParameters(bad) }
        bad = g.parameters
        bad[0].bias.append(0)
        #expect(throws: GraphError.self) { try g.setParameters(bad) }
        bad = g.parameters
        bad[2].bias[0] = .nan
        #expect(throws: GraphError.self) { try g.setParameters(bad) }
        #expect(throws: GraphError.self) { try g.setParameters(Array(g.parameters.dropLast())) }
        #expect(try rebuilt.logits(x).elements == g.logits(x).elements)
        #expect(throws: ModelError.self) { try g.parameterGradients(x, labels: Array(labels.dropLast())) }
        #expect(throws: ModelError.self) { try g.parameterGradients(x, labels: labels.map { $0 + 1 }) }
    }
}
