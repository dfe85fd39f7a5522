import FaultlineAnalysis
import FaultlineNN
import Foundation
import Testing

extension FailureReportTests {
    /// A model behind an input normalisation keeps CROWN: the report certifies the layer stack with the
    /// normalisation folded into its first layer (`LayerStackConvertible`). With mean 0 and std 1 the
    /// fold is exact, so every robustness number equals the bare model's.
    @Test func normalizedModelKeepsCROWN() throws {
        let (model, _) = Self.fixture
        var options = Self.options()
        options.monteCarloDropoutPasses = 0
        let direct = try FailureReport.build(model: model, data: Self.data(), options: options)
        let identity = try NormalizedClassifier(model, normalization: InputNormalization(mean: [0], std: [1]))
        let normalized = try FailureReport.build(model: identity, data: Self.data(), options: options)
        #expect(!normalized.robustnessNotes.contains { $0.hasPrefix("CROWN skipped") }, "\(normalized.robustnessNotes)")
        for (n, d) in zip(normalized.robustness, direct.robustness) {
            #expect(n.certifiedCROWN != nil && n.certifiedCROWN == d.certifiedCROWN && n.pgd20 == d.pgd20 && n.apgdCE == d.apgdCE)
        }
    }
}
