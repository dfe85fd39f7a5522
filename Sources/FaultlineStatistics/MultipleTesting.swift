/// Multiple-testing corrections of a family of p-values: adjusted p-values, so that rejecting every
/// hypothesis whose adjusted p-value is ≤ α controls the family-wise error rate (Holm) or the false
/// discovery rate (Benjamini–Hochberg) at α. The adjusted values equal statsmodels'
/// `multipletests(method="holm" | "fdr_bh")[1]`.
public enum MultipleTesting {
    /// Which error rate the adjustment controls: family-wise (Holm) or false discovery (BH).
    public enum Correction: String, Sendable, Codable, CaseIterable {
        /// Holm's step-down procedure (family-wise error rate, valid under any dependence).
        case holm
        /// Benjamini–Hochberg step-up (false discovery rate, for independent or positively dependent tests).
        case bh
    }

    /// Adjusted p-values in the input order. Complexity O(m log m). Throws for a p-value that is NaN or
    /// outside [0, 1]; an empty family gives an empty result.
    public static func adjust(_ p: [Double], _ correction: Correction) throws -> [Double] {
        if let bad = p.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw StatisticsError.invalidInput("p-value \(bad) is \(p[bad]), not in [0, 1]")
        }
        let m = p.count
        guard m > 0 else { return [] }
        // Ties keep input order, so the result does not depend on the sort's stability.
        let order = p.indices.sorted { p[$0] < p[$1] || (p[$0] == p[$1] && $0 < $1) }
        var adjusted = [Double](repeating: 0, count: m)
        switch correction {
        case .holm:
            // p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))  (1-based ranks).
            var running = 0.0
            for (rank, index) in order.enumerated() {
                running = max(running, min(1, Double(m - rank) * p[index]))
                adjusted[index] = running
            }
        case .bh:
            // p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j).
            var running = 1.0
            for rank in stride(from: m - 1, through: 0, by: -1) {
                let index = order[rank]
                running = min(running, Double(m) * p[index] / Double(rank + 1))
                adjusted[index] = min(1, running)
            }
        }
        return adjusted
    }
}
