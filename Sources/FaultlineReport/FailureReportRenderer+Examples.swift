import FaultlineAnalysis
import Foundation

extension FailureReportRenderer {
    /// The "Failing examples" section: per group an image grid (8-bit PNG tiles as data URIs, captioned
    /// with row, label, prediction, confidence and, for shifted sets, the OOD score) or, for non-image
    /// inputs, a table of the rows' most deviating features; an empty group is one sentence.
    static func examplesSection(_ e: FailureExamples, _ r: FailureReport) -> HTMLReport.Section {
        let t = r.attribution.thresholds
        let detector = r.featureSpace == nil ? "Mahalanobis on the inputs" : "Mahalanobis on the penultimate features"
        let who = r.ensemble == nil ? "" : " Predictions are member 1's (the analysed member), as in the attribution."
        var intro = "A few rows of each failure: at most \(FailureExamples.perCategory) per group, in the order each heading names, ties by "
            + "the lower row index. Captions: row, label → prediction (confidence p); on shifted sets the OOD score (\(detector), "
            + String(format: "threshold %.4g).", t.outOfDistributionScore) + who
        if let layout = e.image, let range = e.pixelRange {
            let span = zip(range.lower, range.upper).map { String(format: "%g…%g", $0, $1) }
            let spans = Set(span).count == 1 ? span[0] : span.joined(separator: ", ")
            intro += " Images: inputs \(layout.input) (layout from the \(layout.source == "given" ? "given shape" : layout.source == "model" ? "model's input shape" : "square width")), "
                + "values \(spans) (the \(range.source)) drawn black to white"
                + (layout.channels == 3 ? " per RGB channel." : layout.channels == 1 ? "." : ", channels averaged to grey.")
        } else {
            intro += " The inputs are not images: each row is shown by its \(FailureExamples.listedFeatures) features furthest from the "
                + "training mean, z = (x − mean) / sd of the training rows."
        }
        var html = "<p>\(SVGPlot.escape(intro))</p>\n"
        var text = [intro]
        for group in e.groups {
            let title = heading(group)
            html += "<h3>\(SVGPlot.escape(title))</h3>\n"
            text.append("")
            text.append(title)
            guard !group.examples.isEmpty else {
                let sentence = emptySentence(group, r)
                html += "<p>\(SVGPlot.escape(sentence))</p>\n"
                text.append(sentence)
                continue
            }
            if group.kind == .flipped, e.image != nil {
                let note = "Each tile: the clean input, the adversarial input and the perturbation δ = adversarial − clean, scaled to full "
                    + "contrast (grey 0, black −‖δ‖∞, white +‖δ‖∞; the amplification is ‖δ‖∞ → full range)."
                html += "<p class=\"note\">\(SVGPlot.escape(note))</p>\n"
                text.append(note)
            }
            let width = e.pixelRange.map { Double(($0.upper.first ?? 1) - ($0.lower.first ?? 0)) }
            let rows = group.examples.map { captionLines($0, group.kind, rangeWidth: width) }
            if let layout = e.image {
                html += "<div class=\"examples\">\n"
                for (example, lines) in zip(group.examples, rows) {
                    let images = [example.pixels, example.adversarialPixels, example.perturbationPixels].compactMap { $0 }
                    html += "<figure class=\"tile\(images.count > 1 ? " wide" : "")\"><div class=\"imgs\">"
                    let alt = ["input", "adversarial", "perturbation"]
                    for (k, pixels) in images.enumerated() {
                        html += imageTag(pixels, layout, alt: "row \(example.row) \(alt[k])", small: images.count > 1)
                    }
                    html += "</div><figcaption>" + lines.map(SVGPlot.escape).joined(separator: "<br/>") + "</figcaption></figure>\n"
                }
                html += "</div>\n"
                text += rows.map { "  " + $0.joined(separator: ", ") }
            } else {
                var header = ["row", "label", "predicted", "p"]
                let scored = group.examples.contains { $0.score != nil }
                if scored { header.append("OOD score") }
                if group.kind == .flipped { header += ["adversarial", "‖δ‖∞"] }
                header.append("most deviating features: index = value (z)")
                let table = group.examples.map { x -> [String] in
                    var row = [String(x.row), x.label.map(String.init) ?? "—", String(x.predicted), String(format: "%.3f", x.confidence)]
                    if scored { row.append(x.score.map { String(format: "%.4g", $0) } ?? "—") }
                    if group.kind == .flipped {
                        row.append(x.adversarialPredicted.map { p in "\(p) (p \(String(format: "%.2f", x.adversarialConfidence ?? .nan)))" } ?? "—")
                        row.append(x.perturbationNorm.map { String(format: "%.3g", $0) } ?? "—")
                    }
                    row.append((x.features ?? []).map { String(format: "x%d = %.4g (%+.2f)", $0.index, $0.value, $0.z) }.joined(separator: "; "))
                    return row
                }
                html += "<table>\n<tr>" + header.map { "<th>\(SVGPlot.escape($0))</th>" }.joined() + "</tr>\n"
                for row in table { html += "<tr>" + row.map { "<td>\(SVGPlot.escape($0))</td>" }.joined() + "</tr>\n" }
                html += "</table>\n"
                text += [TextTable.grid(header: header, rows: table)]
            }
        }
        text += e.notes
        for note in e.notes { html += "<p class=\"note\">\(SVGPlot.escape(note))</p>\n" }
        return .init(heading: "Failing examples", html: html, text: text)
    }

