import FaultlineLinalg
import FaultlineShift
import Foundation
import Testing

/// Train/test duplicates against a brute-force float64 search over families of inputs: planted exact
/// and near duplicates, ties (repeated rows, all rows equal), n = 0 and 1, large offsets, labels with
/// conflicts, and NaN refused.
@Suite("train/test duplicates")
struct TrainTestDuplicatesTests {
    /// Every (test, train) squared distance in Double, written independently of the library.
    static func distances(_ train: Matrix<Float>, _ test: Matrix<Float>) -> [[Double]] {
        (0..<test.rows).map { i in
            (0..<train.rows).map { j in
                var s = 0.0
                for t in 0..<train.columns { let e = Double(test[i, t]) - Double(train[j, t]); s += e * e }
                return s
            }
        }
    }

    /// The brute-force answer: per test row, the training rows with squared distance ≤ threshold², by
    /// (distance, index), at most `maxPairs`.
    static func reference(_ train: Matrix<Float>, _ test: Matrix<Float>, threshold: Double, maxPairs: Int) -> [[(Int, Double)]] {
        distances(train, test).map { row in
            Array(row.indices.filter { row[$0] <= threshold * threshold }
                .sorted { row[$0] < row[$1] || (row[$0] == row[$1] && $0 < $1) }
                .prefix(maxPairs).map { ($0, row[$0].squareRoot()) })
        }
    }

    static func medianNearest(_ train: Matrix<Float>) -> Double {
        let d = distances(train, train)
        let nearest = d.indices.map { i in d[i].indices.filter { $0 != i }.map { d[i][$0] }.min()!.squareRoot() }.sorted()
        let n = nearest.count
        return n % 2 == 1 ? nearest[n / 2] : (nearest[n / 2 - 1] + nearest[n / 2]) / 2
    }

    /// Random train rows (offset to test the centring), test rows half fresh, a quarter exact copies of
    /// train rows, a quarter copies moved by ~1e-3.
    static func data(train m: Int, test n: Int, d: Int, seed: UInt64, offset: Float = 0) -> (Matrix<Float>, Matrix<Float>) {
        var rng = Philox(seed: seed)
        let train = (0..<m).map { _ in (0..<d).map { _ in Float(rng.normal()) + offset } }
        let test: [[Float]] = (0..<n).map { i in
            let src = train[Int(rng.uniform() * Double(m)) % m]
            switch i % 4 {
            case 0: return src
            case 1: return src.map { $0 + Float(rng.normal() * 1e-3) }
            default: return (0..<d).map { _ in Float(rng.normal()) + offset }
            }
        }
        return (try! Matrix(rows: m, columns: d, elements: train.joined()), try! Matrix(rows: n, columns: d, elements: test.joined()))
    }

