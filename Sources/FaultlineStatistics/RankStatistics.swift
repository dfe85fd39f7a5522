/// Rank statistics of two samples.
public enum RankStatistics {
    /// AUROC: P(a positive's score > a negative's) + ½ P(equal), the Mann–Whitney U / (n₊ n₋) with
    /// ties counted one half (sklearn's `roc_auc_score`). Exact in Double up to n₊n₋ < 2⁵³; O((n₊ + n₋)
    /// log(n₊ + n₋)). Throws when either sample is empty or a score is NaN.
    public static func auroc(positives: [Double], negatives: [Double]) throws -> Double {
        guard !positives.isEmpty, !negatives.isEmpty else {
            throw StatisticsError.invalidInput("AUROC needs positives and negatives (got \(positives.count) and \(negatives.count))")
        }
        guard !positives.contains(where: \.isNaN), !negatives.contains(where: \.isNaN) else { throw StatisticsError.invalidInput("a score is NaN") }
        let all = positives.map { ($0, true) } + negatives.map { ($0, false) }
        let sorted = all.sorted { $0.0 < $1.0 }
        // Sum of the positives' mid-ranks (1-based).
        var rankSum = 0.0, i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1].0 == sorted[i].0 { j += 1 }
            let midRank = Double(i + j + 2) / 2
            for t in i...j where sorted[t].1 { rankSum += midRank }
            i = j + 1
        }
        let np = Double(positives.count), nn = Double(negatives.count)
        return (rankSum - np * (np + 1) / 2) / (np * nn)
    }
}
