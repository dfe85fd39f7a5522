import FaultlineIO
import FaultlineShift
import FaultlineStatistics
import Foundation
import Testing

/// The two-sample KS test (DriftTests) and every p-value convention against SciPy 1.17 (scripts/fixtures/make_ks_fixtures.py).
@Suite("Kolmogorov–Smirnov two-sample tests against SciPy")
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
}
