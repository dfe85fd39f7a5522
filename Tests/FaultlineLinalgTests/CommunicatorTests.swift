import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

@Suite("Communicator and RowSplit")
struct CommunicatorTests {
    struct Boom: Error, CustomStringConvertible { var description: String }

    /// One process: every collective returns its input; agree rethrows the error itself.
    @Test func singleProcessIsTheIdentity() throws {
        let c = SingleProcessCommunicator()
        #expect(c.rank == 0 && c.size == 1)
        #expect(try c.allreduce([1.5, -2], .sum) == [1.5, -2])
        #expect(try c.allreduce([3, 4], .max) == [3, 4])
        #expect(try c.allgatherv([1, 2, 3] as [Int]) == [1, 2, 3])
        #expect(try c.gatherv([Float(1), 2], root: 0) == [1, 2])
        #expect(try c.bcast("text") == "text")
        #expect(throws: CommunicatorError.invalidRoot(1, size: 1)) { try c.gatherv([1.0], root: 1) }
        let m = try Matrix<Float>(rows: 2, columns: 3, elements: [1, 2, 3, 4, 5, 6])
        #expect(try c.gatherRows(m)! == m)
        #expect(throws: Boom.self) { try c.agree { throw Boom(description: "x") } }
        #expect(try c.agree { 7 } == 7)
    }

    /// Not launched by mpirun: the world is one process and libmpi is never loaded.
    @Test func worldWithoutMpirunIsOneProcessAndLoadsNoMPI() throws {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OMPI_COMM_WORLD_SIZE"] == nil && environment["PMIX_RANK"] == nil else { return }
        let world = try Communicators.world()
        #expect(world is SingleProcessCommunicator)
        let status = Communicators.status()
        #expect(!status.launched && !status.active && status.rank == 0 && status.size == 1 && status.library == nil)
        let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
        #expect(!maps.contains("libmpi"))
    }

    /// The collectives of K simulated ranks: sums, extremes, uneven gathers (ranks with nothing), roots, broadcasts.
    @Test(arguments: [1, 2, 3, 4])
    func collectivesOfSimulatedRanks(ranks: Int) throws {
        let results = SimulatedJob.run(ranks: ranks) { c -> Bool in
            let r = c.rank, k = c.size
            let sums = try c.allreduce([Double(r), 1, -Double(r) * 0.5], .sum)
            guard sums == [Double(k * (k - 1) / 2), Double(k), -Double(k * (k - 1)) / 4] else { return false }
            guard try c.allreduce([r, -r], .max) == [k - 1, 0], try c.allreduce([r, -r], .min) == [0, -(k - 1)] else { return false }
            // Rank r sends r values r, r, …: rank 0 sends none.
            let all: [Int] = try c.allgatherv([Int](repeating: r, count: r))
            let expected = (0..<k).flatMap { i in [Int](repeating: i, count: i) }
            guard all == expected else { return false }
            let root = k - 1
            let gathered: [Double]? = try c.gatherv([Double](repeating: Double(r), count: (r + 1) % 2), root: root)
            guard (r == root) == (gathered != nil) else { return false }
            let odd = (0..<k).filter { i in (i + 1) % 2 == 1 }.map(Double.init)
            if let gathered, gathered != odd { return false }
            guard try c.bcast(r == root ? "from \(r)" : "ignored", root: root) == "from \(root)" else { return false }
            let m = try Matrix<Float>(rows: r, columns: 2, elements: (0..<(2 * r)).map { Float(100 * r + $0) })
            let rows = try c.allgatherRows(m)
            guard rows.rows == k * (k - 1) / 2, rows.columns == 2 else { return false }
            try c.barrier()
            return true
        }
        for (r, result) in results.enumerated() { #expect(try result.get(), "rank \(r) of \(ranks)") }
    }

    /// A rank that fails inside agree: every rank throws the same RankFailure naming it; column mismatches likewise.
    @Test(arguments: [2, 3])
    func agreedFailuresNameTheRank(ranks: Int) throws {
        let results = SimulatedJob.run(ranks: ranks) { c -> Int in
            try c.agree { if c.rank == 1 { throw Boom(description: "bad shard on one") } }
            return 0
        }
        for result in results {
            #expect(throws: RankFailure.self) { try result.get() }
            if case .failure(let error as RankFailure) = result {
                #expect(error.description == "rank 1 of \(ranks): bad shard on one")
                #expect(error.failures.map(\.rank) == [1] && error.failures.map(\.message) == ["bad shard on one"])
            }
        }
        let same = SimulatedJob.run(ranks: ranks) { c -> Int in try c.agree { throw Boom(description: "missing file") } }
        for result in same {
            if case .failure(let error as RankFailure) = result {
                #expect(error.description == "ranks \((0..<ranks).map(String.init).joined(separator: ", ")) of \(ranks): missing file")
            } else { Issue.record("expected a RankFailure") }
        }
        let mismatch = SimulatedJob.run(ranks: ranks) { c -> Int in
            _ = try c.gatherRows(Matrix<Double>(rows: 1, columns: 2 + c.rank))
            return 0
        }
        for result in mismatch { #expect(throws: LinalgError.self) { try result.get() } }
    }

    /// Both splits cover 0..<N once, contiguous in rank order; even sizes differ by ≤ 1; block-aligned
    /// ranges start and end on the one-process reduction blocks.
    @Test func rowSplitsCoverTheRowsOnce() {
        for n in [0, 1, 2, 3, 5, 63, 64, 65, 127, 128, 129, 1000, 4097] {
            for k in [1, 2, 3, 4, 5, 7, 64, 70] {
                let even = (0..<k).map { RowSplit.even(rows: n, rank: $0, size: k) }
                let aligned = (0..<k).map { RowSplit.blockAligned(rows: n, rank: $0, size: k) }
                for split in [even, aligned] {
                    #expect(split.first!.lowerBound == 0 && split.last!.upperBound == n, "n \(n) k \(k)")
                    #expect(zip(split, split.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "n \(n) k \(k)")
                }
                let sizes = even.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1)
                let parts = min(n, Linalg.reductionParts)
                let starts = Set((0..<parts).map { Linalg.partition(n, parts: parts, part: $0).lowerBound } + [n])
                #expect(aligned.allSatisfy { starts.contains($0.lowerBound) && starts.contains($0.upperBound) }, "n \(n) k \(k)")
                for r in 0..<k {
                    let blocks = RowSplit.blockRange(rows: n, rank: r, size: k)
                    let rows = blocks.isEmpty ? aligned[r].count : blocks.map { Linalg.partition(n, parts: parts, part: $0).count }.reduce(0, +)
                    #expect(rows == aligned[r].count)
                }
            }
        }
    }
}
