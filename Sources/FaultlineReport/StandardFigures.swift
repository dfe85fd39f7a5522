import FaultlineReliability
import FaultlineRobustness

/// The report's standard plots from plain data.
enum StandardFigures {
    /// Accuracy per confidence bin as bars over the bin, the gap to the bin's mean confidence as a red
    /// bar on top of it (above: over-confident, below: under-confident), the bin's sample count above
    /// each bar, and the diagonal of perfect calibration. Empty bins are left out.
    static func reliability(_ bins: [CalibrationMetrics.Bin], title: String) -> String {
        let filled = bins.filter { $0.count > 0 }
        let spans = filled.map { (lower: $0.lower, upper: $0.upper) }
        return SVGPlot(title: title, xLabel: "confidence", yLabel: "accuracy",
                       series: [.init(name: "accuracy (n on top)", points: filled.map { (($0.lower + $0.upper) / 2, $0.accuracy) }, bins: spans,
                                      labels: filled.map { "\($0.count)" }),
                                .init(name: "gap to confidence", points: filled.map { (($0.lower + $0.upper) / 2, $0.meanConfidence) }, bins: spans,
                                      bases: filled.map(\.accuracy), overlay: true, color: "#d62728")],
                       kind: .bars, xRange: 0...1, yRange: 0...1, diagonal: true).render()
    }

    static func riskCoverage(_ points: [[Double]], title: String) -> String {
        SVGPlot(title: title, xLabel: "coverage", yLabel: "risk (error among accepted)",
                series: [.init(name: "risk", points: points.map { ($0[0], $0[1]) }, markers: false)], xRange: 0...1).render()
    }

    /// Bars of several histograms over the same edges, each normalised to shares, side by side inside
    /// each bin (the x axis spans the edges, the y axis starts at 0).
    static func histograms(_ edges: [Double], _ groups: [(name: String, counts: [Int])], title: String, xLabel: String) -> String {
        let centres = zip(edges, edges.dropFirst()).map { ($0 + $1) / 2 }
        return SVGPlot(title: title, xLabel: xLabel, yLabel: "share of samples", series: groups.map { group in
            let n = Double(max(group.counts.reduce(0, +), 1))
            return .init(name: group.name, points: zip(centres, group.counts).map { ($0, Double($1) / n) },
                         bins: zip(edges, edges.dropFirst()).map { ($0, $1) })
        }, kind: .bars).render()
    }

    /// ROC curves (FPR, TPR), drawn in the order of their names (a stable sort: equal names keep their order).
    static func roc(_ curves: [(name: String, points: [[Double]])], title: String) -> String {
        let ordered = curves.enumerated().sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }.map(\.element)
        return SVGPlot(title: title, xLabel: "false-positive rate", yLabel: "true-positive rate",
                series: ordered.map { c in .init(name: c.name, points: c.points.compactMap { $0.count >= 2 ? ($0[0], $0[1]) : nil }, markers: false) },
                xRange: 0...1, yRange: 0...1, diagonal: true).render()
    }

    /// Accuracy vs ε, one line per attack or certificate (dashed lines are lower bounds).
    static func robustness(_ epsilons: [Float], _ lines: [(name: String, values: [Double], lowerBound: Bool)], title: String) -> String {
        SVGPlot(title: title, xLabel: "ε", yLabel: "accuracy", series: lines.map { line in
            .init(name: line.name, points: Array(zip(epsilons.map(Double.init), line.values)), dashed: line.lowerBound)
        }, yRange: 0...1).render()
    }

    static func corruptions(_ report: CorruptionSweep.Report, title: String) -> String {
        let kinds = report.cells.map(\.corruption).reduce(into: [Corruption]()) { if !$0.contains($1) { $0.append($1) } }
        return SVGPlot(title: title, xLabel: "severity", yLabel: "accuracy", series: kinds.map { c in
            .init(name: c.rawValue, points: report.cells.filter { $0.corruption == c }.map { (Double($0.severity), $0.accuracy) })
        }, xRange: 1...5, yRange: 0...1, height: 340).render()
    }

    static func conformal(_ rows: [(alpha: Double, coverage: Double)], title: String) -> String {
        SVGPlot(title: title, xLabel: "target coverage 1 − α", yLabel: "empirical coverage",
                series: [.init(name: "coverage", points: rows.map { (1 - $0.alpha, $0.coverage) })],
                xRange: 0.65...1, yRange: 0.65...1, diagonal: true).render()
    }
}