    static func check(_ r: TrainTestDuplicates, _ train: Matrix<Float>, _ test: Matrix<Float>, maxPairs: Int, exactIndices: Bool) {
        let ref = reference(train, test, threshold: r.threshold, maxPairs: maxPairs)
        let all = distances(train, test)
        var byTest = [[TrainTestDuplicates.Pair]](repeating: [], count: test.rows)
        for p in r.pairs { byTest[p.test].append(p) }
        for i in 0..<test.rows {
            #expect(byTest[i].map(\.distance) == ref[i].map(\.1), "test row \(i)")
            if exactIndices { #expect(byTest[i].map(\.train) == ref[i].map(\.0), "test row \(i)") }
            for p in byTest[i] {
                #expect(all[i][p.train].squareRoot() == p.distance)
                #expect(p.exact == (p.distance == 0))
            }
        }
        #expect(r.exactDuplicateTestRows == ref.filter { $0.contains { $0.1 == 0 } }.count)
        #expect(r.nearDuplicateTestRows == ref.filter { !$0.isEmpty }.count)
    }

    @Test(arguments: [(1, 1, 3), (2, 1, 1), (7, 5, 4), (40, 33, 8), (300, 101, 16), (1000, 64, 64), (513, 257, 5)])
    func pairsEqualBruteForce(_ m: Int, _ n: Int, _ d: Int) throws {
        for offset: Float in [0, 100] {
            let (train, test) = Self.data(train: m, test: n, d: d, seed: UInt64(m * 31 + n), offset: offset)
            for rule in [TrainTestDuplicates.Threshold.absolute(0), .absolute(0.01), .absolute(0.5)] + (m >= 2 ? [.relativeToMedianNeighbour(0.1)] : []) {
                let r = try TrainTestDuplicates.find(train: train, test: test, threshold: rule, maxPairsPerTestRow: 3)
                if case .relativeToMedianNeighbour(let f) = rule {
                    #expect(r.medianTrainNeighbourDistance == Self.medianNearest(train))
                    #expect(r.threshold == Self.medianNearest(train) * f)
                }
                Self.check(r, train, test, maxPairs: 3, exactIndices: true)
                #expect(r.exactDuplicateTestRows >= (n + 3) / 4 || m < 2)
            }
        }
    }

    /// Repeated training rows and all-equal rows: distances and counts exact; which of the tied indices
    /// are reported may differ from the brute force's lowest-index choice only among equal distances.
    @Test(arguments: [1, 2, 5, 40, 200])
    func tiesAndAllEqualRows(_ m: Int) throws {
        let row: [Float] = [1, 2, 3]
        let train = try Matrix(rows: m, columns: 3, elements: (0..<m).flatMap { _ in row })
        let test = try Matrix(rows: 3, columns: 3, elements: row + [1, 2, 3.5] + [-0.0, 0, 0])
        for maxPairs in [1, 3, 10] {
            let r = try TrainTestDuplicates.find(train: train, test: test, threshold: .absolute(0.5), maxPairsPerTestRow: maxPairs)
            Self.check(r, train, test, maxPairs: maxPairs, exactIndices: false)
            #expect(Set(r.pairs.map(\.train)).count == r.pairs.count / max(1, Set(r.pairs.map(\.test)).count))
            #expect(r.exactDuplicateTestRows == 1 && r.nearDuplicateTestRows == 2)
            #expect(r.truncatedTestRows == (m > maxPairs ? 2 : 0))
        }
        // Relative threshold when every training row is equal: median nearest distance 0, so exact only.
        if m >= 2 {
            let r = try TrainTestDuplicates.find(train: train, test: test, threshold: .relativeToMedianNeighbour(1))
            #expect(r.medianTrainNeighbourDistance == 0 && r.threshold == 0)
            #expect(r.nearDuplicateTestRows == 1)
        }
        // −0 and +0 are equal values: an exact duplicate.
        let zeros = try Matrix<Float>(rows: 1, columns: 3, elements: [0, -0.0, 0])
        let z = try TrainTestDuplicates.find(train: zeros, test: try Matrix(rows: 1, columns: 3, elements: [-0.0, 0, 0]), threshold: .absolute(0))
        #expect(z.exactDuplicateTestRows == 1 && z.pairs.first?.distance == 0)
    }

    /// The median over a sample of training rows (row ⌊i·M/s⌋) equals the brute force over those rows.
    @Test(arguments: [(300, 50), (301, 7), (40, 2), (10, 100)])
    func sampledMedian(_ m: Int, _ s: Int) throws {
        let (train, test) = Self.data(train: m, test: 5, d: 6, seed: UInt64(m + s))
        let r = try TrainTestDuplicates.find(train: train, test: test, threshold: .relativeToMedianNeighbour(1), medianSampleRows: s)
        let d = Self.distances(train, train), count = min(s, m)
        let rows = count == m ? Array(0..<m) : (0..<count).map { $0 * m / count }
        let nearest = rows.map { i in d[i].indices.filter { $0 != i }.map { d[i][$0] }.min()!.squareRoot() }.sorted()
        let median = nearest.count % 2 == 1 ? nearest[nearest.count / 2] : (nearest[nearest.count / 2 - 1] + nearest[nearest.count / 2]) / 2
        #expect(r.medianTrainNeighbourDistance == median)
    }

    @Test func labelConflictsAreCounted() throws {
        let train = try Matrix<Float>(rows: 4, columns: 2, elements: [0, 0, 1, 1, 5, 5, 9, 9])
        let test = try Matrix<Float>(rows: 4, columns: 2, elements: [0, 0, 1, 1, 5, 5.001, 20, 20])
        let r = try TrainTestDuplicates.find(train: train, test: test, threshold: .absolute(0.01), trainLabels: [0, 1, 2, 3], testLabels: [0, 7, 9, 3])
        #expect(r.exactDuplicateTestRows == 2 && r.nearDuplicateTestRows == 3)
        #expect(r.exactLabelConflicts == 1 && r.nearLabelConflicts == 2)
        #expect(r.pairs.map(\.labelsDiffer) == [false, true, true])
        let unlabelled = try TrainTestDuplicates.find(train: train, test: test, threshold: .absolute(0.01))
        #expect(unlabelled.exactLabelConflicts == nil && unlabelled.pairs.allSatisfy { $0.labelsDiffer == nil })
    }

    @Test func emptyTestAndOneRowSets() throws {
        let train = try Matrix<Float>(rows: 1, columns: 2, elements: [1, 2])
        let empty = try TrainTestDuplicates.find(train: train, test: Matrix(rows: 0, columns: 2), threshold: .absolute(1))
        #expect(empty.pairs.isEmpty && empty.testRows == 0 && empty.nearDuplicateTestRows == 0)
        let one = try TrainTestDuplicates.find(train: train, test: train, threshold: .absolute(0))
        #expect(one.pairs.count == 1 && one.pairs[0].test == 0 && one.pairs[0].train == 0 && one.pairs[0].distance == 0 && one.pairs[0].exact && one.pairs[0].labelsDiffer == nil)
    }

    @Test func badInputsAreRefused() throws {
        let train = try Matrix<Float>(rows: 2, columns: 2, elements: [1, 2, 3, 4])
        func refuses(_ fragment: String, _ body: () throws -> Void) {
            #expect {
                try body()
            } throws: { error in
                (error as? ShiftError)?.description.contains(fragment) == true
            }
        }
        refuses("test row 1, feature 0 is nan") { _ = try TrainTestDuplicates.find(train: train, test: try Matrix(rows: 2, columns: 2, elements: [1, 2, .nan, 4])) }
        refuses("training row 0, feature 1 is inf") { _ = try TrainTestDuplicates.find(train: try Matrix(rows: 1, columns: 2, elements: [1, .infinity]), test: train) }
        refuses("3 features, training rows 2") { _ = try TrainTestDuplicates.find(train: train, test: Matrix(rows: 1, columns: 3)) }
        refuses("no rows") { _ = try TrainTestDuplicates.find(train: Matrix(rows: 0, columns: 2), test: train) }
        refuses("at least 2 training rows") { _ = try TrainTestDuplicates.find(train: Matrix(rows: 1, columns: 2), test: train, threshold: .relativeToMedianNeighbour(0.1)) }
        refuses("must be finite") { _ = try TrainTestDuplicates.find(train: train, test: train, threshold: .absolute(-1)) }
        refuses("must be finite") { _ = try TrainTestDuplicates.find(train: train, test: train, threshold: .absolute(.nan)) }
        refuses("training labels") { _ = try TrainTestDuplicates.find(train: train, test: train, trainLabels: [1]) }
        refuses("must be ≥ 1") { _ = try TrainTestDuplicates.find(train: train, test: train, maxPairsPerTestRow: 0) }
        refuses("split the test set") {
            _ = try TrainTestDuplicates.find(train: Matrix(rows: 40, columns: 1), test: Matrix(rows: TrainTestDuplicates.maxCandidates / 40 + 1, columns: 1),
                                             threshold: .absolute(0), maxPairsPerTestRow: 40)
        }
    }

