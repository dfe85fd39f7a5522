import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// GraphModel against Sequential on the same layers (logits, input gradients, taps), and the graph's
/// own operations (residual adds, concat, broadcasting, grouped convolutions) against finite differences.
@Suite("GraphModel")
struct GraphModelTests {
    static let specs = [
        "linear:12-16,relu,linear:16-16,tanh,linear:16-8,gelu,linear:8-6",
        "linear:12-10,sigmoid,dropout:0.5,linear:10-4,leakyrelu:0.1,linear:4-3,logsoftmax",
        "input:1x9x9,conv2d:1-4-3-1-1,relu,maxpool:2,conv2d:4-6-3-2-1,gelu,avgpool:2-1,flatten,linear:6-5",
        "input:3x8x8,conv2d:3-5-3-1-0,relu,conv2d:5-4-1,flatten,linear:144-7",
    ]

    static func relative(_ a: Matrix<Float>, _ b: Matrix<Float>) -> Double {
        let scale = max(b.elements.map { abs(Double($0)) }.max() ?? 0, 1e-3)
        return zip(a.elements, b.elements).map { abs(Double($0) - Double($1)) }.max()! / scale
    }

    static func gradient<M: DifferentiableClassifier>(_ m: M, _ x: Matrix<Float>, _ labels: [Int], batch: Int) -> Matrix<Float> {
        var g = Matrix<Float>(rows: x.rows, columns: m.inputFeatures)
        let w = m.makeWorkspace(capacity: batch)
        var losses = [Float](repeating: 0, count: batch)
        x.withUnsafeBufferPointer { px in
            g.withUnsafeMutableBufferPointer { pg in
                labels.withUnsafeBufferPointer { py in
                    for start in stride(from: 0, to: x.rows, by: batch) {
                        let n = min(batch, x.rows - start)
                        m.inputGradient(MatrixPointer(px.baseAddress! + start * m.inputFeatures, rows: n, columns: m.inputFeatures),
                                        labels: py.baseAddress! + start, targets: nil, loss: .crossEntropy, losses: &losses,
                                        into: MutableMatrixPointer(pg.baseAddress! + start * m.inputFeatures, rows: n, columns: m.inputFeatures),
                                        workspace: w, context: .inference)
                    }
                }
            }
        }
        return g
    }

    @Test(arguments: specs, [1, 5, 11])
    func equalsSequential(spec: String, batch: Int) throws {
        let s = try ModelSpec.build(spec, seed: 3)
        let g = try GraphModel(sequential: s)
        var rng = Philox(seed: 9)
        let x: Matrix<Float> = rng.matrix(rows: 11, columns: s.inputFeatures, .uniform(-1, 1))
        let labels = (0..<11).map { $0 % s.outputFeatures }
        #expect(Self.relative(try g.logits(x, batchSize: batch), try s.logits(x)) <= 1e-5)
        #expect(Self.relative(Self.gradient(g, x, labels, batch: batch), Self.gradient(s, x, labels, batch: 11)) <= 1e-5)
        #expect(g.tensorNames.first == "input" && g.tensorNames.last == "logits")
    }

    /// Convolutions split their samples in one part per thread (`ConvolutionGeometry.inParts`): logits
    /// and input gradients at 1 and 2 threads, over batches smaller than, equal to and larger than the
    /// parts and a convolution block (stride 1 with an adjoint convolution, stride 2 with col2im).
    @Test(.serialized, arguments: [1, 2, 7, 64, 256])
    func convolutionsIndependentOfThreadsAndSplit(batch: Int) throws {
        let spec = "input:3x12x12,conv2d:3-8-3-1-1,relu,conv2d:8-8-3-2-1,tanh,flatten,linear:288-5"
        let g = try GraphModel(sequential: try ModelSpec.build(spec, seed: 11))
        var rng = Philox(seed: 12)
        let x: Matrix<Float> = rng.matrix(rows: 256, columns: g.inputFeatures, .uniform(-1, 1))
        let labels = (0..<256).map { $0 % 5 }
        let one = try Linalg.withThreads(1) { (try g.logits(x, batchSize: batch), Self.gradient(g, x, labels, batch: batch)) }
        let two = try Linalg.withThreads(2) { (try g.logits(x, batchSize: batch), Self.gradient(g, x, labels, batch: batch)) }
        #expect(Self.relative(two.0, one.0) <= 1e-6, "batch \(batch): logits")
        #expect(Self.relative(two.1, one.1) <= 1e-6, "batch \(batch): input gradient")
    }

