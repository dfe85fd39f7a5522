import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation

/// `faultline bench calibration`: W5's ECE from logits and temperature fit on 1M × 10 logits.
struct CalibrationBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibration",
        abstract: "Time 15-bin ECE from logits and the temperature fit on W5's 1,000,000 × 10 logits.",
        discussion: "Reads DATA/calib_logits.npy and DATA/calib_labels.npy (Benchmarks/peers/make_data.py). The ECE row includes the softmax, as the peers' rows do.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        guard let data = options.data else { throw ValidationError("give --data DIR (written by Benchmarks/peers/make_data.py)") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let logits = try NPY.readMatrix(data + "/calib_logits.npy", as: Float.self)
        let labels = try NPY.read(data + "/calib_labels.npy").values(as: Double.self).map { Int($0) }
        let n = Double(logits.rows)
        var ece: [Double] = [], fit: [Double] = []
        var metrics: CalibrationMetrics?, scaling: TemperatureScaling?
        for round in 0...options.reps {
            let a = try Timing.seconds { metrics = try CalibrationMetrics.compute(logits: logits, labels: labels, binning: .equalWidthRightClosed(bins: 15)) }
            let b = try Timing.seconds { scaling = try TemperatureScaling.fit(logits: logits, labels: labels) }
            if round > 0 { ece.append(a); fit.append(b) }
        }
        let m = metrics!, t = scaling!
        let rows = [
            BenchRow(workload: "W5 calibration", peer: "ECE: faultline softmax + 15-bin ECE, bins (lo,hi]", times_s: ece,
                     throughput: n / Timing.median(ece), throughput_unit: "samples/s", key: String(format: "ECE %.6f (accuracy %.4f)", m.ece, m.accuracy)),
            BenchRow(workload: "W5 calibration", peer: "temperature: faultline safeguarded Newton on 1/T (float64)", times_s: fit,
                     throughput: n / Timing.median(fit), throughput_unit: "samples/s",
                     key: String(format: "T %.5f, NLL %.6f (T=1: %.6f), %d iterations", t.temperature, t.nllAfter, t.nllBefore, t.iterations)),
        ]
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "samples/s", digits: 0)
    }
}
