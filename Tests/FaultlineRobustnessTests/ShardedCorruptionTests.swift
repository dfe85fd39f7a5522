import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// The corruption sweep over the shards of a data set (each with its `sampleOffset`) is the sweep of the
/// whole set: the same corrupted rows bit for bit, counts that add up to the whole set's, and so the same
/// table — what `faultline corrupt` under mpirun relies on.
@Suite("corruption sweep over shards")
struct ShardedCorruptionTests {
    static let shape = ImageShape(channels: 1, height: 8, width: 8)
    /// 61 digits rows (odd), pixel intensities in [0, 1].
    static let data: (x: Matrix<Float>, y: [Int]) = {
        let digits = try! BundledDatasets.digits().subset(Array(0..<61))
        return (digits.features, digits.labels)
    }()

    /// Shards of 23, 0, 1 and 37 rows: every corruption at severities 1, 3 and 5, two seeds.
    @Test(arguments: [UInt64(0), 7])
    func shardsWithTheirOffsetsGiveTheWholeSetsSweep(seed: UInt64) throws {
        let (x, y) = Self.data, model = APGDTests.model, levels = [1, 3, 5]
        let whole = try CorruptionSweep.evaluate(model, x, labels: y, shape: Self.shape, severities: levels, seed: seed)
        let wholeCounts = try CorruptionSweep.count(model, x, labels: y, shape: Self.shape, severities: levels, seed: seed)
        let wholeCopies = try CorruptionSweep.copies(x, shape: Self.shape, corruptions: Corruption.allCases, severities: levels, seed: seed)
        var sum = CorruptionSweep.Counts(rows: 0, clean: 0, correct: [Int](repeating: 0, count: Corruption.allCases.count * levels.count))
        var copies = [[UInt32]](repeating: [], count: wholeCopies.count)
        for r in [0..<23, 23..<23, 23..<24, 24..<61] {
            let part = x.gatherRows(Array(r)), labels = Array(y[r])
            let counts = try CorruptionSweep.count(model, part, labels: labels, shape: Self.shape, severities: levels, seed: seed, sampleOffset: r.lowerBound)
            #expect(counts.rows == r.count && counts.correct.allSatisfy { $0 <= r.count })
            sum = try sum.adding(counts)
            let mine = try CorruptionSweep.copies(part, shape: Self.shape, corruptions: Corruption.allCases, severities: levels, seed: seed,
                                                  sampleOffset: r.lowerBound)
            #expect(mine.map(\.name) == wholeCopies.map(\.name))
            for k in copies.indices { copies[k] += try mine[k].tensor.matrix(Float.self).elements.map(\.bitPattern) }
        }
        #expect(sum == wholeCounts)
        let merged = try CorruptionSweep.report(sum, corruptions: Corruption.allCases, severities: levels)
        #expect(merged.cleanAccuracy == whole.cleanAccuracy && merged.cells == whole.cells)
        #expect(try copies == wholeCopies.map { try $0.tensor.matrix(Float.self).elements.map(\.bitPattern) })
        // The accuracies are the counts over the rows, as `evaluate` has always computed them.
        #expect(whole.cells.map(\.accuracy) == wholeCounts.correct.map { Double($0) / 61 })
        // Informative: the corruptions change some predictions, and a random corruption's copy of a row
        // depends on its index (the shard without its offset gets other draws).
        #expect(whole.cells.contains { $0.accuracy < whole.cleanAccuracy })
        let tail = x.gatherRows(Array(24..<61))
        let unkeyed = try Corruption.gaussianNoise.apply(to: tail, shape: Self.shape, severity: 5, seed: seed)
        let keyed = try Corruption.gaussianNoise.apply(to: tail, shape: Self.shape, severity: 5, seed: seed, sampleOffset: 24)
        #expect(unkeyed != keyed)
        #expect(keyed == (try Corruption.gaussianNoise.apply(to: x, shape: Self.shape, severity: 5, seed: seed)).sliceRows(24..<61))
    }

    /// Counts of another grid, a table of the wrong size and a negative offset are refused, not trapped.
    @Test func mismatchedCountsAndOffsetsAreRefused() throws {
        let (x, y) = Self.data
        let a = CorruptionSweep.Counts(rows: 2, clean: 1, correct: [1, 2]), b = CorruptionSweep.Counts(rows: 1, clean: 1, correct: [0])
        #expect(throws: AttackError.self) { try a.adding(b) }
        #expect(try a.adding(a) == CorruptionSweep.Counts(rows: 4, clean: 2, correct: [2, 4]))
        #expect(throws: AttackError.self) { try CorruptionSweep.report(a, corruptions: [.contrast], severities: [1, 2, 3]) }
        #expect(throws: AttackError.self) { try Corruption.contrast.apply(to: x, shape: Self.shape, severity: 1, sampleOffset: -1) }
        #expect(throws: AttackError.self) { try CorruptionSweep.count(APGDTests.model, x, labels: y, shape: Self.shape, severities: [0]) }
        // No rows: nothing counted, the table reads 0 (as `evaluate` of an empty set).
        let empty = try CorruptionSweep.count(APGDTests.model, x.sliceRows(0..<0), labels: [], shape: Self.shape, severities: [2], sampleOffset: 61)
        #expect(empty == CorruptionSweep.Counts(rows: 0, clean: 0, correct: [Int](repeating: 0, count: Corruption.allCases.count)))
        #expect(try CorruptionSweep.report(empty, corruptions: Corruption.allCases, severities: [2]).cleanAccuracy == 0)
    }
}
