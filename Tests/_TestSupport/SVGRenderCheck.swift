import Foundation

/// The render check of the report's SVG plots, written apart from the generator: reads the markup and
/// reports (1) every data mark that leaves its plot frame — bars by their whole extent, markers and
/// polyline vertices by their centre — and (2) every polyline drawn exactly on top of an earlier one
/// (same vertices) without a dash pattern and an "identical to" note in the legend.
///
/// A plot's frame is the `<rect class="frame" …>`; marks are the elements with class `mark` (bars,
/// polylines) or `mark marker` (point markers). Markup without these classes (the generator before
/// they existed) is read by shape: the unfilled rect is the frame, rects with a fill opacity are bars,
/// circles are markers. Plots with marks but no frame are reported too.
public enum SVGRenderCheck {
    /// The attributes of every element named `tag` whose class list contains `classToken` (nil: all).
    static func elements(_ svg: String, tag: String, classToken: String?) -> [[String: String]] {
        var out: [[String: String]] = []
        var rest = svg[...]
        while let open = rest.range(of: "<\(tag) ") {
            guard let close = rest[open.upperBound...].firstIndex(of: ">") else { break }
            let body = rest[open.upperBound..<close]
            var attributes: [String: String] = [:]
            var scan = body[...]
            while let eq = scan.range(of: "=\"") {
                let name = scan[..<eq.lowerBound].split(separator: " ").last.map(String.init) ?? ""
                guard let end = scan[eq.upperBound...].firstIndex(of: "\"") else { break }
                attributes[name] = String(scan[eq.upperBound..<end])
                scan = scan[scan.index(after: end)...]
            }
            if classToken.map({ (attributes["class"] ?? "").split(separator: " ").contains(Substring($0)) }) ?? true { out.append(attributes) }
            rest = rest[close...]
        }
        return out
    }

    static func number(_ attributes: [String: String], _ key: String) -> Double { Double(attributes[key] ?? "") ?? .nan }

    /// Every number pair "x,y" in a polyline's points or a path's data.
    static func vertices(_ text: String) -> [(Double, Double)] {
        let numbers = text.split(whereSeparator: { !"0123456789.-e".contains($0) }).compactMap { Double($0) }
        return stride(from: 0, to: numbers.count - 1, by: 2).map { (numbers[$0], numbers[$0 + 1]) }
    }

    /// The problems of one SVG document (empty when it passes). `tolerance` in pixels absorbs rounding.
    public static func violations(_ svg: String, tolerance: Double = 0.6) -> [String] {
        let classed = svg.contains("class=\"frame\"")
        let rects = elements(svg, tag: "rect", classToken: nil)
        let frames = rects.filter { classed ? $0["class"] == "frame" : $0["fill"] == "none" }
        let bars = rects.filter { classed ? $0["class"] == "mark" : $0["fill-opacity"] != nil }
        let markers = classed ? ["rect", "circle", "path"].flatMap { elements(svg, tag: $0, classToken: "marker") }
                              : elements(svg, tag: "circle", classToken: nil)
        let lines = elements(svg, tag: "polyline", classToken: classed ? "mark" : nil)
        guard let frame = frames.first else {
            return bars.isEmpty && markers.isEmpty && lines.isEmpty ? [] : ["marks but no plot frame"]
        }
        let (x0, y0) = (number(frame, "x") - tolerance, number(frame, "y") - tolerance)
        let (x1, y1) = (number(frame, "x") + number(frame, "width") + tolerance, number(frame, "y") + number(frame, "height") + tolerance)
        func inside(_ x: Double, _ y: Double) -> Bool { x >= x0 && x <= x1 && y >= y0 && y <= y1 }
        var problems: [String] = []
        for bar in bars {
            let (x, y, w, h) = (number(bar, "x"), number(bar, "y"), number(bar, "width"), number(bar, "height"))
            if !(inside(x, y) && inside(x + w, y + h)) { problems.append("bar at x \(x)…\(x + w), y \(y)…\(y + h) leaves the frame") }
        }
        for marker in markers {
            let centre: (Double, Double)
            if let cx = marker["cx"] { centre = (Double(cx) ?? .nan, number(marker, "cy")) }
            else if marker["d"] != nil {
                let v = vertices(marker["d"]!)
                centre = (v.map(\.0).reduce(0, +) / Double(max(v.count, 1)), v.map(\.1).reduce(0, +) / Double(max(v.count, 1)))
            } else { centre = (number(marker, "x") + number(marker, "width") / 2, number(marker, "y") + number(marker, "height") / 2) }
            if !inside(centre.0, centre.1) { problems.append("marker at (\(centre.0), \(centre.1)) leaves the frame") }
        }
        for line in lines {
            for (x, y) in vertices(line["points"] ?? "") where !inside(x, y) {
                problems.append("line vertex (\(x), \(y)) leaves the frame")
                break
            }
        }
        for (k, line) in lines.enumerated() {
            guard let earlier = lines[..<k].first(where: { $0["points"] == line["points"] }) else { continue }
            let dashed = line["stroke-dasharray"] != nil && line["stroke-dasharray"] != earlier["stroke-dasharray"]
            if !dashed || !svg.contains("identical to") {
                problems.append("a line is drawn exactly over an earlier one without a distinct dash and an \"identical to\" note")
            }
        }
        return problems
    }

    /// The SVG documents inside an HTML page, in order.
    public static func documents(inHTML html: String) -> [String] {
        var out: [String] = []
        var rest = html[...]
        while let open = rest.range(of: "<svg"), let close = rest[open.lowerBound...].range(of: "</svg>") {
            out.append(String(rest[open.lowerBound..<close.upperBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }
}
