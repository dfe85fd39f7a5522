import FaultlineIO
import FaultlineStatistics
import Foundation
import Testing

/// Binomial bounds against SciPy and closed forms; the Kolmogorov and Smirnov distributions against
/// SciPy 1.17 (fixtures: scripts/fixtures/make_ks_fixtures.py and the bounds generator).
@Suite("statistics: binomial bounds, Kolmogorov–Smirnov distributions")
struct StatisticsTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/ks.npz").map { ($0.name, $0.tensor) })
    static func values(_ name: String) -> [Double] { arrays[name]!.values(as: Double.self) }

    /// |ours − SciPy| ≤ 1e-8, and relative 1e-6 for p-values far below that.
    static func close(_ got: Double, _ want: Double) -> Bool { abs(got - want) <= 1e-8 && abs(got - want) <= max(1e-6 * want, 1e-12) || abs(got - want) <= 1e-12 }

    @Test func clopperPearsonEqualsSciPy() throws {
        let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
        let table = try NPZ.read(root + "/bounds.npz", array: "clopper_pearson").values(as: Double.self)
        for r in stride(from: 0, to: table.count, by: 5) {
            let interval = try BinomialBounds.clopperPearson(errors: Int(table[r]), samples: Int(table[r + 1]), alpha: table[r + 2])
            #expect(abs(interval.lower - table[r + 3]) <= 1e-10, "k=\(table[r]) n=\(table[r + 1]) α=\(table[r + 2])")
            #expect(abs(interval.upper - table[r + 4]) <= 1e-10, "k=\(table[r]) n=\(table[r + 1]) α=\(table[r + 2])")
        }
    }

    @Test func wilsonHoeffdingAndSampleSize() throws {
        let w = try BinomialBounds.wilson(errors: 10, samples: 100)
        #expect(abs(w.lower - 0.05522) < 1e-4 && abs(w.upper - 0.17436) < 1e-4)  // textbook values (z = 1.96)
        let h = try BinomialBounds.hoeffding(errors: 10, samples: 100, alpha: 0.05)
        #expect(abs(h.upper - 0.1 - (Foundation.log(40.0) / 200).squareRoot()) < 1e-12 && h.lower == 0)  // clipped at 0
        #expect(try BinomialBounds.hoeffdingSampleSize(halfWidth: 0.01, alpha: 0.05) == 18445)
        #expect(throws: StatisticsError.self) { try BinomialBounds.wilson(errors: 5, samples: 3) }
        #expect(throws: StatisticsError.self) { try BinomialBounds.clopperPearson(errors: 1, samples: 3, alpha: 1.5) }
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
