import FaultlineLinalg
import FaultlineNN

/// Attack (upper bound) and certified (lower bound) robust accuracy side by side, with the soundness
/// check between them: a sample certified at ε that an attack breaks within ε is an inconsistency —
/// a bug or a numerical problem in one of the two, never a property of the model.
public enum TwoSidedEvaluation {
    public struct Row: Sendable, Codable {
        public var epsilon: Float
        /// Robust accuracy under the attack: an upper bound on the true robust accuracy.
        public var attackAccuracy: Double
        /// Share of samples certified: a lower bound.
        public var certifiedAccuracy: Double
        /// Rows certified at ε that the attack broke within ε.
        public var inconsistencies: [Int]
        /// attack − certified: how much is unknown at ε.
        public var gap: Double { attackAccuracy - certifiedAccuracy }
    }

    /// For each ε: `certified(ε)` (one flag per row) and `attack(ε)` run on **every** row (not only
    /// the certified ones, so the check sees them all). Throws what the attack or certifier throws.
    public static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float],
                                certified: (Float) throws -> [Bool], attack: (Float) -> any Attack,
                                progress: ((Int, Int) -> Void)? = nil) throws -> [Row] {
        guard !epsilons.isEmpty else { throw CertificationError.invalidParameter("no ε given") }
        if let bad = epsilons.first(where: { !($0.isFinite && $0 >= 0) }) { throw CertificationError.invalidParameter("ε = \(bad) must be finite and ≥ 0") }
        let n = Double(max(x.rows, 1))
        var rows: [Row] = []
        for (k, e) in epsilons.sorted().enumerated() {
            let flags = try certified(e)
            guard flags.count == x.rows else { throw CertificationError.invalidInput("the certifier returned \(flags.count) flags for \(x.rows) rows") }
            let result = try attack(e).attack(model, x, labels: labels, progress: nil)
            let broken = (0..<x.rows).filter { flags[$0] && result.success[$0] }
            rows.append(Row(epsilon: e, attackAccuracy: result.robustAccuracy, certifiedAccuracy: Double(flags.filter { $0 }.count) / n,
                            inconsistencies: broken))
            progress?(k + 1, epsilons.count)
        }
        return rows
    }
}
