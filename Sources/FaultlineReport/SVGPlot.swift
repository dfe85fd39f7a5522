import Foundation

/// Small, dependency-free SVG charts for the report: line charts (several series, optional markers),
/// histograms and bar charts, with axes, ticks, labels and a legend. Output is standalone SVG 1.1
/// (valid XML: every text is escaped), sized for embedding in the HTML report.
///
/// Every data mark carries `class="mark"` and the plot frame `class="frame"`, so a render check can
/// assert that marks stay inside the frame. Bars fill their bin (`Series.bins`), side by side when
/// several series share it, so they never cross the axes. Line series differ by colour, marker shape and
/// dash pattern; a series whose points equal an earlier one's is drawn dashed on top of it and named
/// "identical to …" in the legend, so no series hides behind another unannounced.
struct SVGPlot {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var dashed = false
        var markers = true
        /// Bars: the bin [lower, upper] of each point (default: halfway to the neighbouring points).
        var bins: [(lower: Double, upper: Double)]?
        /// Bars: where each bar starts (default 0, or the bottom of the y range).
        var bases: [Double]?
        /// Bars: a label drawn above each bar (e.g. its sample count).
        var labels: [String]?
        /// Bars: drawn over the previous series' bars (same span) instead of beside them.
        var overlay = false
        var color: String?
    }

    enum Kind { case lines, bars }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    var kind: Kind = .lines
    var xRange: ClosedRange<Double>?
    var yRange: ClosedRange<Double>?
    /// A dashed diagonal y = x (reliability diagrams, ROC curves).
    var diagonal = false
    var width = 560.0, height = 300.0
    /// The right margin, where the legend sits (widen it for long series names).
    var legendWidth = 150.0

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// "Nice" tick values covering the range (1, 2, 5 × 10ᵏ steps).
    static func ticks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / Double(count), magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = ceil(range.lowerBound / step) * step, out: [Double] = []
        while t <= range.upperBound + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func format(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1000 || abs(v) < 0.001 { return String(format: "%.1e", v) }
        return String(format: "%g", (v * 1000).rounded() / 1000)
    }

    /// The bins of a bar series: given, or halfway to the neighbouring points (the outer ones mirrored).
    static func bins(of series: Series) -> [(lower: Double, upper: Double)] {
        if let bins = series.bins { return bins }
        let xs = series.points.map(\.x)
        guard xs.count > 1 else { return xs.map { ($0 - 0.5, $0 + 0.5) } }
        return xs.indices.map { i in
            let left = i > 0 ? (xs[i - 1] + xs[i]) / 2 : xs[0] - (xs[1] - xs[0]) / 2
            let right = i + 1 < xs.count ? (xs[i] + xs[i + 1]) / 2 : xs[i] + (xs[i] - xs[i - 1]) / 2
            return (left, right)
        }
    }

    /// Marker shapes by series index, so overlapping series stay apart without colour.
    static func marker(_ shape: Int, x: Double, y: Double, color: String) -> String {
        switch shape % 4 {
        case 0: return String(format: "<circle class=\"mark marker\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.8\" fill=\"%@\"/>\n", x, y, color)
        case 1: return String(format: "<rect class=\"mark marker\" x=\"%.1f\" y=\"%.1f\" width=\"5\" height=\"5\" fill=\"%@\"/>\n", x - 2.5, y - 2.5, color)
        case 2: return String(format: "<path class=\"mark marker\" d=\"M%.1f,%.1f L%.1f,%.1f L%.1f,%.1f Z\" fill=\"%@\"/>\n", x, y - 3.2, x + 3, y + 2.2, x - 3, y + 2.2, color)
        default: return String(format: "<path class=\"mark marker\" d=\"M%.1f,%.1f L%.1f,%.1f L%.1f,%.1f L%.1f,%.1f Z\" fill=\"none\" stroke=\"%@\" stroke-width=\"1.2\"/>\n",
                                  x, y - 3.2, x + 3.2, y, x, y + 3.2, x - 3.2, y, color)
        }
    }

    func render() -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var xs: ClosedRange<Double>
        if let xRange {
            xs = xRange
        } else if kind == .bars {
            let edges = series.flatMap { Self.bins(of: $0).flatMap { [$0.lower, $0.upper] } }.filter(\.isFinite)
            xs = (edges.min() ?? 0)...(edges.max() ?? 1)
        } else {
            xs = (all.map(\.x).min() ?? 0)...(all.map(\.x).max() ?? 1)
        }
        if xs.upperBound <= xs.lowerBound { xs = xs.lowerBound...(xs.lowerBound + 1) }
        let bases = series.flatMap { $0.bases ?? [] }.filter(\.isFinite)
        var ys = yRange ?? (min(all.map(\.y).min() ?? 0, bases.min() ?? 0, 0)...max(all.map(\.y).max() ?? 1, bases.max() ?? 0, 1e-9))
        if ys.upperBound <= ys.lowerBound { ys = ys.lowerBound...(ys.lowerBound + 1) }
        let left = 58.0, right = legendWidth, top = 30.0, bottom = 44.0  // the legend sits in the right margin
        let plotW = width - left - right, plotH = height - top - bottom
        func clampX(_ x: Double) -> Double { min(max(x, xs.lowerBound), xs.upperBound) }
        func clampY(_ y: Double) -> Double { min(max(y, ys.lowerBound), ys.upperBound) }
        // Values outside the axes' ranges are drawn at the frame's edge (a fixed range is a statement
        // about the data: a value beyond it is shown at the limit, never outside the frame).
        func px(_ x: Double) -> Double { left + (clampX(x) - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (clampY(y) - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * plotH }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
        s += "<text x=\"\(Int(width / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
        for t in Self.ticks(ys) {
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left, py(t), left + plotW, py(t))
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 4, py(t) + 4, Self.format(t))
        }
        for t in Self.ticks(xs) {
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n", px(t), top + plotH, px(t), top + plotH + 4)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", px(t), top + plotH + 16, Self.format(t))
        }
        s += String(format: "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left, top, plotW, plotH)
        s += "<text x=\"\(Int(left + plotW / 2))\" y=\"\(Int(height - 8))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(14 \(Int(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        if diagonal {
            let lo = max(xs.lowerBound, ys.lowerBound), hi = min(xs.upperBound, ys.upperBound)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n", px(lo), py(lo), px(hi), py(hi))
        }
        // Side-by-side slots of bar series (an overlay shares the slot of the series before it).
        var slot: [Int] = [], slots = 0
        for line in series {
            if line.overlay, slots > 0 { slot.append(slots - 1) } else { slot.append(slots); slots += 1 }
        }
        var legend: [(name: String, note: String?, color: String, dash: String?)] = []
        for (k, line) in series.enumerated() {
            let color = line.color ?? Self.palette[k % Self.palette.count]
            let keep = line.points.indices.filter { line.points[$0].x.isFinite && line.points[$0].y.isFinite }
            let points = keep.map { line.points[$0] }
            var note: String?
            var legendDash: String?
            switch kind {
            case .bars:
                let bins = Self.bins(of: line)
                for i in keep {
                    let (lower, upper) = bins[i]
                    let width = (px(upper) - px(lower)) * 0.9 / Double(max(slots, 1))
                    let x = px(lower) + (px(upper) - px(lower)) * 0.05 + width * Double(slot[k])
                    let base = line.bases?[i] ?? max(ys.lowerBound, 0)
                    let (y0, y1) = (py(base), py(line.points[i].y))
                    // An overlay is a lightly filled outline, so the bar beneath stays readable.
                    s += String(format: "<rect class=\"mark\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\" fill-opacity=\"%@\"%@/>\n",
                                x, min(y0, y1), max(width, 0.5), abs(y0 - y1), color, line.overlay ? "0.15" : "0.75",
                                line.overlay ? " stroke=\"\(color)\" stroke-width=\"1.5\"" : "")
                    if let label = line.labels?[i] {
                        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"9\" fill=\"#444\">%@</text>\n",
                                    x + width / 2, max(min(y0, y1) - 3, top + 10), Self.escape(label))
                    }
                }
            case .lines:
                // A series equal to an earlier one is drawn dashed on top of it and named in the legend.
                let twin = series[..<k].firstIndex { other in
                    other.points.count == line.points.count && zip(other.points, line.points).allSatisfy { $0.x == $1.x && $0.y == $1.y }
                }
                if let twin, !points.isEmpty { note = "identical to \(series[twin].name)" }
                let dash = line.dashed ? "6 4" : (twin != nil ? "3 5" : nil)
                legendDash = dash
                let path = points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
                if !path.isEmpty {
                    s += "<polyline class=\"mark\" points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(twin != nil ? "1.6" : "2")\""
                        + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>\n"
                }
                if line.markers {
                    for p in points { s += Self.marker(k, x: px(p.x), y: py(p.y), color: color) }
                }
            }
            legend.append((line.name, note, color, legendDash))
        }
        var ly = top + 8
        for entry in legend {
            if let dash = entry.dash {  // a dashed series shows its dash pattern in the legend too
                s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\" stroke-dasharray=\"%@\"/>\n",
                            left + plotW + 6, ly + 2, left + plotW + 22, ly + 2, entry.color, dash)
            } else {
                s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"%@\"/>\n", left + plotW + 10, ly, entry.color)
            }
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>\n", left + plotW + 26, ly + 5, Self.escape(entry.name))
            if let note = entry.note {
                ly += 12
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#666\">(%@)</text>\n", left + plotW + 26, ly + 5, Self.escape(note))
            }
            ly += 15
        }
        return s + "</svg>\n"
    }
}
