import Foundation

/// Small, dependency-free SVG charts for the report: line charts (several series, optional markers),
/// step histograms and bar charts, with axes, ticks, labels and a legend. Output is standalone SVG 1.1
/// (valid XML: every text is escaped), sized for embedding in the HTML report.
struct SVGPlot {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var dashed = false
        var markers = true
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

    func render() -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xs = xRange ?? ((all.map(\.x).min() ?? 0)...max(all.map(\.x).max() ?? 1, (all.map(\.x).min() ?? 0) + 1e-9))
        var ys = yRange ?? ((min(all.map(\.y).min() ?? 0, 0))...max(all.map(\.y).max() ?? 1, 1e-9))
        if ys.upperBound <= ys.lowerBound { ys = ys.lowerBound...(ys.lowerBound + 1) }
        let left = 58.0, right = 150.0, top = 30.0, bottom = 44.0  // the legend sits in the right margin
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xs.lowerBound) / max(xs.upperBound - xs.lowerBound, 1e-300) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - ys.lowerBound) / max(ys.upperBound - ys.lowerBound, 1e-300) * plotH }
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
        s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left, top, plotW, plotH)
        s += "<text x=\"\(Int(left + plotW / 2))\" y=\"\(Int(height - 8))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(14 \(Int(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        if diagonal {
            let lo = max(xs.lowerBound, ys.lowerBound), hi = min(xs.upperBound, ys.upperBound)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n", px(lo), py(lo), px(hi), py(hi))
        }
        for (k, line) in series.enumerated() {
            let color = Self.palette[k % Self.palette.count]
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            switch kind {
            case .bars:
                let barWidth = points.count > 1 ? (px(points[1].x) - px(points[0].x)) * 0.8 / Double(series.count) : plotW / 10
                for p in points {
                    let x = px(p.x) - barWidth * Double(series.count) / 2 + barWidth * Double(k), y0 = py(max(ys.lowerBound, 0))
                    s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\" fill-opacity=\"0.75\"/>\n",
                                x, min(py(p.y), y0), max(barWidth, 1), abs(y0 - py(p.y)), color)
                }
            case .lines:
                let path = points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
                if !path.isEmpty {
                    s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(line.dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
                }
                if line.markers {
                    for p in points { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.8\" fill=\"%@\"/>\n", px(p.x), py(p.y), color) }
                }
            }
            // Legend entry.
            let ly = top + 8 + Double(k) * 15
            s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"%@\"/>\n", left + plotW + 10, ly, color)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>\n", left + plotW + 26, ly + 5, Self.escape(line.name))
        }
        return s + "</svg>\n"
    }
}
