import ArgumentParser
import FaultlineLinalg
import FaultlineReport
import Foundation

/// `faultline info`: what runs where (backend, libraries, OpenBLAS core, threads, CPU, MPI).
struct InfoCommand: ParsableCommand, DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the backend, BLAS/LAPACK libraries, OpenBLAS core type, threads, CPU features and MPI job.",
        discussion: "Under mpirun, rank 0 prints the MPI library, the job size and each rank's host.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    /// The MPI part of the report.
    struct MPIReport: Codable, Equatable {
        var launched: Bool; var active: Bool; var rank: Int; var size: Int
        var library: String?; var version: String?; var error: String?
        /// The host of each rank, in rank order (one entry when not launched by mpirun).
        var hosts: [String]
    }

    /// The system report with an `mpi` key added.
    struct Report: Encodable {
        var system: SystemReport
        var mpi: MPIReport
        enum Key: String, CodingKey { case mpi }
        func encode(to encoder: Encoder) throws {
            try system.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(mpi, forKey: .mpi)
        }
    }

    func run() throws {
        let s = Communicators.status()
        let host = ProcessInfo.processInfo.hostName
        let hosts = try Job.world.allgathervPerRank(Array(host.utf8)).map { String(decoding: $0, as: UTF8.self) }
        guard !Job.quiet else { return }
        let mpi = MPIReport(launched: s.launched, active: s.active, rank: s.rank, size: s.size, library: s.library, version: s.version,
                            error: s.error, hosts: hosts)
        let report = SystemReport.current()
        if json {
            print(try JSONOutput.string(Report(system: report, mpi: mpi)))
        } else {
            print(report.table)
            print(Self.mpiLines(mpi))
        }
    }

    /// "MPI: not launched by mpirun", or the library, rank, size and hosts.
    static func mpiLines(_ m: MPIReport) -> String {
        guard m.launched else { return "MPI: not launched by mpirun (one process; libmpi not loaded)" }
        guard m.active else { return "MPI: launched by mpirun, but unavailable: \(m.error ?? "unknown error")" }
        var counts: [String: Int] = [:]
        for h in m.hosts { counts[h, default: 0] += 1 }
        let placement = counts.keys.sorted().map { "\($0) ×\(counts[$0]!)" }.joined(separator: ", ")
        return "MPI: rank \(m.rank) of \(m.size), \(m.library ?? "?")\n" + "MPI library: \(m.version ?? "?")\n" + "MPI hosts: \(placement)"
    }
}
