import FaultlineLinalg
import FaultlineReport
import Foundation

/// Wall-clock timing for benchmarks: one untimed warm-up, then `reps` timed runs.
enum Timing {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + 1e-9 * Double(ts.tv_nsec)
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = now()
        try body()
        return now() - start
    }

    static func median(_ xs: [Double]) -> Double {
        precondition(!xs.isEmpty, "median of no timings")
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }
}

/// One result row: what `run_peers.py --external` reads from a `FLROW {json}` line.
struct BenchRow: Codable {
    var workload: String
    var peer: String
    var times_s: [Double]
    var throughput: Double
    var throughput_unit: String
    var key: String

    var median: Double { Timing.median(times_s) }

    var flrowLine: String { (try? "FLROW " + JSONOutput.line(self)) ?? "" }
}

/// How every benchmark reports: one JSON document (`--json`), or a table, the summary lines, and the
/// FLROW lines for run_peers.py (`--flrow`).
struct BenchReport: Codable {
    var system: SystemReport
    var rows: [BenchRow]
    var summary: [String]

    /// `unit` heads the throughput column; `digits` formats it.
    func emit(_ options: BenchOptions, unit: String, digits: Int) throws {
        if options.json {
            print(try JSONOutput.string(self))
            return
        }
        print(TextTable.grid(
            header: ["workload", "implementation", "median s", unit, "key"],
            rows: rows.map { [$0.workload, $0.peer, String(format: "%.4f", $0.median), String(format: "%.\(digits)f", $0.throughput), $0.key] }))
        if !summary.isEmpty { print(summary.joined(separator: "\n")) }
        if options.flrow { rows.forEach { print($0.flrowLine) } }
    }
}
