import CFaultline
#if canImport(Glibc)
import Glibc
#endif

/// How `Communicator.allreduce` combines the ranks' values, element by element.
public enum ReduceOperation: Sendable, CaseIterable {
    /// Element-wise sum, maximum or minimum over the ranks.
    case sum, max, min
}

/// The ranks of a job and the collectives between them: what the distributed analyses take.
///
/// Every collective must be called by every rank of the job, in the same order (as in MPI); the results
/// are in rank order. Two implementations: `SingleProcessCommunicator` (rank 0 of 1: every collective is
/// the identity, so an analysis given it computes exactly what it computes without one) and
/// `MPICommunicator` (Open MPI loaded at run time, see `Communicators.world()`).
///
/// The primitives move bytes; the typed methods in the extension (`allgatherv`, `gatherv`, `bcast` of
/// `Float`, `Double`, `Int`…) are built on them. Transfers of any size work: they are split into rounds
/// that fit MPI's `int` counts.
public protocol Communicator: Sendable {
    /// This process's rank, 0 ..< size.
    var rank: Int { get }
    /// The number of ranks (≥ 1).
    var size: Int { get }
    /// Element-wise reduction over the ranks, the result on every rank. Throws `CommunicatorError`.
    func allreduce(_ values: [Double], _ operation: ReduceOperation) throws -> [Double]
    /// Element-wise reduction of integers over the ranks (exact; overflow wraps as in MPI).
    func allreduce(_ values: [Int], _ operation: ReduceOperation) throws -> [Int]
    /// Every rank's bytes, concatenated in rank order, on every rank.
    func allgathervBytes(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// Every rank's bytes on `root` (in rank order), nil on the other ranks.
    func gathervBytes(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]?
    /// `root`'s bytes on every rank (the argument is ignored elsewhere).
    func bcastBytes(_ bytes: [UInt8], root: Int) throws -> [UInt8]
    /// Returns when every rank has called it.
    func barrier() throws
    /// Prints `message` to stderr and ends every rank of the job with exit status `code` (never returns).
    func abort(_ message: String, code: Int32) -> Never
}

/// Errors of the collectives: an MPI call that failed, or an argument that cannot be sent.
public enum CommunicatorError: Error, Equatable, CustomStringConvertible, Sendable {
    /// MPI returned an error code from the named call.
    case mpiFailed(call: String, code: Int32)
    /// A root rank outside 0 ..< size.
    case invalidRoot(Int, size: Int)
    /// Launched by mpirun, but Open MPI could not be loaded or initialised (the message says why).
    case unavailable(String)

    public var description: String {
        switch self {
        case .mpiFailed(let call, let code): return "\(call) failed with MPI error code \(code)"
        case .invalidRoot(let root, let size): return "root rank \(root) is outside 0..<\(size)"
        case .unavailable(let why):
            return "launched by mpirun, but MPI is unavailable: \(why) (install Open MPI's libmpi.so.40, or set FAULTLINE_MPI=/path/libmpi.so)"
        }
    }
}

extension Communicator {
    /// Every rank's values, concatenated in rank order, on every rank.
    public func allgatherv<T: BitwiseCopyable>(_ values: [T]) throws -> [T] {
        try allgathervBytes(Self.bytes(values)).flatMap { Self.values($0, T.self) }
    }

    /// Every rank's values as one array per rank, on every rank.
    public func allgathervPerRank<T: BitwiseCopyable>(_ values: [T]) throws -> [[T]] {
        try allgathervBytes(Self.bytes(values)).map { Self.values($0, T.self) }
    }

    /// Every rank's values, concatenated in rank order, on `root`; nil elsewhere.
    public func gatherv<T: BitwiseCopyable>(_ values: [T], root: Int = 0) throws -> [T]? {
        try gathervBytes(Self.bytes(values), root: root)?.flatMap { Self.values($0, T.self) }
    }

    /// `root`'s values on every rank.
    public func bcast<T: BitwiseCopyable>(_ values: [T], root: Int = 0) throws -> [T] {
        Self.values(try bcastBytes(Self.bytes(values), root: root), T.self)
    }

    /// `root`'s string on every rank.
    public func bcast(_ text: String, root: Int = 0) throws -> String {
        String(decoding: try bcastBytes(Array(text.utf8), root: root), as: UTF8.self)
    }