    /// A workspace made at one thread count and used at another: its scratch is sized for the parts of the
    /// count it was made at, and a pass at more threads splits into no more parts than that.
    @Test(arguments: [(1, 2), (2, 1), (2, 2)])
    func convolutionWorkspaceOutlivesAThreadCountChange(made: Int, used: Int) throws {
        let spec = "input:3x12x12,conv2d:3-8-3-1-1,relu,conv2d:8-8-3-2-1,tanh,flatten,linear:288-5"
        let g = try GraphModel(sequential: try ModelSpec.build(spec, seed: 11))
        var rng = Philox(seed: 13)
        let x: Matrix<Float> = rng.matrix(rows: 37, columns: g.inputFeatures, .uniform(-1, 1))
        let labels = (0..<37).map { $0 % 5 }
        let workspace = Linalg.withThreads(made) { g.makeWorkspace(capacity: 37) }
        var gradient = Matrix<Float>(rows: 37, columns: g.inputFeatures)
        var losses = [Float](repeating: 0, count: 37)
        let logits: [Float] = Linalg.withThreads(used) {
            x.withUnsafeBufferPointer { px in
                let z = g.logits(px.baseAddress!, rows: 37, workspace: workspace, context: .inference)
                let values = (0..<(37 * 5)).map { z.base[$0] }
                gradient.withUnsafeMutableBufferPointer { pg in
                    labels.withUnsafeBufferPointer { py in
                        g.inputGradient(MatrixPointer(px.baseAddress!, rows: 37, columns: g.inputFeatures), labels: py.baseAddress!, targets: nil,
                                        loss: .crossEntropy, losses: &losses, into: MutableMatrixPointer(pg.baseAddress!, rows: 37, columns: g.inputFeatures),
                                        workspace: workspace, context: .inference)
                    }
                }
                return values
            }
        }
        let want = try Linalg.withThreads(1) { (try g.logits(x), Self.gradient(g, x, labels, batch: 37)) }
        #expect(Self.relative(try Matrix(rows: 37, columns: 5, elements: logits), want.0) <= 1e-6)
        #expect(Self.relative(gradient, want.1) <= 1e-6)
    }

    /// Same-shape subtraction and division (the backward's one-loop-per-case path), both operand sides:
    /// the input gradient against central differences.
    @Test(arguments: [1, 2])
    func sameShapeSubAndDivMatchFiniteDifferences(seed: UInt64) throws {
        var rng = Philox(seed: seed)
        func dense(_ i: Int, _ o: Int) -> GraphOperation {
            .dense(weight: rng.matrix(rows: o, columns: i, .uniform(-1, 1)), bias: (0..<o).map { _ in Float(rng.uniform() - 0.5) })
        }
        let nodes: [GraphModel.Node] = [
            .init(name: "u", operation: dense(5, 6), inputs: ["x"], output: "u"),
            .init(name: "v", operation: dense(5, 6), inputs: ["x"], output: "v0"),
            .init(name: "sp", operation: .unary(.softplus), inputs: ["v0"], output: "v1"),
            .init(name: "one", operation: .constantBinary(.add, constant: [1], shape: [1], constantOnLeft: false), inputs: ["v1"], output: "v"),
            .init(name: "sub", operation: .binary(.sub), inputs: ["u", "v"], output: "s"),
            .init(name: "rsub", operation: .binary(.sub), inputs: ["v", "u"], output: "r"),
            .init(name: "div", operation: .binary(.div), inputs: ["u", "v"], output: "d"),
            .init(name: "rdiv", operation: .binary(.div), inputs: ["s", "v"], output: "e"),
            .init(name: "mix", operation: .binary(.mul), inputs: ["d", "r"], output: "f"),
            .init(name: "cat", operation: .concat(axis: 0), inputs: ["f", "e"], output: "g"),
            .init(name: "out", operation: dense(12, 3), inputs: ["g"], output: "logits"),
        ]
        let g = try GraphModel(inputName: "x", inputShape: [5], nodes: nodes, outputName: "logits")
        let x: Matrix<Float> = rng.matrix(rows: 3, columns: 5, .uniform(-1, 1))
        let labels = [0, 1, 2]
        let analytic = Self.gradient(g, x, labels, batch: 3)
        func loss(_ x: Matrix<Float>) -> Double {
            let z = try! g.logits(x)
            return (0..<z.rows).reduce(0.0) { total, r in
                let row = (0..<3).map { Double(z[r, $0]) }, m = row.max()!
                return total + log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[labels[r]]
            }
        }
        var worst = 0.0
        for i in 0..<15 {
            var plus = x, minus = x
            plus[i / 5, i % 5] += 1e-2
            minus[i / 5, i % 5] -= 1e-2
            worst = max(worst, abs((loss(plus) - loss(minus)) / 2e-2 - Double(analytic[i / 5, i % 5])))
        }
        let scale = analytic.elements.map { abs(Double($0)) }.max()!
        #expect(worst / scale < 2e-2, "worst \(worst) at scale \(scale)")
    }

