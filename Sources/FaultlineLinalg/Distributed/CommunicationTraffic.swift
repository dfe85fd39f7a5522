import CFaultline
#if canImport(Glibc)
import Glibc
#endif

/// What this rank sent through MPI, per collective: calls, payload bytes it contributed and wall time
/// inside the calls. Recorded by `MPICommunicator` when `FAULTLINE_MPI_STATS=1`, and printed by each rank
/// to stderr when the process exits (one line per rank: `faultline: rank r of K: MPI_Allreduce 4 calls,
/// 96 B, 0.12 ms; …`). Bytes are what the rank puts in: an allreduce's elements, a gather's own part
/// (plus the 8-byte count every gatherv exchanges first), a broadcast's payload at the root. Used to
/// check that a distributed analysis sends O(1) bytes per rank where it merges statistics and O(N/K)
/// where it gathers rows (docs/SCALING.md).
public enum CommunicationTraffic {
    /// One collective's totals on this rank.
    public struct Entry: Sendable, Equatable {
        /// The number of calls (rounds of a split message count once per round).
        public var calls = 0
        /// Payload bytes this rank contributed.
        public var bytes = 0
        /// Wall time inside the calls, in seconds.
        public var seconds = 0.0
    }

    /// Whether `FAULTLINE_MPI_STATS=1` asks for the record.
    public static let enabled: Bool = getenv("FAULTLINE_MPI_STATS").map { String(cString: $0) == "1" } ?? false
    /// The totals per collective (MPI's name), in first-use order; collectives are issued from one thread.
    nonisolated(unsafe) public private(set) static var entries: [(name: String, entry: Entry)] = []

    /// Runs one collective call `body`, recording `bytes` under `name` when enabled.
    static func record<R>(_ name: String, bytes: Int, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let result = try body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
        if let i = entries.firstIndex(where: { $0.name == name }) {
            entries[i].entry.calls += 1
            entries[i].entry.bytes += bytes
            entries[i].entry.seconds += seconds
        } else {
            entries.append((name, Entry(calls: 1, bytes: bytes, seconds: seconds)))
        }
        return result
    }

    /// This rank's line: every collective's calls, bytes and milliseconds.
    public static func summary(rank: Int, size: Int) -> String {
        let parts = entries.map { e in
            "\(e.name) \(e.entry.calls) calls, \(e.entry.bytes) B, \((e.entry.seconds * 1e5).rounded() / 100) ms"
        }
        return "faultline: rank \(rank) of \(size): " + (parts.isEmpty ? "no collectives" : parts.joined(separator: "; "))
    }

    /// Prints `summary` to stderr at exit (registered once by `Communicators.world()` when enabled).
    nonisolated(unsafe) static var job: (rank: Int, size: Int) = (0, 1)
    static func printAtExit(rank: Int, size: Int) {
        job = (rank, size)
        atexit {
            let line = CommunicationTraffic.summary(rank: CommunicationTraffic.job.rank, size: CommunicationTraffic.job.size) + "\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }
}