    /// Runs `body` on every rank and agrees on the outcome with one collective: when it threw on any rank,
    /// every rank throws the same `RankFailure` naming each failed rank and its error; otherwise returns
    /// `body`'s value. On a single process `body`'s own error is rethrown unchanged. Call it around each rank-local step (reading a shard, computing on it) before the
    /// collectives that use its result, so that a rank that fails never leaves the others waiting.
    public func agree<T>(_ body: () throws -> T) throws -> T {
        guard size > 1 else { return try body() }  // one process: the error itself, unchanged
        var value: T?
        var message = ""
        do { value = try body() } catch {
            message = "\(error)"
            if message.isEmpty { message = String(describing: type(of: error)) }
        }
        // One byte of status first, so an empty message still counts as a failure.
        let all = try allgathervBytes((value == nil ? [1] : [0]) + Array(message.utf8))
        let failures = all.enumerated().compactMap { r, bytes in
            bytes.first == 1 ? (rank: r, message: String(decoding: bytes.dropFirst(), as: UTF8.self)) : nil
        }
        guard failures.isEmpty, let value else { throw RankFailure(failures: failures, size: size) }
        return value
    }

    static func bytes<T: BitwiseCopyable>(_ values: [T]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    static func values<T: BitwiseCopyable>(_ bytes: [UInt8], _: T.Type) -> [T] {
        let n = bytes.count / MemoryLayout<T>.stride
        return [T](unsafeUninitializedCapacity: n) { buffer, count in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(n * MemoryLayout<T>.stride)]))
            }
            count = n
        }
    }
}

/// One or more ranks failed a step that `Communicator.agree` guarded; every rank throws the same value.
public struct RankFailure: Error, CustomStringConvertible, Sendable, Equatable {
    /// The failure of one rank.
    public struct Failure: Sendable, Equatable {
        /// The rank that failed.
        public var rank: Int
        /// Its error's description.
        public var message: String
    }
    /// Every failed rank, in rank order.
    public var failures: [Failure]
    /// The number of ranks in the job.
    public var size: Int

    /// The failure of every rank with the same message: for a step whose error depends only on data every
    /// rank holds (after an all-gather), so that every rank throws it without communicating.
    public init(everyRank message: String, size: Int) {
        self.init(failures: (0..<size).map { (rank: $0, message: message) }, size: size)
    }

    init(failures: [(rank: Int, message: String)], size: Int) {
        self.failures = failures.map { Failure(rank: $0.rank, message: $0.message) }
        self.size = size
    }

    /// "rank 1 of 3: MESSAGE" — one clause per distinct message, "; " between them; ranks that failed
    /// with the same message share a clause ("ranks 0, 1 of 3: MESSAGE").
    public var description: String {
        var order: [String] = [], ranks: [String: [Int]] = [:]
        for f in failures {
            if ranks[f.message] == nil { order.append(f.message) }
            ranks[f.message, default: []].append(f.rank)
        }
        return order.map { message in
            let r = ranks[message]!
            return "\(r.count == 1 ? "rank" : "ranks") \(r.map(String.init).joined(separator: ", ")) of \(size): \(message)"
        }.joined(separator: "; ")
    }
}

/// One process: rank 0 of 1. Every collective returns its own input.
public struct SingleProcessCommunicator: Communicator {
    /// The communicator of a process that runs alone.
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduce(_ values: [Double], _ operation: ReduceOperation) throws -> [Double] { values }
    public func allreduce(_ values: [Int], _ operation: ReduceOperation) throws -> [Int] { values }
    public func allgathervBytes(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func gathervBytes(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        guard root == 0 else { throw CommunicatorError.invalidRoot(root, size: 1) }
        return [bytes]
    }
    public func bcastBytes(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        guard root == 0 else { throw CommunicatorError.invalidRoot(root, size: 1) }
        return bytes
    }
    public func barrier() throws {}
    public func abort(_ message: String, code: Int32) -> Never {
        fl_mpi_abort(code, message)
        exit(code)
    }
}

/// The ranks of an Open MPI job (`MPI_COMM_WORLD`), through the run-time loaded shim (`fl_mpi.h`).
/// Obtain it from `Communicators.world()`; MPI is initialised once per process and finalised at exit.
///
/// Gathers whose total fits MPI's `int` are one call into one buffer; larger ones are split into rounds
/// of at most 2²⁸ bytes in total, reductions and broadcasts into rounds of 2²⁶ elements. Rounds are
/// collective, so every rank runs the same number of them.
public struct MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    /// Bytes moved by one gather round over all ranks (bounds the temporary buffer).
    static let roundBytes = Swift.min(1 << 28, maxMessage)
    static let roundElements = Swift.max(1, Swift.min(1 << 26, maxMessage / 8))
    /// The largest message sent in one call (bytes): MPI's `int` limit, or `FAULTLINE_MPI_MAX_MESSAGE` when
    /// set lower (so that tests exercise the rounds with small data).
    static let maxMessage: Int = {
        if let raw = getenv("FAULTLINE_MPI_MAX_MESSAGE"), let n = Int(String(cString: raw)), n >= 8 { return Swift.min(n, Int(Int32.max)) }
        return Int(Int32.max)
    }()

