import ArgumentParser
import FaultlineLinalg
import FaultlineReliability
import Foundation

/// `faultline bench conformal-regression`: split conformal regression on n calibration scores
/// (default 10⁶), the peer being MAPIE 1.6 (Benchmarks/peers/mapie_regression_peer.py).
struct ConformalRegressionBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformal-regression",
        abstract: "Time split conformal regression (residual, CQR) on n calibration rows.",
        discussion: """
            Draws n calibration rows (ŷ ~ N(0, 1), y = ŷ + N(0, 1); CQR bands ŷ ± 1.2) and n test rows with a \
            seeded Philox stream, then times at α = 0.1: the residual calibration (n scores and their k-th \
            smallest), the n test intervals, and the CQR calibration. Compare with \
            Benchmarks/peers/mapie_regression_peer.py (MAPIE's conformalize and predict_interval).
            """)

    @OptionGroup var options: BenchOptions
    @Option(help: "Calibration (and test) rows.") var n = 1_000_000

    func run() throws {
        guard n >= 10, n <= 100_000_000 else { throw ValidationError("--n must lie in 10…100000000") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        var rng = Philox(seed: 18)
        let pred = (0..<n).map { _ in rng.normal() }, y = pred.map { $0 + rng.normal() }, test = (0..<n).map { _ in rng.normal() }
        let lo = pred.map { $0 - 1.2 }, hi = pred.map { $0 + 1.2 }
        var residual: [Double] = [], intervals: [Double] = [], cqr: [Double] = []
        var cp: ConformalRegression?, band: ConformalRegression?, width = 0.0
        for round in 0...options.reps {
            let a = try Timing.seconds { cp = try ConformalRegression(predictions: pred, targets: y, alpha: 0.1) }
            let b = try Timing.seconds { let r = try cp!.intervals(test); width = r.upper[0] - r.lower[0] }
            let c = try Timing.seconds { band = try ConformalRegression(lower: lo, upper: hi, targets: y, alpha: 0.1) }
            if round > 0 { residual.append(a); intervals.append(b); cqr.append(c) }
        }
        let rows = [
            BenchRow(workload: "conformal regression", peer: "faultline residual calibration: n scores + k-th smallest", times_s: residual,
                     throughput: Double(n) / Timing.median(residual), throughput_unit: "rows/s", key: String(format: "q %.6f (k %d of %d)", cp!.quantile, cp!.rank, n)),
            BenchRow(workload: "conformal regression", peer: "faultline residual intervals for n test rows", times_s: intervals,
                     throughput: Double(n) / Timing.median(intervals), throughput_unit: "rows/s", key: String(format: "width %.6f", width)),
            BenchRow(workload: "conformal regression", peer: "faultline CQR calibration: n scores + k-th smallest", times_s: cqr,
                     throughput: Double(n) / Timing.median(cqr), throughput_unit: "rows/s", key: String(format: "q %.6f", band!.quantile)),
        ]
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "rows/s", digits: 0)
    }
}
