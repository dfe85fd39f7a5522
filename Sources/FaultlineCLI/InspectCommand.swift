import ArgumentParser
import FaultlineIO
import FaultlineReport
import Foundation

/// `faultline inspect FILE…`: what is in a data file, with summary statistics per array.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the arrays in .npy, .npz, .safetensors, IDX (.idx, .gz) or CSV files with shape, dtype and statistics.",
        discussion: """
            For each array: shape, dtype, element count, minimum, maximum and mean of the finite values, and \
            the number of NaN and infinite values. The format is chosen by file extension. Exit code 2 when a file is malformed; the \
            message names the file and what is wrong.
            """)

    @Argument(help: "Files to inspect.")
    var files: [String]

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct ArraySummary: Codable {
        var file: String
        var name: String
        var shape: [Int]
        var dtype: String
        var count: Int
        var min: Double?
        var max: Double?
        var mean: Double?
        var nan: Int
        var infinite: Int
    }

    func run() throws {
        var summaries: [ArraySummary] = []
        for file in files {
            do {
                if let streamed = try streamedSummary(of: file) {
                    summaries.append(streamed)
                } else {
                    for (name, tensor) in try arrays(in: file) { summaries.append(summarize(file, name, tensor)) }
                }
            } catch let error as IOError {
                printError("faultline inspect: \(error)")
                throw ExitCode(2)
            }
        }
        if json {
            print(try JSONOutput.string(summaries))
            return
        }
        func number(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "-" }
        print(TextTable.grid(
            header: ["file", "array", "shape", "dtype", "min", "max", "mean", "NaN", "inf"],
            rows: summaries.map {
                [$0.file, $0.name, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", $0.dtype,
                 number($0.min), number($0.max), number($0.mean), String($0.nan), String($0.infinite)]
            }))
    }

    private func arrays(in file: String) throws -> [(String, Tensor)] {
        try FileAccess.checkRegularFile(file)  // a directory, FIFO or empty path says so, not "unknown extension"
        let lower = file.lowercased()
        if lower.hasSuffix(".npy") { return [("array", try NPY.read(file))] }
        if lower.hasSuffix(".npz") { return try NPZ.read(file).map { ($0.name, $0.tensor) } }
        if lower.hasSuffix(".safetensors") { return try SafeTensors.read(file).tensors.map { ($0.name, $0.tensor) } }
        if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") {
            let table = try CSV.read(file, options: .init(delimiter: lower.hasSuffix(".tsv") ? "\t" : ","))
            return [("table", Tensor(table.features))]
        }
        if lower.contains("idx") || lower.hasSuffix(".gz") { return [("array", try IDX.read(file))] }
        throw IOError(.unsupportedFeature, file: file, "unknown extension (expected .npy, .npz, .safetensors, .csv, .tsv, IDX)")
    }

    /// A `.npy` of rank ≥ 1 in C order, summarised in row blocks straight from its memory mapping (a file
    /// larger than memory works, and the peak memory is the file's pages plus one block); nil for
    /// anything else.
    private func streamedSummary(of file: String) throws -> ArraySummary? {
        guard file.lowercased().hasSuffix(".npy") else { return nil }
        try FileAccess.checkRegularFile(file)
        let header = try NPY.read(file, headerOnly: true)
        guard !header.shape.isEmpty, header.count > 0 else { return nil }
        let columns = max(1, header.count / max(header.shape[0], 1))
        let blocks: NPYRowBlocks<Double>
        do {
            blocks = try NPY.rowBlocks(file, blockRows: max(1, (1 << 20) / columns), as: Double.self)
        } catch let error as IOError where error.kind == .unsupportedFeature {
            return nil  // Fortran order: read whole below
        }
        var stats = Statistics()
        for block in blocks { block.withUnsafeBufferPointer { for x in $0 { stats.add(x) } } }
        return stats.summary(file: file, name: "array", shape: header.shape, dtype: header.dtype.rawValue, count: header.count)
    }

    /// Minimum, maximum and mean of the finite values, and the NaN and ±∞ counts.
    struct Statistics {
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, nan = 0, inf = 0, finite = 0
        mutating func add(_ x: Double) {
            if x.isNaN { nan += 1; return }
            if x.isInfinite { inf += 1; return }
            lo = Swift.min(lo, x)
            hi = Swift.max(hi, x)
            sum += x
            finite += 1
        }
        func summary(file: String, name: String, shape: [Int], dtype: String, count: Int) -> ArraySummary {
            let any = finite > 0
            return ArraySummary(file: file, name: name, shape: shape, dtype: dtype, count: count, min: any ? lo : nil, max: any ? hi : nil,
                                mean: any ? sum / Double(finite) : nil, nan: nan, infinite: inf)
        }
    }

    private func summarize(_ file: String, _ name: String, _ t: Tensor) -> ArraySummary {
        var stats = Statistics()
        for i in 0..<t.count { stats.add(t.double(at: i)) }
        return stats.summary(file: file, name: name, shape: t.shape, dtype: t.dtype.rawValue, count: t.count)
    }
}
