import ArgumentParser
import FaultlineIO
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
                for (name, tensor) in try arrays(in: file) { summaries.append(summarize(file, name, tensor)) }
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

    private func summarize(_ file: String, _ name: String, _ t: Tensor) -> ArraySummary {
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, nan = 0, inf = 0, finite = 0
        for i in 0..<t.count {
            let x = t.double(at: i)
            if x.isNaN { nan += 1; continue }
            if x.isInfinite { inf += 1; continue }
            lo = Swift.min(lo, x)
            hi = Swift.max(hi, x)
            sum += x
            finite += 1
        }
        let any = finite > 0
        return ArraySummary(file: file, name: name, shape: t.shape, dtype: t.dtype.rawValue, count: t.count,
                            min: any ? lo : nil, max: any ? hi : nil, mean: finite > 0 ? sum / Double(finite) : nil,
                            nan: nan, infinite: inf)
    }
}