    init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code == 0 else { throw CommunicatorError.mpiFailed(call: call, code: code) }
    }

    private func checkRoot(_ root: Int) throws {
        guard root >= 0 && root < size else { throw CommunicatorError.invalidRoot(root, size: size) }
    }

    public func allreduce(_ values: [Double], _ operation: ReduceOperation) throws -> [Double] {
        var out = values
        try reduceInPlace(&out, FL_MPI_DOUBLE, operation)
        return out
    }

    public func allreduce(_ values: [Int], _ operation: ReduceOperation) throws -> [Int] {
        var out = values
        try reduceInPlace(&out, FL_MPI_INT64, operation)
        return out
    }

    private func reduceInPlace<T>(_ values: inout [T], _ type: fl_mpi_type, _ operation: ReduceOperation) throws {
        let op: fl_mpi_op = operation == .sum ? FL_MPI_SUM : operation == .max ? FL_MPI_MAX : FL_MPI_MIN
        let total = values.count
        // Every rank must make the same calls: the element count is the caller's contract (as in MPI).
        try values.withUnsafeMutableBufferPointer { buffer in
            var first = 0
            repeat {
                let n = Swift.min(Self.roundElements, total - first)
                try CommunicationTraffic.record("MPI_Allreduce", bytes: n * 8) {
                    try Self.check(fl_mpi_allreduce(buffer.baseAddress.map { UnsafeMutableRawPointer($0 + first) }, Int32(n), type, op), "MPI_Allreduce")
                }
                first += n
            } while first < total
        }
    }

    /// The byte count of every rank (one allgather of Int64).
    private func byteCounts(_ count: Int) throws -> [Int] {
        var mine = Int64(count)
        var all = [Int64](repeating: 0, count: size)
        try all.withUnsafeMutableBytes { out in
            try CommunicationTraffic.record("MPI_Allgather", bytes: 8) {
                try Self.check(fl_mpi_allgather(&mine, 1, out.baseAddress, FL_MPI_INT64), "MPI_Allgather")
            }
        }
        return all.map { Int($0) }
    }

    /// One gatherv/allgatherv when every count and the total fit MPI's `int`, straight into one buffer
    /// (never zero-filled); otherwise rounds: in round j each rank sends bytes [j·chunk, (j+1)·chunk) of
    /// its own through a scratch buffer of at most `roundBytes`.
    private func gatherRounds(_ bytes: [UInt8], root: Int?) throws -> [[UInt8]]? {
        let counts = try byteCounts(bytes.count)
        let receives = root == nil || root == rank
        let total = counts.reduce(0, +)
        if total <= Self.maxMessage {
            var displacements = [Int32](repeating: 0, count: size)
            for r in 1..<size { displacements[r] = displacements[r - 1] + Int32(counts[r - 1]) }
            let partCounts = counts.map { Int32($0) }
            let all = try [UInt8](unsafeUninitializedCapacity: receives ? total : 0) { receive, initialized in
                try bytes.withUnsafeBytes { send in
                    try CommunicationTraffic.record(root == nil ? "MPI_Allgatherv" : "MPI_Gatherv", bytes: bytes.count) {
                        if let root {
                            try Self.check(fl_mpi_gatherv(send.baseAddress, Int32(bytes.count), receive.baseAddress, partCounts, displacements, FL_MPI_BYTE,
                                                          Int32(root)), "MPI_Gatherv")
                        } else {
                            try Self.check(fl_mpi_allgatherv(send.baseAddress, Int32(bytes.count), receive.baseAddress, partCounts, displacements,
                                                             FL_MPI_BYTE), "MPI_Allgatherv")
                        }
                    }
                }
                initialized = receives ? total : 0
            }
            guard receives else { return nil }
            return (0..<size).map { r in Array(all[Int(displacements[r])..<(Int(displacements[r]) + counts[r])]) }
        }
        var out: [[UInt8]] = receives ? counts.map { [UInt8](repeating: 0, count: $0) } : []
        let chunk = Swift.max(1, Swift.min(Self.roundBytes / size, counts.max()!))
        let rounds = (counts.max()! + chunk - 1) / chunk
        var scratch = [UInt8](repeating: 0, count: receives ? chunk * size : 0)
        for j in 0..<rounds {
            let part = counts.map { Swift.max(0, Swift.min(chunk, $0 - j * chunk)) }
            let displacements = (0..<size).map { Int32($0 * chunk) }
            let partCounts = part.map { Int32($0) }
            let start = Swift.min(j * chunk, bytes.count), n = part[rank]
            try bytes.withUnsafeBytes { send in
                try scratch.withUnsafeMutableBytes { receive in
                    let sendPointer = send.baseAddress.map { $0 + start }
                    try CommunicationTraffic.record(root == nil ? "MPI_Allgatherv" : "MPI_Gatherv", bytes: n) {
                    if let root {
                        try Self.check(fl_mpi_gatherv(sendPointer, Int32(n), receive.baseAddress, partCounts, displacements, FL_MPI_BYTE, Int32(root)),
                                       "MPI_Gatherv")
                    } else {
                        try Self.check(fl_mpi_allgatherv(sendPointer, Int32(n), receive.baseAddress, partCounts, displacements, FL_MPI_BYTE),
                                       "MPI_Allgatherv")
                    }
                    }
                }
            }
            if receives {
                for r in 0..<size where part[r] > 0 {
                    out[r].withUnsafeMutableBytes { dst in
                        scratch.withUnsafeBytes { src in
                            (dst.baseAddress! + j * chunk).copyMemory(from: src.baseAddress! + r * chunk, byteCount: part[r])
                        }
                    }
                }
            }
        }
        return receives ? out : nil
    }

    public func allgathervBytes(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try gatherRounds(bytes, root: nil)!
    }

    public func gathervBytes(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        try checkRoot(root)
        return try gatherRounds(bytes, root: root)
    }

    public func bcastBytes(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try checkRoot(root)
        var count = [Int64(bytes.count)]
        try count.withUnsafeMutableBytes { try Self.check(fl_mpi_bcast($0.baseAddress, 1, FL_MPI_INT64, Int32(root)), "MPI_Bcast") }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        let total = out.count
        try out.withUnsafeMutableBytes { buffer in
            var first = 0
            repeat {
                let n = Swift.min(Self.roundElements, total - first)
                try CommunicationTraffic.record("MPI_Bcast", bytes: rank == root ? n : 0) {
                    try Self.check(fl_mpi_bcast(buffer.baseAddress.map { $0 + first }, Int32(n), FL_MPI_BYTE, Int32(root)), "MPI_Bcast")
                }
                first += n
            } while first < total
        }
        return out
    }

    public func barrier() throws {
        try Self.check(fl_mpi_barrier(), "MPI_Barrier")
    }

    public func abort(_ message: String, code: Int32) -> Never {
        fl_mpi_abort(code, message)
        exit(code)  // not reached while MPI is active
    }
}

