import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineRobustness
import FaultlineShift
import Foundation

/// `faultline bench mahalanobis`: W3's fit (50k × 512, 10 classes) and score (50k × 512).
struct MahalanobisBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mahalanobis",
        abstract: "Time the Mahalanobis fit and score on W3 (d = 512, 10 classes, 50k fit, 50k score).",
        discussion: """
            Reads DATA/maha_fit_x.npy, maha_fit_y.npy, maha_score_x.npy and maha_score_is_ood.npy (Benchmarks/peers/make_data.py). \
            With DATA/peer_out/w3_scores_ref_f64.npy (Benchmarks/peers/run_peers.py) the largest relative error is reported.
            """)

    @OptionGroup var options: BenchOptions

    func run() throws {
        guard let data = options.data else { throw ValidationError("give --data DIR (written by Benchmarks/peers/make_data.py)") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let fitX = try NPY.readMatrix(data + "/maha_fit_x.npy", as: Float.self)
        let fitY = try NPY.read(data + "/maha_fit_y.npy").values(as: Double.self).map { Int($0) }
        let scoreX = try NPY.readMatrix(data + "/maha_score_x.npy", as: Float.self)
        let isOOD = try NPY.read(data + "/maha_score_is_ood.npy").values(as: Double.self)
        let classes = (fitY.max() ?? 0) + 1, d = fitX.columns
        var detector: MahalanobisDetector?
        var scores: [Float] = []
        var fitTimes: [GaussianFit.Accumulation: [Double]] = [:]
        var scoreTimes: [Double] = [], boundTimes: [Double] = []
        for round in 0...options.reps {
            for accumulation in GaussianFit.Accumulation.allCases {
                let f = try Timing.seconds {
                    var fit = GaussianFit(dimension: d, classes: classes, accumulation: accumulation)
                    try fit.update(fitX, labels: fitY)
                    detector = try MahalanobisDetector(fit)
                }
                if round > 0 { fitTimes[accumulation, default: []].append(f) }
            }
            let s = try Timing.seconds { scores = try detector!.score(scoreX) }
            let b = try Timing.seconds { try Self.blasCallsAlone(scoreX, detector!) }
            if round > 0 { scoreTimes.append(s); boundTimes.append(b) }
        }
        let inside = zip(scores, isOOD).filter { $0.1 == 0 }.map(\.0), outside = zip(scores, isOOD).filter { $0.1 != 0 }.map(\.0)
        let metrics = try DetectionMetrics.compute(inDistribution: inside, outOfDistribution: outside)
        var key = String(format: "mean d² ID %.2f / OOD %.1f; AUROC %.4f", inside.map(Double.init).reduce(0, +) / Double(inside.count),
                         outside.map(Double.init).reduce(0, +) / Double(outside.count), metrics.auroc)
        if let reference = try? NPY.read(data + "/peer_out/w3_scores_ref_f64.npy").values(as: Double.self), reference.count == scores.count {
            key += String(format: "; max rel.err vs f64 %.1e", zip(scores, reference).map { abs(Double($0) - $1) / max($1, 1) }.max() ?? 0)
        }
        let efficiency = Timing.median(boundTimes) / Timing.median(scoreTimes)
        let fitLabels: [GaussianFit.Accumulation: String] = [.float64: "f64 SYRK blocks", .float32Blocks: "f32 SYRK blocks, f64 merge"]
        let rows = GaussianFit.Accumulation.allCases.map { accumulation in
            BenchRow(workload: "W3 mahalanobis", peer: "fit: faultline GaussianFit (\(fitLabels[accumulation]!)) + Cholesky", times_s: fitTimes[accumulation]!,
                     throughput: Double(fitX.rows) / Timing.median(fitTimes[accumulation]!), throughput_unit: "samples/s", key: "")
        } + [
            BenchRow(workload: "W3 mahalanobis", peer: "score: faultline MahalanobisDetector (f32 TRMM + GEMM)", times_s: scoreTimes,
                     throughput: Double(scoreX.rows) / Timing.median(scoreTimes), throughput_unit: "samples/s",
                     key: key + String(format: "; %.0f%% of the GEMM bound", 100 * efficiency)),
            BenchRow(workload: "W3 mahalanobis", peer: "GEMM bound: the score's TRMM and GEMM calls alone", times_s: boundTimes,
                     throughput: Double(scoreX.rows) / Timing.median(boundTimes), throughput_unit: "samples/s", key: ""),
        ]
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "samples/s", digits: 0)
    }

    /// The BLAS-3 work of scoring alone, on the same `Linalg.blockedProduct` blocks as the score: per block
    /// the whitening TRMM (in place on a copy of the rows, in the prologue) and the GEMM against the
    /// whitened means; no centring, norms, minimum or checks (an empty epilogue).
    static func blasCallsAlone(_ x: Matrix<Float>, _ detector: MahalanobisDetector) throws {
        let d = x.columns, k = detector.whitenedMeans.rows
        x.withUnsafeBufferPointer { px in
            detector.whitening.withUnsafeBufferPointer { pw in
                detector.whitenedMeans.withUnsafeBufferPointer { pm in
                    let (source, whitening) = (px.baseAddress!, MatrixPointer(pw.baseAddress!, rows: d, columns: d))
                    Linalg.blockedProduct(rows: x.rows, depth: d, prologue: { rows, z, backend in
                        z.base.update(from: source + rows.lowerBound * d, count: rows.count * d)
                        Linalg.multiplyTriangular(whitening, z, side: .right, transL: .transposed, backend: backend)
                    }, MatrixPointer(pm.baseAddress!, rows: k, columns: d), transB: .transposed) { _ in }
                }
            }
        }
    }
}