    /// Bit-identical for 1 and 2 threads on every backend (several 256-row blocks, ragged last ones,
    /// a relative threshold so the train-vs-train search runs too).
    @Test func threadCountsAgree() throws {
        let (train, test) = Self.data(train: 900, test: 700, d: 10, seed: 8)
        for backend in Backend.allCases where backend.isAvailable {
            let run = { try TrainTestDuplicates.find(train: train, test: test, threshold: .relativeToMedianNeighbour(0.5), backend: backend) }
            let one = try Linalg.withThreads(1, run), two = try Linalg.withThreads(2, run)
            #expect(one == two, "\(backend)")
            #expect(one.medianTrainNeighbourDistance!.bitPattern == two.medianTrainNeighbourDistance!.bitPattern)
        }
    }

    /// The same pairs on every backend and thread count (the GEMM ranking differs; the exact stage not).
    @Test func backendsAgree() throws {
        let (train, test) = Self.data(train: 700, test: 300, d: 12, seed: 3)
        let base = try TrainTestDuplicates.find(train: train, test: test, threshold: .absolute(0.2), backend: .reference)
        for backend in [Backend.simd, .blas] where backend.isAvailable {
            #expect(try TrainTestDuplicates.find(train: train, test: test, threshold: .absolute(0.2), backend: backend) == base)
        }
    }
}
