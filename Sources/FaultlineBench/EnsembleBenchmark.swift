import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation

/// `faultline bench ensemble`: W4's uncertainty decomposition (M = 10, N = 100,000, C = 100) against the
/// memory-bandwidth bound measured in the same run.
struct EnsembleBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ensemble",
        abstract: "Time the ensemble uncertainty decomposition on W4's ens_probs.npy against a streaming read of the same data.",
        discussion: """
            Reads DATA/ens_probs.npy ([M, N, C] float32, memory-mapped). The bound: a 2-thread SIMD sum over the same \
            bytes, timed in the same rounds. When DATA/peer_out/w4_ref_f64_mi.npy exists (Benchmarks/peers/run_peers.py), the largest \
            difference of the mutual information from the float64 reference is reported.
            """)

    @OptionGroup var options: BenchOptions

    func run() throws {
        guard let data = options.data else { throw ValidationError("give --data DIR (written by Benchmarks/peers/make_data.py)") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let header = try NPY.read(data + "/ens_probs.npy", headerOnly: true)
        guard header.shape.count == 3 else { throw ValidationError("ens_probs.npy must be [M, N, C], got \(header.shape)") }
        let (m, n, c) = (header.shape[0], header.shape[1], header.shape[2])
        let stacked = try NPY.readMatrix(data + "/ens_probs.npy", as: Float.self)
        let bytes = Double(stacked.count * 4)
        var result: EnsembleUncertainty?
        var ours: [Double] = [], bound: [Double] = [], single: [Double] = [], singleBound: [Double] = []
        var checksum: Float = 0
        let threads = Linalg.simdThreads
        for round in 0...options.reps {
            let t = try Timing.seconds { result = try EnsembleUncertainty.compute(stacked: stacked, members: m, classes: c, includeMean: false) }
            let b = Timing.seconds { checksum = Self.streamingSum(stacked) }
            // The same on one thread, in the same rounds: the thread speed-up of the pass and of the read.
            let (t1, b1) = try threads > 1 ? Linalg.withThreads(1) {
                (try Timing.seconds { result = try EnsembleUncertainty.compute(stacked: stacked, members: m, classes: c, includeMean: false) },
                 Timing.seconds { checksum = Self.streamingSum(stacked) })
            } : (t, b)
            if round > 0 { ours.append(t); bound.append(b); single.append(t1); singleBound.append(b1) }
        }
        let r = result!
        let meanMI = r.mutualInformation.reduce(0, +) / Double(n)
        let meanH = r.predictiveEntropy.reduce(0, +) / Double(n)
        let meanVar = r.meanVariance.reduce(0, +) / Double(n)
        var key = String(format: "mean MI %.5f, mean H %.4f, mean var %.3e", meanMI, meanH, meanVar)
        if let reference = try? NPY.read(data + "/peer_out/w4_ref_f64_mi.npy").values(as: Double.self), reference.count == n {
            key += String(format: "; max|err MI| vs f64 %.1e", zip(r.mutualInformation, reference).map { abs($0 - $1) }.max() ?? 0)
        }
        let efficiency = Timing.median(bound) / Timing.median(ours)
        let tier = Linalg.kernelTier().rawValue
        var rows = [
            BenchRow(workload: "W4 ensemble", peer: "faultline EnsembleUncertainty (\(Self.threadCount(threads)), \(tier) tier)", times_s: ours,
                     throughput: bytes / Timing.median(ours) / 1e9, throughput_unit: "GB/s", key: key),
            BenchRow(workload: "W4 ensemble", peer: "bandwidth bound: SIMD sum of the same bytes (\(Self.threadCount(threads)))", times_s: bound,
                     throughput: bytes / Timing.median(bound) / 1e9, throughput_unit: "GB/s", key: "checksum \(checksum)"),
        ]
        var summary = [String(format: "decomposition reaches %.1f%% of the measured read bandwidth (%d × %d × %d float32)", 100 * efficiency, m, n, c)]
        if threads > 1 {
            rows.append(BenchRow(workload: "W4 ensemble", peer: "faultline EnsembleUncertainty (1 thread, \(tier) tier)", times_s: single,
                                 throughput: bytes / Timing.median(single) / 1e9, throughput_unit: "GB/s", key: "thread speed-up ×" + String(format: "%.2f", Timing.median(single) / Timing.median(ours))))
            rows.append(BenchRow(workload: "W4 ensemble", peer: "bandwidth bound: SIMD sum (1 thread)", times_s: singleBound,
                                 throughput: bytes / Timing.median(singleBound) / 1e9, throughput_unit: "GB/s", key: "thread speed-up ×" + String(format: "%.2f", Timing.median(singleBound) / Timing.median(bound))))
            summary.append(String(format: "thread speed-up %d vs 1: pass ×%.2f, read ×%.2f", threads, Timing.median(single) / Timing.median(ours),
                                  Timing.median(singleBound) / Timing.median(bound)))
        }
        try BenchReport(system: system, rows: rows, summary: summary).emit(options, unit: "GB/s", digits: 2)
    }

    /// "1 thread", "2 threads": the label of a row timed with `count` threads.
    static func threadCount(_ count: Int) -> String { count == 1 ? "1 thread" : "\(count) threads" }

    /// A 2-thread SIMD sum over the matrix's bytes: how fast they can be read at all.
    static func streamingSum(_ a: Matrix<Float>) -> Float {
        let tasks = Linalg.simdThreads
        var partial = [Float](repeating: 0, count: tasks)
        a.withUnsafeBufferPointer { p in
            partial.withUnsafeMutableBufferPointer { out in
                let base = p.baseAddress!, count = p.count, o = out.baseAddress!
                Linalg.parallelForEach(tasks) { t in
                    let lo = (t * count / tasks) & ~31, hi = t == tasks - 1 ? count : ((t + 1) * count / tasks) & ~31
                    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
                    var i = lo
                    while i + 32 <= hi {
                        let r = UnsafeRawPointer(base + i)
                        s0 += r.loadUnaligned(as: SIMD8<Float>.self)
                        s1 += r.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                        s2 += r.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
                        s3 += r.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
                        i += 32
                    }
                    var s = (s0 + s1 + s2 + s3).sum()
                    while i < hi { s += base[i]; i += 1 }
                    o[t] = s
                }
            }
        }
        return partial.reduce(0, +)
    }
}