    /// A residual block with a broadcast per-channel scale, a concat, a grouped dilated convolution,
    /// padded pooling in ceil mode and a softmax: the input gradient matches central differences in Double-ish
    /// precision (float32, step 1e-2 on smooth activations).
    @Test(arguments: [1, 2, 3])
    func residualGraphMatchesFiniteDifferences(seed: UInt64) throws {
        var rng = Philox(seed: seed)
        func conv(_ cin: Int, _ cout: Int, _ k: Int, groups: Int = 1, dilation: Int = 1, stride: Int = 1, pad: Int = 1) -> GraphOperation {
            .convolution(.init(weight: rng.matrix(rows: cout, columns: cin / groups * k * k, .uniform(-0.5, 0.5)),
                               bias: (0..<cout).map { _ in Float(rng.uniform() - 0.5) }, inChannels: cin, kernel: (k, k),
                               stride: (stride, stride), pads: (pad, pad, pad, pad), dilation: (dilation, dilation), groups: groups))
        }
        let nodes: [GraphModel.Node] = [
            .init(name: "c1", operation: conv(2, 4, 3), inputs: ["x"], output: "a"),
            .init(name: "t1", operation: .unary(.tanh), inputs: ["a"], output: "b"),
            .init(name: "c2", operation: conv(4, 4, 3, groups: 2, dilation: 2, pad: 2), inputs: ["b"], output: "c"),
            .init(name: "dw", operation: conv(4, 4, 3, groups: 4, stride: 2), inputs: ["b"], output: "dwo"),
            .init(name: "add", operation: .binary(.add), inputs: ["c", "b"], output: "d"),
            .init(name: "scale", operation: .constantBinary(.mul, constant: [0.5, 2, -1, 1.5], shape: [4, 1, 1], constantOnLeft: false),
                  inputs: ["d"], output: "e"),
            .init(name: "gate", operation: .binary(.mul), inputs: ["e", "b"], output: "f"),
            .init(name: "cat", operation: .concat(axis: 0), inputs: ["f", "b"], output: "g"),
            .init(name: "pool", operation: .pool(.init(.average, kernel: (3, 3), stride: (2, 2), pads: (1, 1, 1, 1), ceilMode: true)),
                  inputs: ["g"], output: "h"),
            .init(name: "sp", operation: .unary(.softplus), inputs: ["h"], output: "i"),
            .init(name: "gap", operation: .globalAveragePool, inputs: ["dwo"], output: "j"),
            .init(name: "flat", operation: .reshape([72]), inputs: ["i"], output: "k"),
            .init(name: "fc", operation: .dense(weight: rng.matrix(rows: 3, columns: 72, .uniform(-1, 1)), bias: [0.1, 0, -0.1]),
                  inputs: ["k"], output: "l"),
            .init(name: "fj", operation: .dense(weight: rng.matrix(rows: 3, columns: 4, .uniform(-1, 1)), bias: [0, 0, 0]),
                  inputs: ["j"], output: "m"),
            .init(name: "sum", operation: .binary(.add), inputs: ["l", "m"], output: "logits"),
        ]
        let g = try GraphModel(inputName: "x", inputShape: [2, 5, 5], nodes: nodes, outputName: "logits")
        #expect(g.shape(of: "h") == [8, 3, 3] && g.shape(of: "dwo") == [4, 3, 3])
        let x: Matrix<Float> = rng.matrix(rows: 2, columns: 50, .uniform(-1, 1))
        let labels = [0, 2]
        let analytic = Self.gradient(g, x, labels, batch: 2)
        func loss(_ x: Matrix<Float>) -> Double {
            let z = try! g.logits(x)
            var total = 0.0
            for r in 0..<z.rows {
                let row = (0..<3).map { Double(z[r, $0]) }
                let m = row.max()!
                total += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[labels[r]]
            }
            return total
        }
        var worst = 0.0
        for i in stride(from: 0, to: 100, by: 7) {
            var plus = x, minus = x
            let (r, c) = (i / 50, i % 50)
            plus[r, c] += 1e-2
            minus[r, c] -= 1e-2
            let numeric = (loss(plus) - loss(minus)) / 2e-2
            worst = max(worst, abs(numeric - Double(analytic[r, c])))
        }
        let scale = analytic.elements.map { abs(Double($0)) }.max()!
        #expect(worst / scale < 2e-2, "worst \(worst) at scale \(scale)")
    }
}
