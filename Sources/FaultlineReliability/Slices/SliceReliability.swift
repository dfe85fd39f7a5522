import FaultlineLinalg
import FaultlineStatistics

/// Failure rates per slice of a test set — per true class and per user-given slice — with exact and
/// approximate intervals, one-sided and zero-failure bounds, a multiple-testing-corrected test of each
/// slice against the rest, and the worst slice named.
///
/// For each slice with n rows and k errors: the rate k/n, two-sided Clopper–Pearson and Wilson 1 − α
/// intervals, the one-sided Clopper–Pearson upper bound (the 1 − α quantile of Beta(k + 1, n − k)), and
/// for k = 0 the zero-failure bound 1 − α^(1/n) ("0 errors in n: error ≤ 3/n at 95 %", the rule of three
/// being its approximation). The test: one-sided Fisher exact test that the slice's error rate exceeds
/// the rest's (`ExactTests.fisherGreater`), adjusted across the slices of one table by Holm (family-wise
/// error) or Benjamini–Hochberg (false discovery rate); `worse` when the adjusted p-value is ≤ α.
/// The worst slice: the largest Clopper–Pearson lower bound (the slice whose error is highest with
/// confidence), ties broken by the higher rate, then the first in order. Slices with no rows are left out.
public struct SliceReliability: Sendable, Codable {
    /// One slice's failure rate and its bounds.
    public struct Row: Sendable, Codable, Equatable {
        /// The slice's name (a class, a slice value, or `all`).
        public var slice: String
        /// Rows in the slice.
        public var samples: Int
        /// Wrong predictions in it.
        public var errors: Int
        /// errors / samples.
        public var errorRate: Double
        /// The two-sided Clopper–Pearson 1 − α interval on the rate.
        public var clopperPearson: BinomialBounds.Interval
        /// The two-sided Wilson 1 − α interval.
        public var wilson: BinomialBounds.Interval
        /// One-sided Clopper–Pearson 1 − α upper bound.
        public var upperBound: Double
        /// 1 − α^(1/n), for a slice without errors.
        public var zeroFailureBound: Double?
        /// Fisher's one-sided p-value against the rest, and after the correction.
        public var pValue: Double
        /// The p-value after Holm or Benjamini–Hochberg over the table.
        public var adjustedPValue: Double
        /// adjustedPValue ≤ α: the slice fails more often than the rest.
        public var worse: Bool
    }

    /// The slices of one partition (classes, or the user's slices).
    public struct Table: Sendable, Codable {
        /// One row per non-empty slice.
        public var rows: [Row]
        /// The worst slice's name (nil for an empty table).
        public var worst: String?
    }

    /// A bootstrap percentile interval and the point estimate.
    public struct Estimate: Sendable, Codable, Equatable {
        /// The statistic on the whole set.
        public var estimate: Double
        /// The α/2 bootstrap quantile.
        public var lower: Double
        /// The 1 − α/2 bootstrap quantile.
        public var upper: Double
    }

    /// The significance level of intervals and tests.
    public var alpha: Double
    /// The multiple-testing correction.
    public var correction: MultipleTesting.Correction
    /// The whole test set as one slice.
    public var overall: Row
    /// One slice per true class.
    public var classes: Table
    /// The user's slices (nil when none were given).
    public var slices: Table?
    /// AUROC of the maximum probability at ranking right predictions above wrong ones, with a stratified
    /// bootstrap interval (nil when every prediction is right, or every one wrong).
    public var errorDetectionAUROC: Estimate?
    /// Robust accuracy (share of rows still right under attack) with a bootstrap interval, when given.
    public var robustAccuracy: Estimate?

