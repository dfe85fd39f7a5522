import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import Foundation
import Testing

@Suite("ensemble uncertainty, selective prediction")
struct UncertaintyAndBoundsTests {
    static func members(_ m: Int, n: Int, c: Int, seed: UInt64) throws -> [Matrix<Float>] {
        var rng = Philox(seed: seed)
        let base: Matrix<Float> = rng.matrix(rows: n, columns: c, .normal(mean: 0, sd: 3))
        return try (0..<m).map { _ in
            let noise: Matrix<Float> = rng.matrix(rows: n, columns: c, .normal(mean: 0, sd: 1))
            var z = base
            z.withUnsafeMutableBufferPointer { zb in noise.withUnsafeBufferPointer { nb in for i in zb.indices { zb[i] += nb[i] } } }
            return try Linalg.softmaxRows(z)
        }
    }

    @Test func decompositionIdentityAndAgreementWithDirectFormulas() throws {
        let members = try Self.members(6, n: 300, c: 9, seed: 1)
        let u = try EnsembleUncertainty.compute(members: members)
        for i in 0..<300 {
            #expect(u.mutualInformation[i] >= 0)
            #expect(abs(u.predictiveEntropy[i] - (u.expectedEntropy[i] + u.mutualInformation[i])) <= 1e-12)
            // Direct float64 formulas.
            let rows = members.map { $0.row(i).map(Double.init) }
            let mean = (0..<9).map { j in rows.reduce(0) { $0 + $1[j] } / 6 }
            func h(_ p: [Double]) -> Double { -p.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) } }
            #expect(abs(u.predictiveEntropy[i] - h(mean)) <= 1e-6)
            #expect(abs(u.expectedEntropy[i] - rows.map(h).reduce(0, +) / 6) <= 1e-6)
            var variance = 0.0
            for j in 0..<9 {
                for r in rows { variance += (r[j] - mean[j]) * (r[j] - mean[j]) }
            }
            variance /= 6 * 9
            #expect(abs(u.meanVariance[i] - variance) <= 1e-8)  // float32 SIMD sums, values ~1e-2
            #expect((0..<9).allSatisfy { abs(Double(u.mean[i, $0]) - mean[$0]) <= 1e-6 })
            let top = mean.firstIndex(of: mean.max()!)!
            let disagreeing = rows.filter { $0.firstIndex(of: $0.max()!)! != top }.count
            #expect(u.variationRatio[i] == Double(disagreeing) / 6, "row \(i)")
        }
        // Identical members carry no epistemic uncertainty.
        let same = try EnsembleUncertainty.compute(members: [members[0], members[0], members[0]])
        #expect(same.mutualInformation.allSatisfy { abs($0) <= 1e-6 } && same.variationRatio.allSatisfy { $0 == 0 })
        #expect(throws: ReliabilityError.self) { try EnsembleUncertainty.compute(members: [members[0], Matrix(rows: 2, columns: 9)]) }
        #expect(throws: ReliabilityError.self) { try EnsembleUncertainty.compute(members: []) }
        var broken = members[2]
        broken[17, 4] = 1.5
        let error = try #require(throws: ReliabilityError.self) { try EnsembleUncertainty.compute(members: [members[0], members[1], broken]) }
        #expect(error.description.contains("member 2 row 17"))
        // The stacked [M, N, C] layout gives the same numbers.
        let stacked = try Matrix(rows: 6, columns: 300 * 9, elements: members.flatMap(\.elements))
        let s = try EnsembleUncertainty.compute(stacked: stacked, members: 6, classes: 9)
        #expect(s.mutualInformation == u.mutualInformation && s.mean == u.mean)
    }

    @Test func riskCoverageClosedForms() throws {
        // Confidence ranks the errors last: the curve is the oracle's, so E-AURC = 0.
        let perfect = try RiskCoverage.compute(confidence: [0.9, 0.8, 0.7, 0.2, 0.1], correct: [true, true, true, false, false])
        #expect(perfect.risk == [0, 0, 0, 0.25, 0.4])
        #expect(abs(perfect.aurc - 0.13) <= 1e-15 && abs(perfect.excessAURC) <= 1e-15)
        let worst = try RiskCoverage.compute(confidence: [0.1, 0.2, 0.9], correct: [true, true, false])
        #expect(worst.risk == [1, 0.5, 1.0 / 3])
        #expect(worst.risk(atCoverage: 0.5) == 0.5 && worst.coverage(atRisk: 0.5) == 1 && worst.coverage(atRisk: 0.4) == 1)
        #expect(worst.coverage(atRisk: 0.2) == 0)
        #expect(throws: ReliabilityError.self) { try RiskCoverage.compute(confidence: [], correct: []) }
    }
}
