import Foundation

extension MMDTest.Result: CustomStringConvertible {
    /// "MMD² 0.0123 (σ² 4.5), p = 0.001 over 1000 permutations" — not the null distribution itself.
    public var description: String {
        String(format: "MMD² %.4g (σ² %.4g), p = %.4g over %d permutations", mmd2, sigma2, pValue, null.count)
    }
}

extension DriftTests.TestResult: CustomStringConvertible {
    public var description: String { String(format: "statistic %.4g, p = %.4g", statistic, pValue) }
}