    /// "Confident and wrong (test): 3 of 12 rows, by confidence, highest first".
    static func heading(_ g: FailureExamples.Group) -> String {
        let name: String
        switch g.kind {
        case .confidentError: name = "Confident and wrong (test)"
        case .flipped: name = "Right, but flipped within ε (test)"
        case .mostOutOfDistribution: name = "Most out of distribution: \(g.set)"
        case .silentUnderShift: name = "Silent under shift (wrong, called in distribution): \(g.set)"
        }
        return g.candidates == 0 ? name : "\(name): \(g.examples.count) of \(g.candidates) rows, by \(g.kind.order)"
    }

    static func emptySentence(_ g: FailureExamples.Group, _ r: FailureReport) -> String {
        let t = r.attribution.thresholds
        switch g.kind {
        case .confidentError:
            return String(format: "No confident errors: no test row is wrong, in distribution and predicted with p ≥ %.2f.", t.confidence)
        case .flipped:
            if r.robustnessNotes.contains(where: { $0.contains("--skip attacks") }) { return "No flipped rows: attacks were skipped." }
            return String(format: "No flipped rows: %@ flips no right prediction within ε = %.3g.", t.attack, t.epsilon)
        case .mostOutOfDistribution:
            return "No rows in \(g.set)."
        case .silentUnderShift:
            return "No silent errors on \(g.set): the detector flags every wrong prediction (or there is none)."
        }
    }

    /// The caption of one tile, line by line.
    /// The perturbation's amplification: δ = ±‖δ‖∞ spans the tile's range, the input's `rangeWidth`.
    static func captionLines(_ x: FailureExamples.Example, _ kind: FailureExamples.Kind, rangeWidth: Double? = nil) -> [String] {
        let p = { (v: Double) in String(format: "%.2f", v) }
        let truth = x.label.map { "label \($0) → \(x.predicted)" } ?? "predicted \(x.predicted)"
        switch kind {
        case .confidentError:
            return ["row \(x.row)", truth, "p = \(p(x.confidence))"]
        case .flipped:
            var lines = ["row \(x.row), label \(x.label.map(String.init) ?? "—")", "clean → \(x.predicted) (p \(p(x.confidence)))"]
            if let a = x.adversarialPredicted { lines.append("adv. → \(a) (p \(p(x.adversarialConfidence ?? .nan)))") }
            if let d = x.perturbationNorm {
                lines.append(String(format: "‖δ‖∞ = %.3g", d) + (rangeWidth.map { d > 0 && x.perturbationPixels != nil ? String(format: ", δ shown ×%.3g", $0 / (2 * d)) : "" } ?? ""))
            }
            return lines
        case .mostOutOfDistribution, .silentUnderShift:
            return ["row \(x.row)", "score \(x.score.map { String(format: "%.4g", $0) } ?? "—")", truth, "p = \(p(x.confidence))"]
        }
    }

    /// An <img> of a tile: its 8-bit pixels as a PNG data URI, drawn with crisp pixels about 96 px wide.
    static func imageTag(_ base64: String, _ layout: FailureExamples.Layout, alt: String, small: Bool) -> String {
        let (h, w) = (layout.height, layout.width)
        // A layout no report of `FailureExamples` writes (a hand-edited report.json): no image, no huge allocation.
        let side = FailureExamples.maxSide
        guard (1...side).contains(h), (1...side).contains(w), (1...4096).contains(layout.channels) else {
            return "<span>(\(SVGPlot.escape(alt)): layout \(h)×\(w) not drawn)</span>"
        }
        let bytes = [UInt8](Data(base64Encoded: base64) ?? Data())
        let png = PNGEncoder.encode(planar: bytes, channels: layout.channels, height: h, width: w)
        let target = small ? 72 : 96
        let scale = max(1, target / max(h, w, 1))
        return "<img src=\"data:image/png;base64,\(png.base64EncodedString())\" alt=\"\(SVGPlot.escape(alt))\" "
            + "width=\"\(w * scale)\" height=\"\(h * scale)\"/>"
    }
}

/// A minimal PNG writer: 8-bit greyscale or RGB, one IDAT of stored (uncompressed) deflate blocks —
/// tiles are a few KB, so compression would not pay for its code.
enum PNGEncoder {
    /// A PNG of C×H×W bytes: one channel grey, three RGB, any other count the channels' mean as grey.
    /// Bytes missing from a short buffer are 0.
    static func encode(planar: [UInt8], channels: Int, height: Int, width: Int) -> Data {
        let (h, w, c) = (max(height, 1), max(width, 1), max(channels, 1))
        let plane = h * w
        func at(_ i: Int) -> UInt8 { i < planar.count ? planar[i] : 0 }
        let rgb = c == 3
        var raw: [UInt8] = []
        raw.reserveCapacity(h * (1 + w * (rgb ? 3 : 1)))
        for y in 0..<h {
            raw.append(0)  // filter: none
            for x in 0..<w {
                let p = y * w + x
                if rgb {
                    raw += [at(p), at(plane + p), at(2 * plane + p)]
                } else {
                    let sum = (0..<c).reduce(0) { $0 + Int(at($1 * plane + p)) }
                    raw.append(UInt8(sum / c))
                }
            }
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65535, raw.count - offset)
            zlib.append(offset + n == raw.count ? 1 : 0)
            zlib += [UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
            zlib += raw[offset..<(offset + n)]
            offset += n
        } while offset < raw.count
        var (a, b): (UInt32, UInt32) = (1, 0)
        for v in raw { a = (a + UInt32(v)) % 65521; b = (b + a) % 65521 }
        zlib += bigEndian((b << 16) | a)
        var png: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
        png += chunk("IHDR", bigEndian(UInt32(w)) + bigEndian(UInt32(h)) + [8, rgb ? 2 : 0, 0, 0, 0])
        png += chunk("IDAT", zlib)
        png += chunk("IEND", [])
        return Data(png)
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO 3309, as PNG and zip use it).
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for v in bytes { c = table[Int((c ^ UInt32(v)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}
