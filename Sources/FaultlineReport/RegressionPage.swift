import Foundation

/// The HTML page of `faultline regress --html`: key figures, the coverage of Gaussian central intervals
/// against their nominal level, the PIT histogram, the residual histogram (with the reference's
/// residuals when a drift check ran), residual CDFs of reference and current, and the tables.
/// Self-contained (inline SVG, no scripts), every string escaped.
public enum RegressionPage {
    /// One feature's drift test (as `DriftPage.Feature`, without the CDF samples).
    public struct DriftRow: Sendable {
        /// The feature's name.
        public var name: String
        /// The KS statistic, in [0, 1].
        public var statistic: Double
        /// The p-value, in [0, 1].
        public var pValue: Double
        /// The p-value after the multiple-testing correction.
        public var adjustedPValue: Double
        /// Whether the adjusted p-value is below the level.
        public var drifted: Bool
        /// A row.
        public init(name: String, statistic: Double, pValue: Double, adjustedPValue: Double, drifted: Bool) {
            (self.name, self.statistic, self.pValue, self.adjustedPValue, self.drifted) = (name, statistic, pValue, adjustedPValue, drifted)
        }
    }

    /// - `summary`: (name, value) rows of the metrics table.
    /// - `levels`: (nominal, observed) coverage of Gaussian central intervals; nil: no Gaussian predictions.
    /// - `pitHistogram`: counts in equal bins of [0, 1].
    /// - `residuals`: y − ŷ of the evaluated set; `referenceResiduals`: of the drift reference.
    /// - `conformal`: (name, value) rows of the conformal section; empty: none.
    public static func render(title: String, subtitle: String, summary: [(String, String)], levels: [(nominal: Double, observed: Double)]?,
                              pitHistogram: [Int]?, residuals: [Double], referenceResiduals: [Double]? = nil,
                              conformal: [(String, String)] = [], drift: [DriftRow] = []) -> String {
        var figures: [String: String] = [:], calibrationFigures: [String] = [], residualFigures: [String] = []
        if let levels, !levels.isEmpty {
            figures["coverage"] = SVGPlot(title: "coverage of central intervals", xLabel: "nominal level", yLabel: "observed coverage",
                                          series: [.init(name: "observed", points: levels.map { (x: $0.nominal, y: $0.observed) })],
                                          xRange: 0...1, yRange: 0...1, diagonal: true, width: 520, height: 320).render()
            calibrationFigures.append("coverage")
        }
        if let pit = pitHistogram, !pit.isEmpty {
            let total = Double(max(pit.reduce(0, +), 1)), k = Double(pit.count)
            let bins = (0..<pit.count).map { (lower: Double($0) / k, upper: Double($0 + 1) / k) }
            figures["pit"] = SVGPlot(title: "PIT histogram (flat when calibrated)", xLabel: "Φ((y − μ)/σ)", yLabel: "share of samples",
                                     series: [.init(name: "samples", points: pit.indices.map { (x: (Double($0) + 0.5) / k, y: Double(pit[$0]) / total) }, bins: bins),
                                              .init(name: "uniform", points: pit.indices.map { (x: (Double($0) + 0.5) / k, y: 1 / k) }, bins: bins, overlay: true, color: "#888")],
                                     kind: .bars, xRange: 0...1, width: 520, height: 320).render()
            calibrationFigures.append("pit")
        }
        let finite = residuals.filter(\.isFinite), reference = (referenceResiduals ?? []).filter(\.isFinite)
        if !finite.isEmpty {
            let all = finite + reference
            var lo = all.min()!, hi = all.max()!
            if hi <= lo { (lo, hi) = (lo - 0.5, hi + 0.5) }
            let count = 30, width = (hi - lo) / Double(count)
            func histogram(_ v: [Double]) -> [Double] {
                var h = [Double](repeating: 0, count: count)
                for x in v { h[min(Int((x - lo) / width), count - 1)] += 1 }
                return h.map { $0 / Double(v.count) }
            }
            let bins = (0..<count).map { (lower: lo + Double($0) * width, upper: lo + Double($0 + 1) * width) }
            let centres = bins.map { ($0.lower + $0.upper) / 2 }
            var series: [SVGPlot.Series] = [.init(name: reference.isEmpty ? "residuals" : "current", points: zip(centres, histogram(finite)).map { (x: $0, y: $1) }, bins: bins)]
            if !reference.isEmpty {
                series.append(.init(name: "reference", points: zip(centres, histogram(reference)).map { (x: $0, y: $1) }, bins: bins, overlay: true, color: "#d62728"))
            }
            figures["residuals"] = SVGPlot(title: "residuals y − ŷ", xLabel: "residual", yLabel: "share of samples", series: series, kind: .bars,
                                           width: 520, height: 320).render()
            residualFigures.append("residuals")
            if !reference.isEmpty {
                figures["residual-cdf"] = SVGPlot(title: "residual CDFs", xLabel: "residual", yLabel: "fraction ≤ value",
                                                  series: [.init(name: "current", points: DriftPage.cdf(finite.sorted()), markers: false),
                                                           .init(name: "reference", points: DriftPage.cdf(reference.sorted()), dashed: true, markers: false,
                                                                 color: "#d62728")],
                                                  yRange: 0...1, width: 520, height: 320).render()
                residualFigures.append("residual-cdf")
            }
        }
        var sections = [HTMLReport.Section(heading: "Metrics", tables: [(["metric", "value"], summary.map { [$0.0, $0.1] })])]
        if !calibrationFigures.isEmpty {
            let rows = (levels ?? []).map { [String(format: "%.2f", $0.nominal), String(format: "%.4f", $0.observed), String(format: "%+.4f", $0.observed - $0.nominal)] }
            sections.append(HTMLReport.Section(heading: "Interval calibration",
                                               paragraphs: ["Share of targets inside μ ± Φ⁻¹(½ + p/2)·σ against p (the dashed diagonal is perfect calibration); "
                                                            + "the PIT histogram is flat for calibrated predictions, U-shaped for over-confident ones."],
                                               tables: rows.isEmpty ? [] : [(["nominal", "observed", "observed − nominal"], rows)], figures: calibrationFigures))
        }
        if !conformal.isEmpty {
            sections.append(HTMLReport.Section(heading: "Conformal intervals", tables: [(["quantity", "value"], conformal.map { [$0.0, $0.1] })]))
        }
        if !drift.isEmpty {
            let rows = drift.map { [$0.name, String(format: "%.4f", $0.statistic), String(format: "%.3g", $0.pValue), String(format: "%.3g", $0.adjustedPValue), $0.drifted ? "yes" : "no"] }
            sections.append(HTMLReport.Section(heading: "Drift against the reference",
                                               paragraphs: ["Two-sample KS tests, Bonferroni-adjusted over the \(drift.count) tests."],
                                               tables: [(["sample", "KS D", "p-value", "adjusted p", "drift"], rows)]))
        }
        if !residualFigures.isEmpty { sections.append(HTMLReport.Section(heading: "Residuals", figures: residualFigures)) }
        return HTMLReport(title: title, subtitle: subtitle, sections: sections, figures: figures).render()
    }
}
