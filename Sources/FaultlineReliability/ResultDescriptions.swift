import Foundation

extension CalibrationSummary: CustomStringConvertible {
    /// "accuracy 0.9611, ECE 0.0178, MCE 0.6286, classwise ECE …, Brier 0.0643, NLL 0.144 (15 bins)" — not the bins.
    public var description: String {
        zip(Self.metricNames, values).filter { $0.0 != "accuracy" }.reduce("accuracy \(String(format: "%.4g", accuracy))") {
            $0 + ", \($1.0) \(String(format: "%.4g", $1.1))"
        } + " (\(bins.count) bins)"
    }
}

extension EnsembleUncertainty.Summary: CustomStringConvertible {
    public var description: String {
        String(format: "%d samples: entropy %.4g = aleatoric %.4g + epistemic (MI) %.4g; variance %.4g, variation ratio %.4g",
               samples, entropy, aleatoric, epistemic, variance, variationRatio)
    }
}
