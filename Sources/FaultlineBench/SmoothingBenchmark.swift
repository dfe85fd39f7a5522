import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation

/// `faultline bench smoothing`: randomized-smoothing CERTIFY on W2's MLP against the GEMM bound.
struct SmoothingBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smoothing",
        abstract: "Time randomized-smoothing CERTIFY (n0 = 100, n = 10,000, σ = 0.25) on W2's MLP against the GEMM-bound limit.",
        discussion: """
            Reads DATA/mlp.safetensors and the first --inputs rows of DATA/pgd_x.npy (Benchmarks/peers/make_data.py). The bound: the \
            forward GEMMs of the same noise batches (784→512→512→10) timed alone, so the ratio shows what noise \
            generation, the activations and the class counting cost on top of the matrix products.
            """)

    @OptionGroup var options: BenchOptions
    @Option(help: "Inputs certified per repetition.") var inputs = 4
    @Option(help: "Noise copies per forward batch.") var noiseBatch = 1000

    func run() throws {
        guard let data = options.data else { throw ValidationError("give --data DIR (written by Benchmarks/peers/make_data.py)") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let model = try Sequential.load(weights: data + "/mlp.safetensors", spec: NNBenchmark.spec)
        let all = try NPY.readMatrix(data + "/pgd_x.npy", as: Float.self)
        let x = all.sliceRows(0..<inputs)
        var smoothing = RandomizedSmoothing(sigma: 0.25, selectionSamples: 100, estimationSamples: 10_000)
        smoothing.noiseBatch = noiseBatch
        let batches = [100] + Array(repeating: noiseBatch, count: 10_000 / noiseBatch) + (10_000 % noiseBatch > 0 ? [10_000 % noiseBatch] : [])
        let weights = model.namedParameters.filter { $0.name.hasSuffix("weight") }.map(\.value)
        let shapes = [(784, 512), (512, 512), (512, 10)]
        var a = Matrix<Float>(rows: noiseBatch, columns: 784), c = Matrix<Float>(rows: noiseBatch, columns: 784)
        func gemmsOnly() {
            a.withUnsafeMutableBufferPointer { pa in
                c.withUnsafeMutableBufferPointer { pc in
                    for _ in 0..<inputs {
                        for rows in batches {
                            for (k, (inner, out)) in shapes.enumerated() {
                                weights[k].withUnsafeBufferPointer { w in
                                    Linalg.gemm(MatrixPointer(pa.baseAddress!, rows: rows, columns: inner), MatrixPointer(w.baseAddress!, rows: out, columns: inner),
                                                transB: .transposed, into: MutableMatrixPointer(pc.baseAddress!, rows: rows, columns: out))
                                }
                            }
                        }
                    }
                }
            }
        }
        var ours: [Double] = [], bound: [Double] = []
        var certificates: [RandomizedSmoothing.Certificate] = []
        for round in 0...options.reps {
            let t = try Timing.seconds { certificates = try smoothing.certify(model, x) }
            let g = Timing.seconds(gemmsOnly)
            if round > 0 { ours.append(t); bound.append(g) }
        }
        let samples = Double(inputs * 10_100)
        let flops = 2 * samples * Double(784 * 512 + 512 * 512 + 512 * 10)
        let efficiency = Timing.median(bound) / Timing.median(ours)
        let radii = certificates.map { String(format: "%.3f", $0.radius) }.joined(separator: ",")
        let rows = [
            BenchRow(workload: "smoothing", peer: "faultline CERTIFY n0=100 n=10000 (\(inputs) inputs, batch \(noiseBatch))", times_s: ours,
                     throughput: Double(inputs) / Timing.median(ours), throughput_unit: "inputs/s",
                     key: String(format: "%.1f GFLOP/s; %.0f%% of the GEMM bound; radii %@", flops / Timing.median(ours) * 1e-9, 100 * efficiency, radii)),
            BenchRow(workload: "smoothing", peer: "GEMM bound: the forward GEMMs alone", times_s: bound,
                     throughput: Double(inputs) / Timing.median(bound), throughput_unit: "inputs/s",
                     key: String(format: "%.1f GFLOP/s", flops / Timing.median(bound) * 1e-9)),
        ]
        let summary = String(format: "CERTIFY reaches %.1f%% of the GEMM-bound limit", 100 * efficiency)
        try BenchReport(system: system, rows: rows, summary: [summary]).emit(options, unit: "inputs/s", digits: 2)
    }
}
