import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

/// The one-pass ensemble decomposition on every tier this CPU runs (simd, avx2, avx512: one read of each
/// member row, the variance from the spread about member 0's row, the table log on avx512) against
/// float64 definitions written out here and against the reference tier's two-pass form, over shapes
/// that leave every tail of the 8- and 16-lane loops, with one-hot rows, zeros and ties.
@Suite("ensemble uncertainty: every tier against float64")
struct EnsembleTierTests {
    static let tiers = Linalg.KernelTier.allCases.filter { Linalg.runnable($0) == $0 }

    /// Softmax members around a shared base; `family` 1 makes every 3rd row one-hot in every member
    /// (zeros, exact ones, identical members), 2 makes members tie between two classes.
    static func members(_ m: Int, n: Int, c: Int, family: Int, seed: UInt64) -> [Matrix<Float>] {
        var rng = Philox(seed: seed)
        let base = (0..<(n * c)).map { _ in rng.normal() * 3 }
        return (0..<m).map { _ in
            var out = Matrix<Float>(rows: n, columns: c)
            for i in 0..<n {
                var z = (0..<c).map { base[i * c + $0] + rng.normal() }
                if family == 2 && c > 1 { z[1] = z[0] }
                let top = z.max()!
                var e = z.map { Foundation.exp($0 - top) }
                if family == 1 && i % 3 == 0 { e = (0..<c).map { $0 == (i % c) ? 1 : 0 } }
                let s = e.reduce(0, +)
                for j in 0..<c { out[i, j] = Float(e[j] / s) }
            }
            return out
        }
    }

    @Test(arguments: tiers)
    func everyTierAgainstFloat64(tier: Linalg.KernelTier) throws {
        for (m, n, c) in [(1, 5, 1), (2, 7, 2), (3, 9, 15), (5, 33, 16), (4, 40, 17), (6, 35, 33), (10, 70, 100)] { for family in 0..<3 {
            let members = Self.members(m, n: n, c: c, family: family, seed: UInt64(m * 100 + c + family))
            let u = try EnsembleUncertainty.compute(members: members, tier: tier)
            let label = "\(tier) M=\(m) N=\(n) C=\(c) family \(family)"
            var worstMI = 0.0
            for i in 0..<n {
                let rows = members.map { $0.row(i).map(Double.init) }
                let mean = (0..<c).map { j in rows.reduce(0) { $0 + $1[j] } / Double(m) }
                func h(_ p: [Double]) -> Double { -p.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) } }
                let total = h(mean), expected = rows.map(h).reduce(0, +) / Double(m)
                var variance = 0.0
                for j in 0..<c { for r in rows { variance += (r[j] - mean[j]) * (r[j] - mean[j]) } }
                variance /= Double(m * c)
                #expect(abs(u.predictiveEntropy[i] - total) <= 1e-6 * (1 + total), "\(label) row \(i)")
                #expect(abs(u.expectedEntropy[i] - expected) <= 1e-6 * (1 + expected), "\(label) row \(i)")
                worstMI = max(worstMI, abs(u.mutualInformation[i] - max(total - expected, 0)))
                #expect(abs(u.meanVariance[i] - variance) <= 1e-8 + 1e-6 * variance, "\(label) row \(i): \(u.meanVariance[i]) vs \(variance)")
                #expect(u.meanVariance[i] >= 0)
                // The prediction is the first maximum of the float mean (ties: family 2 and one-hot rows).
                let floatMean = (0..<c).map { j in Double(u.mean[i, j]) }
                #expect(u.prediction[i] == floatMean.firstIndex(of: floatMean.max()!)!, "\(label) row \(i)")
                let disagreeing = members.filter { member in
                    let row = member.row(i)
                    return row.firstIndex(of: row.max()!)! != u.prediction[i]
                }.count
                #expect(u.variationRatio[i] == Double(disagreeing) / Double(m), "\(label) row \(i)")
            }
            // The documented bound: |MI − MI₆₄| ≤ ~1e-6 for C ≤ 1000.
            #expect(worstMI <= 1.5e-6, "\(label): max |MI − float64| = \(worstMI)")
        } }
    }

    /// The one-pass tiers and the reference tier's two-pass form agree, and the result does not depend
    /// on the thread count (bit for bit).
    @Test(arguments: tiers)
    func tiersAgreeAndThreadCountIndependent(tier: Linalg.KernelTier) throws {
        let members = Self.members(7, n: 301, c: 37, family: 1, seed: 5)
        let reference = try EnsembleUncertainty.compute(members: members, tier: .reference)
        let one = try Linalg.withThreads(1) { try EnsembleUncertainty.compute(members: members, tier: tier) }
        let two = try Linalg.withThreads(2) { try EnsembleUncertainty.compute(members: members, tier: tier) }
        #expect(one.mutualInformation == two.mutualInformation && one.meanVariance == two.meanVariance && one.mean == two.mean)
        #expect(one.prediction == reference.prediction && one.variationRatio == reference.variationRatio)
        #expect(zip(one.mutualInformation, reference.mutualInformation).allSatisfy { abs($0 - $1) <= 2e-6 })
        #expect(zip(one.meanVariance, reference.meanVariance).allSatisfy { abs($0 - $1) <= 1e-8 + 1e-6 * $1 })
    }

    /// Every tier names the first bad row and its first bad member, also when a later member's row comes
    /// first in the row order of one block and an earlier member's row is bad further down.
    @Test(arguments: tiers)
    func firstBadRowThenMemberOnEveryTier(tier: Linalg.KernelTier) throws {
        var members = Self.members(3, n: 6400, c: 5, family: 0, seed: 11)
        var off = members[0], broken = members[1]
        for j in 0..<5 { off[5, j] *= 1.01 }
        broken[2, 3] = .nan
        members[0] = off
        members[1] = broken
        let error = try #require(throws: ReliabilityError.self) { try EnsembleUncertainty.compute(members: members, tier: tier) }
        #expect(error.description.contains("member 1 row 2 holds a value outside [0, 1] or NaN"), "\(tier): \(error)")
    }

    /// Invalid values are found at any position on every tier (body or tail), naming member and row.
    @Test(arguments: tiers)
    func invalidValuesNamed(tier: Linalg.KernelTier) throws {
        for c in [1, 16, 17, 33] {
            var members = Self.members(3, n: 40, c: c, family: 0, seed: UInt64(c))
            for (j, bad) in [(0, Float.nan), (c - 1, -0.5), (c / 2, 2)] {
                var broken = members[1]
                broken[37, j] = bad
                members[1] = broken
                let error = try #require(throws: ReliabilityError.self) { try EnsembleUncertainty.compute(members: members, tier: tier) }
                #expect(error.description.contains("member 1 row 37"), "\(tier) C=\(c): \(error)")
                members = Self.members(3, n: 40, c: c, family: 0, seed: UInt64(c))
            }
        }
    }
}