    /// Per-row failures from probabilities (argmax, ties to the lowest class) and labels, tabulated by
    /// class and by `slices` (one id per row; `sliceNames` maps an id to its printed name, default
    /// "slice ID"). `robustCorrect`: per-row outcome under attack. `resamples` bootstrap resamples
    /// (seeded Philox streams: results do not depend on threads). Throws `ReliabilityError` for bad
    /// probabilities or labels, slice or robust arrays of the wrong length, α outside (0, 0.5), or
    /// `resamples` < 1. Complexity O(N·K + N log N + B·N log N).
    public static func compute(probabilities p: Matrix<Float>, labels: [Int], slices: [Int]? = nil, sliceNames: [Int: String] = [:],
                               robustCorrect: [Bool]? = nil, alpha: Double = 0.05, correction: MultipleTesting.Correction = .holm,
                               resamples: Int = 1000, seed: UInt64 = 0) throws -> SliceReliability {
        guard alpha > 0 && alpha < 0.5 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 0.5)") }
        guard resamples >= 1 else { throw ReliabilityError.invalidParameter("need at least one bootstrap resample") }
        try p.withUnsafeBufferPointer { try Check.probabilities($0, rows: p.rows, classes: p.columns, name: "probabilities") }
        try Check.labels(labels, rows: p.rows, classes: p.columns)
        if let slices, slices.count != p.rows { throw ReliabilityError.invalidInput("\(p.rows) rows but \(slices.count) slice ids") }
        if let robustCorrect, robustCorrect.count != p.rows { throw ReliabilityError.invalidInput("\(p.rows) rows but \(robustCorrect.count) robust outcomes") }
        let confidence = (0..<p.rows).map { Double(p.row($0).max() ?? 0) }
        let predicted = AccuracyEstimate.argmax(p)
        let wrong = zip(predicted, labels).map { $0 != $1 }
        let errors = wrong.filter { $0 }.count
        let overall = try row("all", n: p.rows, k: errors, totalErrors: errors, total: p.rows, alpha: alpha)
        let classTable = try table(wrong: wrong, groups: labels, names: [:], prefix: "class ", alpha: alpha, correction: correction)
        let sliceTable = try slices.map { try table(wrong: wrong, groups: $0, names: sliceNames, prefix: "slice ", alpha: alpha, correction: correction) }
        var auroc: Estimate?
        let right = (0..<p.rows).filter { !wrong[$0] }, bad = (0..<p.rows).filter { wrong[$0] }
        if !right.isEmpty && !bad.isEmpty {
            let i = try Bootstrap.stratifiedPercentile(strata: [right.count, bad.count], resamples: resamples, alpha: alpha, seed: seed) { idx in
                try RankStatistics.auroc(positives: idx[0].map { confidence[right[$0]] }, negatives: idx[1].map { confidence[bad[$0]] })
            }
            auroc = Estimate(estimate: i.estimate, lower: i.lower, upper: i.upper)
        }
        let robust = try robustCorrect.map { outcome -> Estimate in
            let i = try Bootstrap.percentile(samples: outcome.count, resamples: resamples, alpha: alpha, seed: seed &+ 1) { idx in
                Double(idx.filter { outcome[$0] }.count) / Double(idx.count)
            }
            return Estimate(estimate: i.estimate, lower: i.lower, upper: i.upper)
        }
        return SliceReliability(alpha: alpha, correction: correction, overall: overall, classes: classTable, slices: sliceTable,
                                errorDetectionAUROC: auroc, robustAccuracy: robust)
    }

    /// One table: a row per distinct group id (ascending), tested against the rest and corrected.
    public static func table(wrong: [Bool], groups: [Int], names: [Int: String] = [:], prefix: String = "", alpha: Double = 0.05,
                             correction: MultipleTesting.Correction = .holm) throws -> Table {
        guard wrong.count == groups.count else { throw ReliabilityError.invalidInput("\(wrong.count) outcomes but \(groups.count) group ids") }
        guard alpha > 0 && alpha < 0.5 else { throw ReliabilityError.invalidParameter("α = \(alpha) must lie in (0, 0.5)") }
        var counts: [Int: (n: Int, k: Int)] = [:]
        for (g, w) in zip(groups, wrong) { counts[g, default: (0, 0)].n += 1; if w { counts[g]!.k += 1 } }
        let total = wrong.count, totalErrors = wrong.filter { $0 }.count
        var rows = try counts.keys.sorted().map { g in
            try row(names[g] ?? "\(prefix)\(g)", n: counts[g]!.n, k: counts[g]!.k, totalErrors: totalErrors, total: total, alpha: alpha)
        }
        let adjusted = try MultipleTesting.adjust(rows.map(\.pValue), correction)
        for j in rows.indices {
            rows[j].adjustedPValue = adjusted[j]
            rows[j].worse = adjusted[j] <= alpha
        }
        var worst: Int?
        for j in rows.indices {
            guard let w = worst else { worst = j; continue }
            let a = rows[j], b = rows[w]
            if a.clopperPearson.lower > b.clopperPearson.lower || (a.clopperPearson.lower == b.clopperPearson.lower && a.errorRate > b.errorRate) { worst = j }
        }
        return Table(rows: rows, worst: worst.map { rows[$0].slice })
    }

    static func row(_ name: String, n: Int, k: Int, totalErrors: Int, total: Int, alpha: Double) throws -> Row {
        Row(slice: name, samples: n, errors: k, errorRate: Double(k) / Double(n),
            clopperPearson: try BinomialBounds.clopperPearson(errors: k, samples: n, alpha: alpha),
            wilson: try BinomialBounds.wilson(errors: k, samples: n, alpha: alpha),
            upperBound: try BinomialBounds.clopperPearsonUpper(errors: k, samples: n, alpha: alpha),
            zeroFailureBound: k == 0 ? try BinomialBounds.zeroFailureUpperBound(samples: n, alpha: alpha) : nil,
            pValue: try ExactTests.fisherGreater(groupErrors: k, groupSize: n, totalErrors: totalErrors, total: total),
            adjustedPValue: 1, worse: false)
    }
}
