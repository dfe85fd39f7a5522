import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import Foundation

/// `faultline bench io`: how fast a large `.npy` becomes usable data.
struct IOBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io",
        abstract: "Time reading a large .npy (W4's 400 MB ens_probs.npy by default): mapped matrix + one full pass, and row-block streaming.",
        discussion: """
            GB/s counts the file's data bytes. 'mapped + pass' opens the file as a matrix over a private \
            memory mapping and sums every element (so every page is really read); 'row blocks' copies the \
            array block by block into matrices. Files come from the page cache after the warm-up.
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "A .npy file to read instead of DATA/ens_probs.npy.")
    var file: String?

    @Option(help: "Rows per block for the streaming reader.")
    var blockRows = 4096

    func validate() throws {
        guard file != nil || options.data != nil else { throw ValidationError("give --data DIR (from Benchmarks/peers/make_data.py) or --file PATH") }
        guard blockRows > 0 else { throw ValidationError("--block-rows must be positive") }
    }

    func run() throws {
        let path = file ?? options.data! + "/ens_probs.npy"
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let header = try NPY.read(path, headerOnly: true)
        let bytes = Double(header.count * header.dtype.size)
        var checksum = 0.0
        var mapped: [Double] = [], streamed: [Double] = []
        for round in 0...options.reps {
            let t = try Timing.seconds {
                let m = try NPY.readMatrix(path, as: Float.self)
                checksum = try Linalg.reduceRows(m, .sum).reduce(0) { $0 + Double($1) }
            }
            let s = try Timing.seconds {
                var total = 0
                for block in try NPY.rowBlocks(path, blockRows: blockRows, as: Float.self) { total += block.count }
                precondition(total == header.count)
            }
            if round > 0 { mapped.append(t); streamed.append(s) }
        }
        let shape = header.shape.map(String.init).joined(separator: "×")
        let rows = [
            BenchRow(workload: "io npy", peer: "faultline NPY.readMatrix (mapped) + full pass", times_s: mapped,
                     throughput: bytes / Timing.median(mapped) / 1e9, throughput_unit: "GB/s", key: "\(shape) \(header.dtype), sum \(checksum)"),
            BenchRow(workload: "io npy", peer: "faultline NPY.rowBlocks (\(blockRows) rows, copied)", times_s: streamed,
                     throughput: bytes / Timing.median(streamed) / 1e9, throughput_unit: "GB/s", key: "\(shape) \(header.dtype)"),
        ]
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "GB/s", digits: 2)
    }
}
