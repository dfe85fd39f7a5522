import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import Foundation

/// `faultline bench graph`: the graph executor (imported ONNX models) against PyTorch
/// (Benchmarks/peers/graph_peer.py) and against the Sequential path on W2's MLP.
struct GraphBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Time GraphModel forward, forward + input-gradient and parameter-gradient passes (an ONNX model, or W2's MLP as graph vs Sequential).",
        discussion: """
            With --model M.onnx: forward and forward + input gradient (summed cross-entropy) of one batch of \
            uniform [0, 1) inputs in a preallocated workspace, forward + parameter gradients (mean cross-entropy, \
            one SGD step's gradient), and PGD-10 as its ten passes plus the sign step \
            (Benchmarks/peers/graph_peer.py writes the ResNet-style model of issue #14 and times PyTorch on it). \
            Without --model: W2's MLP (784-512-512-10, seeded random weights, N = 1024) as a Sequential and as \
            the same GraphModel, forward + input gradient, side by side.
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "An .onnx model; without it, W2's MLP as graph vs Sequential.")
    var model: String?

    @Option(help: "Rows per batch.")
    var batch = 256

    func run() throws {
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        var rows: [BenchRow] = []
        if let path = model {
            let graph = try ONNXModel.load(path: path)
            var rng = Philox(seed: 1)
            let x = rng.matrix(rows: batch, columns: graph.inputFeatures, .uniform(0, 1)) as Matrix<Float>
            let labels = (0..<batch).map { $0 % graph.outputFeatures }
            let (forward, gradient, pgd) = Self.time(graph, x, labels, reps: options.reps)
            let name = (path as NSString).lastPathComponent
            rows.append(BenchRow(workload: "graph", peer: "faultline forward (\(name), N=\(batch))", times_s: forward,
                                 throughput: Double(batch) / Timing.median(forward), throughput_unit: "ex/s", key: "\(graph.operationCount) ops"))
            rows.append(BenchRow(workload: "graph", peer: "faultline forward+input-gradient (\(name), N=\(batch))", times_s: gradient,
                                 throughput: Double(batch) / Timing.median(gradient), throughput_unit: "ex/s", key: ""))
            let parameters = Self.timeParameterGradients(graph, x, labels, reps: options.reps)
            rows.append(BenchRow(workload: "graph", peer: "faultline forward+parameter-gradients (\(name), N=\(batch))", times_s: parameters,
                                 throughput: Double(batch) / Timing.median(parameters), throughput_unit: "ex/s",
                                 key: "\(graph.trainableNodes.count) trainable nodes, mean CE"))
            rows.append(BenchRow(workload: "graph", peer: "faultline PGD-10 passes (\(name), N=\(batch))", times_s: pgd,
                                 throughput: Double(batch) / Timing.median(pgd), throughput_unit: "ex/s", key: "10 × (forward + input gradient + sign step)"))
        } else {
            let sequential = try ModelSpec.build("linear:784-512,relu,linear:512-512,relu,linear:512-10", seed: 0)
            let graph = try GraphModel(sequential: sequential)
            var rng = Philox(seed: 1)
            let x = rng.matrix(rows: 1024, columns: 784, .uniform(0, 1)) as Matrix<Float>
            let labels = (0..<1024).map { $0 % 10 }
            let s = Self.time(sequential, x, labels, reps: options.reps).gradient
            let g = Self.time(graph, x, labels, reps: options.reps).gradient
            rows.append(BenchRow(workload: "W2 nn", peer: "Sequential forward+input-gradient (784-512-512-10, N=1024)", times_s: s,
                                 throughput: 1024 / Timing.median(s), throughput_unit: "ex/s", key: ""))
            rows.append(BenchRow(workload: "W2 nn", peer: "GraphModel forward+input-gradient (same model)", times_s: g,
                                 throughput: 1024 / Timing.median(g), throughput_unit: "ex/s",
                                 key: String(format: "%.3f× the Sequential time", Timing.median(g) / Timing.median(s))))
        }
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "ex/s", digits: 0)
    }

    /// Samples of one forward pass and one backward pass adding the parameter gradients of the mean
    /// cross-entropy (the workspace kernel behind `GraphModel.parameterGradients`).
    static func timeParameterGradients(_ model: GraphModel, _ x: Matrix<Float>, _ labels: [Int], reps: Int) -> [Double] {
        let n = x.rows, workspace = model.makeWorkspace(capacity: n)
        var times: [Double] = []
        for round in 0...reps {
            let t = Timing.seconds {
                workspace.resetParameterGradients()
                x.withUnsafeBufferPointer { px in
                    labels.withUnsafeBufferPointer { py in
                        _ = model.accumulateParameterGradients(MatrixPointer(px.baseAddress!, rows: n, columns: model.inputFeatures), labels: py.baseAddress!,
                                                               targets: nil, loss: .crossEntropy, scale: 1 / Float(n), workspace: workspace, context: .inference)
                    }
                }
            }
            if round > 0 { times.append(t) }
        }
        return times
    }

    /// Medians' samples of forward, forward + input gradient, and PGD-10's passes on `x`.
    static func time<M: DifferentiableClassifier>(_ model: M, _ x: Matrix<Float>, _ labels: [Int], reps: Int)
        -> (forward: [Double], gradient: [Double], pgd: [Double]) {
        let n = x.rows, d = model.inputFeatures
        let workspace = model.makeWorkspace(capacity: n)
        var gradient = Matrix<Float>(uninitializedRows: n, columns: d)
        var losses = [Float](repeating: 0, count: n)
        var adversarial = x
        func pass(_ input: Matrix<Float>) {
            input.withUnsafeBufferPointer { px in
                gradient.withUnsafeMutableBufferPointer { pg in
                    labels.withUnsafeBufferPointer { py in
                        model.inputGradient(MatrixPointer(px.baseAddress!, rows: n, columns: d), labels: py.baseAddress!, targets: nil,
                                            loss: .crossEntropy, losses: &losses, into: MutableMatrixPointer(pg.baseAddress!, rows: n, columns: d),
                                            workspace: workspace, context: .inference)
                    }
                }
            }
        }
        var forward: [Double] = [], backward: [Double] = [], pgd: [Double] = []
        for round in 0...reps {
            let f = Timing.seconds { x.withUnsafeBufferPointer { _ = model.logits($0.baseAddress!, rows: n, workspace: workspace, context: .inference) } }
            let g = Timing.seconds { pass(x) }
            if round > 0 { forward.append(f); backward.append(g) }
        }
        for round in 0...max(1, reps / 2) {
            let t = Timing.seconds {
                adversarial = x
                for _ in 0..<10 {
                    pass(adversarial)
                    adversarial.withUnsafeMutableBufferPointer { a in
                        x.withUnsafeBufferPointer { x0 in
                            gradient.withUnsafeBufferPointer { g in
                                for i in 0..<(n * d) {
                                    let step = a[i] + (g[i] > 0 ? 2 / 255 : g[i] < 0 ? -2 / 255 : 0)
                                    a[i] = min(max(step, max(x0[i] - 8 / 255, 0)), min(x0[i] + 8 / 255, 1))
                                }
                            }
                        }
                    }
                }
            }
            if round > 0 { pgd.append(t) }
        }
        return (forward, backward, pgd)
    }
}
