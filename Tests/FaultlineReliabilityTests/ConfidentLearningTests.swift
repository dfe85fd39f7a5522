import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// Confident learning against cleanlab 2.9.0 (scripts/fixtures/make_cleanlab_fixtures.py: a family of
/// 17 inputs — several K and n, probabilities at the thresholds, a class never confident as itself,
/// absent classes, duplicated rows, a one-row class, n = 2, 3), plus the invariants of each step on
/// inputs of our own.
@Suite("confident learning")
struct ConfidentLearningTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let fixture = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/cleanlab.npz").map { ($0.name, $0.tensor) })
    static let cases = Int(fixture["cases"]!.double(at: 0))

    static func doubles(_ name: String) -> [Double] { fixture[name]!.values(as: Double.self) }
    static func ints(_ name: String) -> [Int] { doubles(name).map { Int($0) } }
    static func square(_ name: String, _ k: Int) -> [[Int]] { let v = ints(name); return (0..<k).map { Array(v[($0 * k)..<($0 * k + k)]) } }
    static func squareD(_ name: String, _ k: Int) -> [[Double]] { let v = doubles(name); return (0..<k).map { Array(v[($0 * k)..<($0 * k + k)]) } }
    static func input(_ c: Int) -> (Matrix<Double>, [Int]) {
        (try! fixture["c\(c)_probs"]!.matrix(Double.self), ints("c\(c)_labels"))
    }

    static func maxDifference(_ a: [[Double]], _ b: [[Double]]) -> Double {
        zip(a.joined(), b.joined()).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func theFixtureFamilyIsThere() {
        #expect(Self.cases == 17)
    }

    /// Thresholds, both joints and the off-diagonal rows bit-equal to cleanlab's; the estimated joint,
    /// noise matrices and prior within 1e-12 (cleanlab's column sums over K ≥ 8 are pairwise, ours plain).
    @Test(arguments: 0..<17)
    func jointsEqualCleanlab(_ c: Int) throws {
        let (p, y) = Self.input(c)
        let k = p.columns
        let r = try ConfidentLearning.analyse(probabilities: p, labels: y)
        #expect(r.thresholds == Self.doubles("c\(c)_thresholds"), "case \(c)")
        #expect(r.confidentJointRaw == Self.square("c\(c)_cj_raw", k), "case \(c)")
        #expect(r.confidentJoint == Self.square("c\(c)_cj", k), "case \(c)")
        #expect(r.offDiagonal == Self.ints("c\(c)_offdiag"), "case \(c)")
        #expect(Self.maxDifference(r.joint, Self.squareD("c\(c)_joint", k)) <= 1e-15, "case \(c)")
        #expect(Self.maxDifference(r.noiseMatrix, Self.squareD("c\(c)_noise", k)) <= 1e-12, "case \(c)")
        #expect(Self.maxDifference(r.inverseNoiseMatrix, Self.squareD("c\(c)_inv_noise", k)) <= 1e-12, "case \(c)")
        #expect(zip(r.truePrior, Self.doubles("c\(c)_py")).allSatisfy { abs($0 - $1) <= 1e-12 }, "case \(c)")
        #expect(r.labelCounts == (0..<k).map { j in y.filter { $0 == j }.count })
    }

    /// The ranked issues (exact index lists, so both the set and the order) for both filters and both
    /// rankings, and the two label-quality scores (exact: the same float64 operations).
    @Test(arguments: 0..<17)
    func rankedIssuesEqualCleanlab(_ c: Int) throws {
        let (p, y) = Self.input(c)
        for (filter, f) in [(ConfidentLearning.Filter.pruneByNoiseRate, "pbnr"), (.confidentLearning, "cl"), (.pruneByClass, "pbc"), (.both, "both")] {
            for (ranking, s) in [(ConfidentLearning.Ranking.selfConfidence, "sc"), (.normalizedMargin, "nm")] {
                let r = try ConfidentLearning.analyse(probabilities: p, labels: y, filter: filter, ranking: ranking)
                #expect(r.issues == Self.ints("c\(c)_\(f)_\(s)"), "case \(c) \(f) \(s)")
                #expect(r.scores == Self.doubles("c\(c)_\(s)"), "case \(c) \(s)")
                #expect(try ConfidentLearning.qualityScores(probabilities: p, labels: y, ranking: ranking) == r.scores)
            }
        }
    }

    /// The same answer from float32 probabilities (the fixture values are float32-representable).
    @Test(arguments: [1, 7, 12])
    func floatInputGivesTheSameAnswer(_ c: Int) throws {
        let (p, y) = Self.input(c)
        let p32 = try p.withUnsafeBufferPointer { try Matrix<Float>(rows: p.rows, columns: p.columns, elements: $0.map { Float($0) }) }
        #expect(try ConfidentLearning.analyse(probabilities: p32, labels: y) == (try ConfidentLearning.analyse(probabilities: p, labels: y)))
    }

    /// Rounding preserving the sum: on a family of vectors (ties, halves, negatives' absence, sizes 1…12)
    /// the result sums to the rounded float sum and each entry is its value's floor or ceiling.
    @Test func roundingPreservesTheSum() {
        var rng = Philox(seed: 4)
        for size in 1...12 {
            for trial in 0..<200 {
                let x = (0..<size).map { _ in trial % 3 == 0 ? Double(Int(rng.uniform() * 8)) / 4 : rng.uniform() * 20 }
                let r = ConfidentLearning.roundPreservingSum(x)
                #expect(Double(r.reduce(0, +)) == PairwiseSum.sum(x).rounded(.toNearestOrEven))
                #expect(zip(x, r).allSatisfy { Double($1) == $0.rounded(.down) || Double($1) == $0.rounded(.up) })
            }
        }
        // Ties keep the stable rule: +1 goes to the latest of equal remainders, −1 to the earliest.
        #expect(ConfidentLearning.roundPreservingSum([0.25, 1.25, 2.25, 0.25]) == [0, 1, 2, 1])
        #expect(ConfidentLearning.roundPreservingSum([1.75, 0.75, 0.75, 0.75]) == [1, 1, 1, 1])
        #expect(ConfidentLearning.roundPreservingSum([0.5, 1.5, 2.5]) == [0, 2, 2])
    }

    /// NumPy's pairwise summation against a float64 sum of the same values on sizes 0…1000 (within the
    /// rounding of either), and bit-equal to a plain loop below 8 elements.
    @Test func pairwiseSumIsASum() {
        var rng = Philox(seed: 5)
        for n in [0, 1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 300, 1000] {
            let x = (0..<n).map { _ in rng.uniform() }
            let plain = x.reduce(0, +)
            #expect(abs(PairwiseSum.sum(x) - plain) <= 1e-13 * Double(max(n, 1)))
            if n < 8 { #expect(PairwiseSum.sum(x) == plain) }
        }
    }

    /// The calibrated joint's rows sum to the label counts and its total to n, on random inputs.
    @Test(arguments: [(5, 2), (33, 3), (400, 6), (1001, 11)])
    func calibratedRowsSumToLabelCounts(_ n: Int, _ k: Int) throws {
        var rng = Philox(seed: UInt64(n))
        var rows: [[Double]] = [], y: [Int] = []
        for i in 0..<n {
            var r = (0..<k).map { _ in rng.uniform() + 0.01 }
            let s = r.reduce(0, +)
            r = r.map { $0 / s }
            rows.append(r)
            y.append(i % 4 == 0 ? Int(rng.uniform() * Double(k)) % k : r.indices.max { r[$0] < r[$1] }!)
        }
        let r = try ConfidentLearning.analyse(probabilities: Matrix(rows), labels: y)
        #expect(r.confidentJoint.map { $0.reduce(0, +) } == r.labelCounts)
        #expect(r.confidentJoint.joined().reduce(0, +) == n)
        #expect(abs(r.joint.joined().reduce(0, +) - 1) <= 1e-12)
        for j in 0..<k { #expect(abs((0..<k).reduce(0.0) { $0 + r.noiseMatrix[$1][j] } - 1) <= 1e-12) }
        // Issues are a subset of the rows whose argmax is not the given label.
        for i in r.issues { #expect(rows[i].indices.max { rows[i][$0] < rows[i][$1] } != y[i]) }
        #expect(r.issues.map { r.scores[$0] } == r.issues.map { r.scores[$0] }.sorted())
    }

    @Test func badInputsAreRefusedWithTypedErrors() throws {
        let good = try Matrix<Double>([[0.7, 0.3], [0.2, 0.8]])
        func refuses(_ p: Matrix<Double>, _ y: [Int], _ fragment: String) {
            #expect {
                _ = try ConfidentLearning.analyse(probabilities: p, labels: y)
            } throws: { error in
                guard let e = error as? ReliabilityError else { return false }
                return e.description.contains(fragment)
            }
        }
        refuses(good, [0, 2], "outside 0..<2")
        refuses(good, [0, -1], "outside 0..<2")
        refuses(good, [0], "2 rows but 1")
        refuses(try Matrix([[0.7, .nan], [0.2, 0.8]]), [0, 1], "is not a probability")
        refuses(try Matrix([[0.7, 0.5], [0.2, 0.8]]), [0, 1], "sums to 1.2")
        refuses(try Matrix([[1.5, -0.5], [0.2, 0.8]]), [0, 1], "is not a probability")
        refuses(try Matrix([[1.0], [1.0]]), [0, 0], "need at least 2")
        refuses(Matrix(rows: 0, columns: 3), [], "no rows")
        refuses(Matrix(rows: 1, columns: ConfidentLearning.maxClasses + 1, repeating: 1 / Double(ConfidentLearning.maxClasses + 1)), [0], "at most 4096")
        #expect(throws: ReliabilityError.self) { try ConfidentLearning.analyse(probabilities: good, labels: [0, 1], rowSumTolerance: .nan) }
    }
}
