import Foundation

/// The HTML page of a drift check (`faultline drift check --html`): the per-feature table (name, KS
/// statistic, p-value, adjusted p-value, decision) and, per feature plotted, the empirical CDFs of the
/// reference and the current values; for windows, the smallest adjusted p-value (as −log₁₀) and the
/// number of drifted features per window. Self-contained (inline SVG, no scripts), every string escaped.
public enum DriftPage {
    /// One feature's two-sample Kolmogorov–Smirnov test.
    public struct Feature: Sendable {
        /// The feature's name (or column index as text).
        public var name: String
        /// The KS statistic: the largest gap between the two empirical CDFs, in [0, 1].
        public var statistic: Double
        /// The test's p-value, in [0, 1].
        public var pValue: Double
        /// The p-value after the multiple-testing correction, in [0, 1].
        public var adjustedPValue: Double
        /// Whether the adjusted p-value is below the level.
        public var drifted: Bool
        /// Sorted samples (or quantiles) of the reference and the current values, for the CDF plot;
        /// empty: no plot.
        public var reference: [Double]
        /// Sorted samples (or quantiles) of the current values; empty: no plot.
        public var current: [Double]

        /// A feature's row.
        public init(name: String, statistic: Double, pValue: Double, adjustedPValue: Double, drifted: Bool,
                    reference: [Double] = [], current: [Double] = []) {
            (self.name, self.statistic, self.pValue, self.adjustedPValue, self.drifted) = (name, statistic, pValue, adjustedPValue, drifted)
            (self.reference, self.current) = (reference, current)
        }
    }

    /// One window of the current rows.
    public struct Window: Sendable {
        /// The window's number (0-based).
        public var index: Int
        /// Its first row in the current data.
        public var firstRow: Int
        /// Rows in the window.
        public var rows: Int
        /// Features whose adjusted p-value is below the level.
        public var driftedFeatures: Int
        /// The smallest adjusted p-value over the features, in [0, 1].
        public var smallestAdjustedPValue: Double
        /// The feature with that p-value.
        public var worstFeature: String

        /// A window's row.
        public init(index: Int, firstRow: Int, rows: Int, driftedFeatures: Int, smallestAdjustedPValue: Double, worstFeature: String) {
            (self.index, self.firstRow, self.rows, self.driftedFeatures) = (index, firstRow, rows, driftedFeatures)
            (self.smallestAdjustedPValue, self.worstFeature) = (smallestAdjustedPValue, worstFeature)
        }
    }

    /// At most this many points per CDF curve (quantiles of the sorted sample).
    static let curvePoints = 101

    /// The page for one batch: the table of every feature, worst first, and CDF plots of the features
    /// given samples (the caller chooses which, e.g. the most drifted).
    public static func batch(title: String, subtitle: String, features: [Feature]) -> String {
        let order = features.indices.sorted { (features[$0].adjustedPValue, -features[$0].statistic, $0) < (features[$1].adjustedPValue, -features[$1].statistic, $1) }
        var figures: [String: String] = [:], names: [String] = []
        for i in order where !features[i].reference.isEmpty && !features[i].current.isEmpty {
            let f = features[i], name = "cdf-\(names.count)"
            figures[name] = SVGPlot(title: f.name + String(format: " (D = %.3f)", f.statistic), xLabel: "value", yLabel: "fraction ≤ value",
                                    series: [.init(name: "reference", points: cdf(f.reference), markers: false),
                                             .init(name: "current", points: cdf(f.current), dashed: true, markers: false)],
                                    yRange: 0...1, width: 480, height: 260).render()
            names.append(name)
        }
        let table = order.map { i -> [String] in
            let f = features[i]
            return [f.name, String(format: "%.4f", f.statistic), String(format: "%.3g", f.pValue), String(format: "%.3g", f.adjustedPValue), f.drifted ? "yes" : "no"]
        }
        let drifted = features.filter(\.drifted).count
        return HTMLReport(title: title, subtitle: subtitle, sections: [
            HTMLReport.Section(heading: "Features", paragraphs: ["\(drifted) of \(features.count) features drifted."],
                               tables: [(["feature", "KS D", "p-value", "adjusted p", "drift"], table)]),
            HTMLReport.Section(heading: "Reference and current distributions", paragraphs: names.isEmpty ? [] : ["Empirical CDFs, most drifted first."],
                               figures: names),
        ], figures: figures).render()
    }

    /// The page for windows: −log₁₀ of the smallest adjusted p-value and the drifted-feature count per
    /// window, against the window's first row, and the table of windows.
    public static func windows(title: String, subtitle: String, alpha: Double, windows: [Window]) -> String {
        let p = windows.map { (x: Double($0.firstRow), y: -log10(max($0.smallestAdjustedPValue, 1e-300))) }
        let threshold = windows.isEmpty ? [] : [(x: Double(windows.first!.firstRow), y: -log10(alpha)), (x: Double(windows.last!.firstRow), y: -log10(alpha))]
        let figures = [
            "p": SVGPlot(title: "smallest adjusted p-value per window", xLabel: "first row of the window", yLabel: "−log10 adjusted p",
                         series: [.init(name: "windows", points: p), .init(name: "α", points: threshold, dashed: true, markers: false)]).render(),
            "count": SVGPlot(title: "drifted features per window", xLabel: "first row of the window", yLabel: "features",
                             series: [.init(name: "drifted", points: windows.map { (x: Double($0.firstRow), y: Double($0.driftedFeatures)) })]).render(),
        ]
        let table = windows.map { w in
            [String(w.index), String(w.firstRow), String(w.rows), String(w.driftedFeatures), String(format: "%.3g", w.smallestAdjustedPValue), w.worstFeature]
        }
        return HTMLReport(title: title, subtitle: subtitle, sections: [
            HTMLReport.Section(heading: "Windows", paragraphs: ["\(windows.filter { $0.driftedFeatures > 0 }.count) of \(windows.count) windows drifted."],
                               figures: ["p", "count"]),
            HTMLReport.Section(heading: "Every window", tables: [(["window", "first row", "rows", "drifted", "smallest adjusted p", "worst feature"], table)]),
        ], figures: figures).render()
    }

    /// (value, fraction ≤ value) at up to `curvePoints` quantiles of a sorted sample.
    static func cdf(_ sorted: [Double]) -> [(x: Double, y: Double)] {
        let n = sorted.count
        guard n > 0 else { return [] }
        let steps = min(curvePoints, n)
        return (0..<steps).map { k in
            let i = steps == 1 ? n - 1 : k * (n - 1) / (steps - 1)
            return (x: sorted[i], y: Double(i + 1) / Double(n))
        }
    }
}
