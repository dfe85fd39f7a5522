import FaultlineIO
import FaultlineReliability
import FaultlineRobustness
import Foundation
import Testing

/// The KS statistic and every p-value convention against SciPy 1.17 (scripts/fixtures/make_ks_fixtures.py).
@Suite("Kolmogorov–Smirnov distributions against SciPy")
struct KolmogorovSmirnovTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/ks.npz").map { ($0.name, $0.tensor) })
    static func values(_ name: String) -> [Double] { arrays[name]!.values(as: Double.self) }

    /// |ours − SciPy| ≤ 1e-8, and relative 1e-6 for p-values far below that.
    static func close(_ got: Double, _ want: Double) -> Bool { abs(got - want) <= 1e-8 && abs(got - want) <= max(1e-6 * want, 1e-12) || abs(got - want) <= 1e-12 }

    @Test func twoSampleTestsEqualKs2samp() throws {
        let samples = Self.values("samples"), cases = Self.values("cases"), expected = Self.values("two_sample")
        var offset = 0
        for c in 0..<(cases.count / 2) {
            let n1 = Int(cases[2 * c]), n2 = Int(cases[2 * c + 1])
            let a = Array(samples[offset..<(offset + n1)]), b = Array(samples[(offset + n1)..<(offset + n1 + n2)])
            offset += n1 + n2
            let want = Array(expected[(5 * c)..<(5 * c + 5)])
            for (k, method) in [DriftTests.KolmogorovSmirnovMethod.auto, .exact, .asymptotic, .limiting].enumerated() {
                let r = try DriftTests.kolmogorovSmirnov(a, b, method: method)
                #expect(abs(r.statistic - want[0]) <= 1e-12, "case \(n1)×\(n2)")
                #expect(Self.close(r.pValue, want[k + 1]), "case \(n1)×\(n2) \(method): \(r.pValue) vs \(want[k + 1])")
            }
        }
    }

    @Test func oneSampleDistributionsEqualSciPy() {
        let kstwo = Self.values("kstwo")
        for r in stride(from: 0, to: kstwo.count, by: 3) {
            let got = Distributions.kolmogorovSurvival(n: Int(kstwo[r]), x: kstwo[r + 1])
            #expect(Self.close(got, kstwo[r + 2]), "kstwo.sf(\(kstwo[r + 1]), \(Int(kstwo[r]))): \(got) vs \(kstwo[r + 2])")
        }
        let smirnov = Self.values("smirnov")
        for r in stride(from: 0, to: smirnov.count, by: 3) {
            let got = Distributions.smirnovSurvival(n: Int(smirnov[r]), x: smirnov[r + 1])
            #expect(Self.close(got, smirnov[r + 2]), "smirnov(\(Int(smirnov[r])), \(smirnov[r + 1])): \(got) vs \(smirnov[r + 2])")
        }
    }

    /// Closed forms: D_{n,n} ≥ 1 only if the samples are completely separated, 2/C(2n, n); n = 1 one-sample.
    @Test func closedForms() {
        for n in [1, 3, 6, 10] {
            let binomial = (0..<n).reduce(1.0) { $0 * Double(2 * n - $1) / Double($1 + 1) }
            #expect(abs(Distributions.twoSampleKolmogorovSurvival(n, n, h: n) - 2 / binomial) <= 1e-15)
        }
        #expect(Distributions.twoSampleKolmogorovSurvival(4, 6, h: 0) == 1)
        // Out of the domain: NaN, as SciPy, not a trap.
        #expect(Distributions.kolmogorovSurvival(n: 0, x: 0.3).isNaN && Distributions.smirnovSurvival(n: -1, x: 0.3).isNaN)
        #expect(Distributions.twoSampleKolmogorovSurvival(0, 6, h: 1).isNaN && Distributions.kolmogorovSurvival(n: 5, x: .nan).isNaN)
        // n = 1: D_1 = max(U, 1 − U) ≥ x with probability 2(1 − x) for x ≥ ½.
        #expect(abs(Distributions.kolmogorovSurvival(n: 1, x: 0.7) - 0.6) <= 1e-15)
    }
}
