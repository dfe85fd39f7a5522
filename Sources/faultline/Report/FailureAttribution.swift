/// Why each prediction fails: the report's attribution of every test sample to a reliability or a
/// robustness failure, with the thresholds that define them.
///
/// - robustness, shift: the sample is wrong and its out-of-distribution score exceeds the threshold
///   (the 95th percentile of the calibration split's scores, i.e. 5 % false alarms in distribution);
/// - reliability, confident error: wrong, in distribution, and the confidence is at least `confident`;
/// - reliability, flagged: wrong but with low confidence (the model knew it might be wrong);
/// - robustness, fragile: right, but an attack flips it within ε;
/// - robust: right and not flipped within ε.
struct FailureAttribution: Codable {
    enum Category: String, Codable, CaseIterable {
        case shift = "robustness: out of distribution"
        case confidentError = "reliability: confident and wrong"
        case flagged = "reliability: wrong but low confidence"
        case fragile = "robustness: flipped within ε"
        case robust = "robust and right"
    }

    struct Thresholds: Codable { var outOfDistributionScore: Double; var confidence: Double; var epsilon: Float; var attack: String }

    var thresholds: Thresholds
    var categories: [Category]
    var counts: [String: Int]

    init(correct: [Bool], confidence: [Double], oodScore: [Float], oodThreshold: Double, confident: Double, flipped: [Bool],
         epsilon: Float, attack: String) {
        thresholds = Thresholds(outOfDistributionScore: oodThreshold, confidence: confident, epsilon: epsilon, attack: attack)
        categories = correct.indices.map { i in
            if correct[i] { return flipped[i] ? .fragile : .robust }
            if Double(oodScore[i]) > oodThreshold { return .shift }
            return confidence[i] >= confident ? .confidentError : .flagged
        }
        var counts: [String: Int] = [:]
        for c in Category.allCases { counts[c.rawValue] = categories.filter { $0 == c }.count }
        self.counts = counts
    }

    /// The 95th percentile (nearest rank) of in-distribution scores.
    static func threshold(_ scores: [Float]) -> Double {
        let sorted = scores.sorted()
        return Double(sorted[min(sorted.count - 1, Int((0.95 * Double(sorted.count)).rounded(.up)) - 1)])
    }
}
