import FaultlineLinalg
import Foundation

/// K ranks of a job simulated by K threads of this process, with the `Communicator` collectives
/// implemented over shared memory: lets the distributed analyses be tested for K = 1, 2, 3… without
/// MPI, in the same order of collectives an MPI job would run them. Each collective is one exchange:
/// every rank deposits its bytes, waits for all K, reads them all, and waits again before the slots are
/// reused. A rank that calls a collective the others never call blocks: tests run with a timeout.
public final class SimulatedJob: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var slots: [[UInt8]?]
    private var arrived = 0, generation = 0, departed = 0
    private var results: [[UInt8]] = []

    init(size: Int) {
        self.size = size
        slots = [[UInt8]?](repeating: nil, count: size)
    }

    /// Runs `body(communicator)` on `size` threads, one per rank, and returns each rank's result in rank
    /// order (a thrown error is returned as `.failure`). Fails with a fatal error after `timeout` seconds
    /// (a collective some rank never reached).
    public static func run<T>(ranks size: Int, timeout: Double = 60, _ body: @escaping @Sendable (any Communicator) throws -> T) -> [Result<T, Error>] {
        precondition(size >= 1)
        let job = SimulatedJob(size: size)
        let box = ResultBox<T>(count: size)
        let group = DispatchGroup()
        for r in 0..<size {
            group.enter()
            let thread = Thread {
                let result = Result { try body(SimulatedCommunicator(job: job, rank: r)) }
                box.set(r, result)
                group.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        guard group.wait(timeout: .now() + timeout) == .success else { fatalError("SimulatedJob: ranks did not finish in \(timeout) s (a collective not called by every rank?)") }
        return box.values.map { $0! }
    }

    /// Every rank's bytes, in rank order, on every rank.
    func exchange(_ bytes: [UInt8], rank: Int) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        // Wait until the previous exchange has been read by every rank.
        while departed > 0 { condition.wait() }
        slots[rank] = bytes
        arrived += 1
        let mine = generation
        if arrived == size {
            results = slots.map { $0! }
            slots = [[UInt8]?](repeating: nil, count: size)
            arrived = 0
            departed = size
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        let out = results
        departed -= 1
        if departed == 0 { condition.broadcast() }
        return out
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Result<T, Error>?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<T, Error>) { lock.lock(); storage[i] = value; lock.unlock() }
    var values: [Result<T, Error>?] { lock.lock(); defer { lock.unlock() }; return storage }
}

/// One rank of a `SimulatedJob`.
public struct SimulatedCommunicator: Communicator {
    let job: SimulatedJob
    public let rank: Int
    public var size: Int { job.size }

    public func allreduce(_ values: [Double], _ operation: ReduceOperation) throws -> [Double] {
        let all = try allgathervPerRank(values)
        // Reduced in rank order on every rank (MPI fixes no order; this one is deterministic).
        return values.indices.map { i in
            all.dropFirst().reduce(all[0][i]) { acc, v in operation == .sum ? acc + v[i] : operation == .max ? Swift.max(acc, v[i]) : Swift.min(acc, v[i]) }
        }
    }

    public func allreduce(_ values: [Int], _ operation: ReduceOperation) throws -> [Int] {
        let all = try allgathervPerRank(values)
        return values.indices.map { i in
            all.dropFirst().reduce(all[0][i]) { acc, v in operation == .sum ? acc &+ v[i] : operation == .max ? Swift.max(acc, v[i]) : Swift.min(acc, v[i]) }
        }
    }

    public func allgathervBytes(_ bytes: [UInt8]) throws -> [[UInt8]] { job.exchange(bytes, rank: rank) }

    public func gathervBytes(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        guard root >= 0 && root < size else { throw CommunicatorError.invalidRoot(root, size: size) }
        let all = job.exchange(bytes, rank: rank)
        return rank == root ? all : nil
    }

    public func bcastBytes(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        guard root >= 0 && root < size else { throw CommunicatorError.invalidRoot(root, size: size) }
        return job.exchange(rank == root ? bytes : [], rank: rank)[root]
    }

    public func barrier() throws { _ = job.exchange([], rank: rank) }

    public func abort(_ message: String, code: Int32) -> Never { fatalError("SimulatedCommunicator.abort(\(code)): \(message)") }
}