/// The communicator of this process.
public enum Communicators {
    /// The job this process belongs to: an `MPICommunicator` over `MPI_COMM_WORLD` when Open MPI's
    /// mpirun launched it (MPI is then loaded and initialised on this first call), else a
    /// `SingleProcessCommunicator` and libmpi is never loaded.
    /// - Throws: `CommunicatorError.unavailable` when launched by mpirun but libmpi cannot be loaded or
    ///   initialised (running every rank as a separate whole job would silently duplicate the work).
    public static func world() throws -> any Communicator {
        guard fl_mpi_launched() != 0 else { return SingleProcessCommunicator() }
        let status = fl_mpi_init()!.pointee
        guard status.active != 0 else { throw CommunicatorError.unavailable(cString(status.error)) }
        if CommunicationTraffic.enabled { CommunicationTraffic.printAtExit(rank: Int(status.rank), size: Int(status.size)) }
        return MPICommunicator(rank: Int(status.rank), size: Int(status.size))
    }

    /// What `faultline info` reports: whether mpirun launched this process, the library, version, rank and
    /// size (initialising MPI when launched), or why MPI is unavailable.
    public struct Status: Sendable, Codable, Equatable {
        /// Whether `mpirun` launched this process.
        public var launched: Bool
        /// Whether MPI is initialised and usable.
        public var active: Bool
        /// This process's rank (0 when not launched).
        public var rank: Int
        /// The number of ranks (1 when not launched).
        public var size: Int
        /// The MPI library's path, when loaded.
        public var library: String?
        /// The MPI library's version string, when loaded.
        public var version: String?
        /// Why MPI is unavailable, when it is.
        public var error: String?
    }

    /// The status of MPI in this process; initialises MPI when `mpirun` launched it.
    public static func status() -> Status {
        let s = (fl_mpi_launched() != 0 ? fl_mpi_init() : fl_mpi_status_get())!.pointee
        let library = cString(s.library), version = cString(s.version), error = cString(s.error)
        return Status(launched: s.launched != 0, active: s.active != 0, rank: Int(s.rank), size: Int(s.size),
                      library: library.isEmpty ? nil : library, version: version.isEmpty ? nil : version, error: error.isEmpty ? nil : error)
    }

    static func cString<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
