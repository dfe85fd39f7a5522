/// Why each prediction fails: every test row attributed to a reliability or a robustness failure, with
/// the thresholds that define the categories. Rows are taken in this order:
///
/// - **robustness: out of distribution** — wrong, and the out-of-distribution score exceeds the threshold
///   (a quantile of held-out in-distribution scores: at 0.95, 5 % false alarms in distribution);
/// - **reliability: confident and wrong** — wrong, in distribution, top-class probability ≥ `confident`;
/// - **reliability: wrong but low confidence** — wrong, in distribution, below `confident` (the model
///   signalled its doubt);
/// - **robustness: flipped within ε** — right, but the attack flips it within ε;
/// - **robust and right** — right and not flipped.
///
/// Complexity O(n). The counts cover every category (0 included) and sum to the number of rows.
public struct FailureAttribution: Codable, Sendable, Equatable {
    /// A row's failure category. The raw value is the stable identifier report.json stores (in
    /// `categories` and as the keys of `counts`, schema 2 on); `title` is the text shown to readers.
    public enum Category: String, Codable, CaseIterable, Sendable {
        /// Wrong, and the out-of-distribution score exceeds the threshold.
        case shift = "out-of-distribution"
        /// Wrong, in distribution, top-class probability ≥ the confidence threshold.
        case confidentError = "confident-error"
        /// Wrong, in distribution, top-class probability below the confidence threshold.
        case flagged = "low-confidence-error"
        /// Right, but the attack flips it within ε.
        case fragile = "flipped-within-epsilon"
        /// Right and not flipped.
        case robust = "robust"

        /// The categories of wrong predictions.
        public var isError: Bool { self == .shift || self == .confidentError || self == .flagged }

        /// The category as the report's text and tables name it (the raw value of schema 1).
        public var title: String {
            switch self {
            case .shift: return "robustness: out of distribution"
            case .confidentError: return "reliability: confident and wrong"
            case .flagged: return "reliability: wrong but low confidence"
            case .fragile: return "robustness: flipped within ε"
            case .robust: return "robust and right"
            }
        }

        /// Decodes the stable identifier, or the title a schema-1 report stored.
        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let category = Category(rawValue: text) ?? Category.allCases.first(where: { $0.title == text }) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown failure category '\(text)'"))
            }
            self = category
        }
    }

    /// The thresholds that define the categories.
    public struct Thresholds: Codable, Sendable, Equatable {
        /// A wrong row is out of distribution when its OOD score (feature-space Mahalanobis when the model
        /// has penultimate features, else input-space) exceeds this.
        public var outOfDistributionScore: Double
        /// The quantile of held-out in-distribution scores the OOD threshold is (nil in reports before it was recorded).
        public var outOfDistributionQuantile: Double?
        /// A wrong, in-distribution row with top-class probability ≥ this is a confident error.
        public var confidence: Double
        /// The L∞ budget of the fragility attack, in input units.
        public var epsilon: Float
        /// The fragility attack, as text (e.g. "PGD-20 (L∞, early stop)").
        public var attack: String
    }

    /// The thresholds used.
    public var thresholds: Thresholds
    /// One category per row, in row order.
    public var categories: [Category]
    /// Rows per category, keyed by the category's stable identifier (its raw value; a schema-1 report
    /// keyed them by `title`, which `count` also reads).
    public var counts: [String: Int]

    /// Attributes every row (see the type's documentation for the order of the rules).
    /// - Precondition: the five arrays have the same length.
    public init(correct: [Bool], confidence: [Double], oodScore: [Float], oodThreshold: Double, confident: Double, flipped: [Bool],
                epsilon: Float, attack: String, oodQuantile: Double? = nil) {
        precondition(confidence.count == correct.count && oodScore.count == correct.count && flipped.count == correct.count,
                     "FailureAttribution: one value per row in every array")
        thresholds = Thresholds(outOfDistributionScore: oodThreshold, outOfDistributionQuantile: oodQuantile, confidence: confident,
                                epsilon: epsilon, attack: attack)
        categories = correct.indices.map { i in
            if correct[i] { return flipped[i] ? .fragile : .robust }
            if Double(oodScore[i]) > oodThreshold { return .shift }
            return confidence[i] >= confident ? .confidentError : .flagged
        }
        var counts = Dictionary(uniqueKeysWithValues: Category.allCases.map { ($0.rawValue, 0) })
        for c in categories { counts[c.rawValue, default: 0] += 1 }
        self.counts = counts
    }

    /// Rows in `category`.
    public func count(_ category: Category) -> Int { counts[category.rawValue] ?? counts[category.title] ?? 0 }

    /// The `quantile` (nearest rank: the ⌈q·n⌉-th smallest) of in-distribution scores; NaN scores are
    /// ignored. Throws when no finite score is left or `quantile` is outside (0, 1].
    public static func threshold(_ scores: [Float], quantile: Double = 0.95) throws -> Double {
        guard quantile > 0, quantile <= 1 else { throw AnalysisError.invalidInput("the OOD quantile \(quantile) must lie in (0, 1]") }
        let sorted = scores.filter { !$0.isNaN }.sorted()
        guard !sorted.isEmpty else { throw AnalysisError.invalidInput("no in-distribution scores to set the OOD threshold from") }
        let rank = Int((quantile * Double(sorted.count)).rounded(.up))
        return Double(sorted[min(max(rank, 1), sorted.count) - 1])
    }
}
