import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineRobustness
import FaultlineShift
import Foundation

/// `faultline bench mmd`: W6's MMD permutation test (2 × 2,000 rows, 64 features, 500 permutations).
struct MMDBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmd",
        abstract: "Time the MMD² permutation test on W6 (2,000 + 2,000 rows, d = 64, the 500 given permutations).",
        discussion: """
            Reads DATA/mmd_x.npy, mmd_y.npy and mmd_perms.npy (Benchmarks/peers/make_data.py). With DATA/peer_out/w6_null_ref_f64.npy \
            (Benchmarks/peers/run_peers.py) the largest difference of the null statistics from the float64 reference is reported.
            """)

    @OptionGroup var options: BenchOptions

    func run() throws {
        guard let data = options.data else { throw ValidationError("give --data DIR (written by Benchmarks/peers/make_data.py)") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let x = try NPY.readMatrix(data + "/mmd_x.npy", as: Float.self)
        let y = try NPY.readMatrix(data + "/mmd_y.npy", as: Float.self)
        let table = try NPY.read(data + "/mmd_perms.npy")
        let width = table.shape.last ?? 0
        let flat = table.values(as: Double.self).map { Int($0) }
        let perms = stride(from: 0, to: flat.count, by: width).map { Array(flat[$0..<($0 + width)]) }
        var result: MMDTest.Result?
        var times: [Double] = []
        for round in 0...options.reps {
            let t = try Timing.seconds { result = try MMDTest.run(x, y, permutations: perms) }
            if round > 0 { times.append(t) }
        }
        let r = result!
        if PhaseClock.enabled && !options.json {  // FAULTLINE_PHASE_TIMES=1: the last run's phases
            print("phases (last run): " + PhaseClock.last.map { String(format: "%@ %.4f s", $0.phase, $0.seconds) }.joined(separator: ", "))
        }
        var key = String(format: "sigma2 %.4f, MMD2 %.4e, p %.4f", r.sigma2, r.mmd2, r.pValue)
        if let reference = try? NPY.read(data + "/peer_out/w6_null_ref_f64.npy").values(as: Double.self), reference.count == r.null.count {
            key += String(format: "; max|null-ref| %.1e", zip(r.null, reference).map { abs($0 - $1) }.max() ?? 0)
        }
        let rows = [BenchRow(workload: "W6 mmd", peer: "faultline: lower blocks of K once, all \(perms.count) permutations, one GEMM per block and column tile", times_s: times,
                             throughput: Double(perms.count) / Timing.median(times), throughput_unit: "perm/s", key: key)]
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "perm/s", digits: 0)
    }
}
