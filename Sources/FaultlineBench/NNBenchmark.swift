import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation

/// `faultline bench nn`: forward + input-gradient passes of W2's MLP against the GEMM bound.
struct NNBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn",
        abstract: "Time forward + input-gradient passes of W2's MLP (784-512-512-10, N = 1024) against the GEMM-bound limit.",
        discussion: """
            Reads DATA/mlp.safetensors, DATA/pgd_x.npy and DATA/pgd_y.npy (from Benchmarks/peers/make_data.py). One pass is a \
            forward pass and a backward pass to the input (cross-entropy, summed), no weight gradients, in a \
            preallocated workspace. The bound: the same six GEMMs (shapes and transposes) timed alone in the \
            same run; 'efficiency' is that time over ours. Without --data a seeded random model and input of \
            the same shapes are used.
            """)

    @OptionGroup var options: BenchOptions

    static let spec = "linear:784-512,relu,linear:512-512,relu,linear:512-10"

    func run() throws {
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let model: Sequential
        let x: Matrix<Float>
        let labels: [Int]
        if let data = options.data {
            model = try Sequential.load(weights: data + "/mlp.safetensors", spec: Self.spec)
            x = try NPY.readMatrix(data + "/pgd_x.npy", as: Float.self)
            labels = try NPY.read(data + "/pgd_y.npy").values(as: Double.self).map { Int($0) }
        } else {
            model = try ModelSpec.build(Self.spec, seed: 0)
            var rng = Philox(seed: 1)
            x = rng.matrix(rows: 1024, columns: 784, .uniform(0, 1))
            labels = (0..<1024).map { $0 % 10 }
        }
        let n = x.rows
        let workspace = Sequential.Workspace(for: model, capacity: n)
        var gradient = Matrix<Float>(uninitializedRows: n, columns: 784)
        var losses = [Float](repeating: 0, count: n)
        func pass() {
            x.withUnsafeBufferPointer { px in
                gradient.withUnsafeMutableBufferPointer { pg in
                    losses.withUnsafeMutableBufferPointer { pl in
                        labels.withUnsafeBufferPointer { py in
                            model.inputGradient(MatrixPointer(px.baseAddress!, rows: n, columns: 784), labels: py.baseAddress!, targets: nil,
                                                loss: .crossEntropy, losses: pl.baseAddress!,
                                                into: MutableMatrixPointer(pg.baseAddress!, rows: n, columns: 784),
                                                workspace: workspace, context: .inference)
                        }
                    }
                }
            }
        }
        // The six GEMMs of one pass, alone: forward x·W1ᵀ, h1·W2ᵀ, h2·W3ᵀ; backward dz·W3, dh2·W2, dh1·W1.
        let weights = model.namedParameters.filter { $0.name.hasSuffix("weight") }.map(\.value)
        let shapes = [(n, 784, 512), (n, 512, 512), (n, 512, 10)]
        var scratchA = Matrix<Float>(rows: n, columns: 784), scratchC = Matrix<Float>(rows: n, columns: 784)
        func gemmsOnly() {
            scratchA.withUnsafeMutableBufferPointer { a in
                scratchC.withUnsafeMutableBufferPointer { c in
                    for (k, (rows, inner, out)) in shapes.enumerated() {
                        weights[k].withUnsafeBufferPointer { w in
                            let wp = MatrixPointer(w.baseAddress!, rows: out, columns: inner)
                            Linalg.gemm(MatrixPointer(a.baseAddress!, rows: rows, columns: inner), wp, transB: .transposed,
                                        into: MutableMatrixPointer(c.baseAddress!, rows: rows, columns: out))
                            Linalg.gemm(MatrixPointer(a.baseAddress!, rows: rows, columns: out), wp,
                                        into: MutableMatrixPointer(c.baseAddress!, rows: rows, columns: inner))
                        }
                    }
                }
            }
        }
        var ours: [Double] = [], bound: [Double] = []
        for round in 0...options.reps {
            let t = Timing.seconds(pass)
            let g = Timing.seconds(gemmsOnly)
            if round > 0 { ours.append(t); bound.append(g) }
        }
        let flops = 2.0 * 2.0 * Double(n) * Double(784 * 512 + 512 * 512 + 512 * 10)
        let efficiency = Timing.median(bound) / Timing.median(ours)
        let meanLoss = losses.reduce(0) { $0 + Double($1) } / Double(n)
        let rows = [
            BenchRow(workload: "W2 nn", peer: "faultline forward+input-gradient (784-512-512-10, N=\(n))", times_s: ours,
                     throughput: Double(n) / Timing.median(ours), throughput_unit: "ex/s",
                     key: String(format: "%.1f GFLOP/s; %.0f%% of the GEMM bound; mean CE %.4f", flops / Timing.median(ours) * 1e-9, 100 * efficiency, meanLoss)),
            BenchRow(workload: "W2 nn", peer: "GEMM bound: the pass's six GEMMs alone", times_s: bound,
                     throughput: Double(n) / Timing.median(bound), throughput_unit: "ex/s",
                     key: String(format: "%.1f GFLOP/s", flops / Timing.median(bound) * 1e-9)),
        ]
        let summary = String(format: "forward+input-gradient reaches %.1f%% of the GEMM-bound limit (%.1f GFLOP counted per pass)", 100 * efficiency, flops * 1e-9)
        try BenchReport(system: system, rows: rows, summary: [summary]).emit(options, unit: "ex/s", digits: 0)
    }
}
