import ArgumentParser
import FaultlineLinalg
import FaultlineReport
import Foundation

/// `faultline info`: what runs where (backend, libraries, OpenBLAS core, threads, CPU).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the backend, BLAS/LAPACK libraries, OpenBLAS core type, threads and CPU features.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let report = SystemReport.current()
        if json {
            print(try JSONOutput.string(report))
        } else {
            print(report.table)
        }
    }
}
