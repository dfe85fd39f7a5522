import Foundation

// One-line summaries for `print(result)`: the headline numbers, never the per-sample arrays (a result
// over a million rows prints as one line). Every number is rounded to 4 significant digits.

fileprivate func rounded(_ v: Double) -> String { String(format: "%.4g", v) }

extension AttackResult: CustomStringConvertible {
    /// "AttackResult: 360 samples × 64 features, robust accuracy 0.5833 (150 successful; first success at step 0–19, median 4)".
    public var description: String {
        let steps = successStep.compactMap { $0 }.sorted()
        let stepText = steps.isEmpty ? "" : "; first success at step \(steps.first!)–\(steps.last!), median \(steps[steps.count / 2])"
        return "AttackResult: \(margin.count) samples × \(adversarial.columns) features, robust accuracy \(rounded(robustAccuracy)) "
            + "(\(success.filter { $0 }.count) successful\(stepText))"
    }
}

extension AutoAttack.Report: CustomStringConvertible {
    /// "AutoAttack: clean 0.95 → apgd-ce 0.6 → apgd-t 0.58 → square 0.58 (360 samples, 1 warning)".
    public var description: String {
        let chain = robustAccuracyAfter.map { "\($0.attack) \(rounded($0.accuracy))" }.joined(separator: " → ")
        let warned = warnings.isEmpty ? "" : ", \(warnings.count) warning\(warnings.count == 1 ? "" : "s")"
        return "AutoAttack: clean \(rounded(cleanAccuracy))\(chain.isEmpty ? "" : " → " + chain) (\(brokenBy.count) samples\(warned))"
    }
}

extension AttackSweep.Result: CustomStringConvertible {
    /// "AttackSweep: ε 0 → 0.9556, 0.05 → 0.8278, 0.1 → 0.5889 (robust accuracy; 3 arrays of examples)".
    public var description: String {
        let rows = self.rows.map { "\($0.epsilon) → \(rounded($0.robustAccuracy))" }.joined(separator: ", ")
        let warned = warnings.isEmpty ? "" : ", \(warnings.count) warning\(warnings.count == 1 ? "" : "s")"
        return "AttackSweep: ε \(rows) (robust accuracy; \(examples.count) arrays of examples\(warned))"
    }
}

extension CorruptionSweep.Report: CustomStringConvertible {
    /// "CorruptionSweep: clean 0.9556, mean 0.7951 over 40 cells, worst translation 0.2583".
    public var description: String {
        let kinds = Corruption.allCases.filter { c in cells.contains { $0.corruption == c } }
        let worst = kinds.min { meanAccuracy($0) < meanAccuracy($1) }
        return "CorruptionSweep: clean \(rounded(cleanAccuracy)), mean \(rounded(meanAccuracy)) over \(cells.count) cells"
            + (worst.map { ", worst \($0.rawValue) \(rounded(meanAccuracy($0)))" } ?? "")
    }
}
