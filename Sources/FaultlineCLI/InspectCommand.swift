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

    func run() throws {
        var summaries: [ArraySummary] = []
        for file in files {
            do {
                summaries += try ArraySummary.summaries(of: file)
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
}
