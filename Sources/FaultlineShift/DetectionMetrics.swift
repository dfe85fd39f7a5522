/// Threshold-free quality of an out-of-distribution score, where higher scores mean "more OOD".
///
/// AUROC is the Mann–Whitney statistic with ties counted ½ (scikit-learn's roc_auc_score with OOD as
/// the positive class); AUPR-out / AUPR-in are step-wise average precision with OOD / in-distribution
/// positive (scikit-learn's average_precision_score); FPR@95TPR uses the ODIN definition: the share
/// of OOD samples accepted when the threshold accepts 95 % of in-distribution samples. O(N log N).
public struct DetectionMetrics: Sendable, Codable {
    /// Area under the ROC curve, OOD positive, ties counted ½ (0.5: no separation; 1: perfect).
    public var auroc: Double
    /// Average precision with OOD as the positive class.
    public var auprOut: Double
    /// Average precision with in-distribution as the positive class (scores negated).
    public var auprIn: Double
    /// The share of OOD samples accepted at the threshold that accepts 95 % of in-distribution samples.
    public var fprAt95TPR: Double

    /// All four metrics. Throws `ShiftError.invalidInput` for an empty side or a NaN or infinite score.
    public static func compute(inDistribution: [Float], outOfDistribution: [Float]) throws -> DetectionMetrics {
        guard !inDistribution.isEmpty, !outOfDistribution.isEmpty else {
            throw ShiftError.invalidInput("need scores for both in-distribution (\(inDistribution.count)) and OOD (\(outOfDistribution.count)) samples")
        }
        if (inDistribution + outOfDistribution).contains(where: { !$0.isFinite }) { throw ShiftError.invalidInput("scores contain NaN or infinite values") }
        let scores = inDistribution.map { (Double($0), false) } + outOfDistribution.map { (Double($0), true) }
        let auroc = Self.auroc(scores)
        let out = averagePrecision(scores.map { ($0.0, $0.1) })
        let inside = averagePrecision(scores.map { (-$0.0, !$0.1) })
        // ODIN FPR@95TPR: threshold t = the 5th percentile of ID scores from below (ID accepted if score ≤ t).
        let sortedID = inDistribution.map(Double.init).sorted()
        let t = sortedID[min(sortedID.count - 1, Int((0.95 * Double(sortedID.count)).rounded(.up)) - 1)]
        let fpr = Double(outOfDistribution.filter { Double($0) <= t }.count) / Double(outOfDistribution.count)
        return DetectionMetrics(auroc: auroc, auprOut: out, auprIn: inside, fprAt95TPR: fpr)
    }

    /// The ROC curve with OOD as the positive class: (false-positive rate, true-positive rate) at every
    /// distinct threshold, from (0, 0) to (1, 1), as scikit-learn's `roc_curve` without dropping
    /// collinear points. O(N log N). Throws like `compute`.
    public static func rocCurve(inDistribution: [Float], outOfDistribution: [Float]) throws -> [(fpr: Double, tpr: Double)] {
        _ = try compute(inDistribution: inDistribution, outOfDistribution: outOfDistribution)  // validation
        let scores = (inDistribution.map { (Double($0), false) } + outOfDistribution.map { (Double($0), true) }).sorted { $0.0 > $1.0 }
        var points: [(fpr: Double, tpr: Double)] = [(0, 0)]
        var tp = 0.0, fp = 0.0, k = 0
        let positives = Double(outOfDistribution.count), negatives = Double(inDistribution.count)
        while k < scores.count {
            let threshold = scores[k].0
            while k < scores.count && scores[k].0 == threshold {
                if scores[k].1 { tp += 1 } else { fp += 1 }
                k += 1
            }
            points.append((fp / negatives, tp / positives))
        }
        return points
    }

    /// P(score_ood > score_id) + ½ P(equal), by ranks with ties averaged.
    static func auroc(_ scores: [(Double, Bool)]) -> Double {
        let order = scores.indices.sorted { scores[$0].0 < scores[$1].0 }
        var rankSumPositive = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]].0 == scores[order[i]].0 { j += 1 }
            let averageRank = Double(i + j) / 2 + 1
            for k in i...j where scores[order[k]].1 { rankSumPositive += averageRank }
            i = j + 1
        }
        let positives = Double(scores.filter { $0.1 }.count), negatives = Double(scores.count) - positives
        return (rankSumPositive - positives * (positives + 1) / 2) / (positives * negatives)
    }

    /// Σ_k (R_k − R_{k−1})·P_k over thresholds at each distinct score, from the highest down.
    static func averagePrecision(_ scores: [(Double, Bool)]) -> Double {
        let order = scores.indices.sorted { scores[$0].0 > scores[$1].0 }
        let positives = Double(scores.filter { $0.1 }.count)
        var truePositives = 0.0, seen = 0.0, previousRecall = 0.0, ap = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]].0 == scores[order[i]].0 { j += 1 }
            for k in i...j where scores[order[k]].1 { truePositives += 1 }
            seen += Double(j - i + 1)
            let recall = truePositives / positives
            ap += (recall - previousRecall) * (truePositives / seen)
            previousRecall = recall
            i = j + 1
        }
        return ap
    }
}
