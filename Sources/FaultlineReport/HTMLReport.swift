import Foundation

/// A self-contained HTML page (inline CSS and SVG, no scripts, no network): a title, key figures,
/// sections of tables and figures. Every string is escaped, so the page is well-formed XHTML-compatible
/// markup (tested by parsing it as XML).
struct HTMLReport {
    struct Section {
        var heading: String
        var paragraphs: [String] = []
        var tables: [(header: [String], rows: [[String]])] = []
        var figures: [String] = []  // names of SVG figures
        /// Markup placed after the tables (already escaped), and its plain-text form for report.txt.
        var html: String = ""
        var text: [String] = []
    }

    var title: String
    var subtitle: String
    var sections: [Section]
    var figures: [String: String]  // name → SVG markup

    /// The same sections as plain text (headings, paragraphs, tables; figures named by file), for report.txt.
    func renderText() -> String {
        var lines = [title, subtitle, ""]
        for section in sections {
            lines += [section.heading, String(repeating: "=", count: section.heading.count)]
            lines += section.paragraphs
            for table in section.tables { lines += [TextTable.grid(header: table.header, rows: table.rows), ""] }
            lines += section.text
            let shown = section.figures.filter { figures[$0] != nil }
            if !shown.isEmpty { lines.append("Plots: " + shown.joined(separator: ", ")) }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    func render() -> String {
        var h = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(SVGPlot.escape(title))</title>
            <style>
            body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
            h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
            table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
            th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; } th { background: #f3f3f3; }
            td:first-child, th:first-child { text-align: left; }
            .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px; }
            figure { margin: 0; } figure svg { width: 100%; height: auto; display: block; }
            table { display: block; overflow-x: auto; }
            h3 { font-size: 1em; margin: 1.1em 0 0.3em; } .note { color: #555; font-size: 0.9em; }
            .examples { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.3em 0 0.8em; }
            .tile { width: 112px; font-size: 0.78em; line-height: 1.3; } .tile.wide { width: 236px; }
            .tile .imgs { display: flex; gap: 4px; }
            .tile img { display: block; border: 1px solid #bbb; image-rendering: pixelated; }
            .tile figcaption { margin-top: 3px; overflow-wrap: anywhere; }
            </style>
            </head>
            <body>
            <h1>\(SVGPlot.escape(title))</h1>
            <p class="sub">\(SVGPlot.escape(subtitle))</p>

            """
        for section in sections {
            h += "<h2>\(SVGPlot.escape(section.heading))</h2>\n"
            for p in section.paragraphs { h += "<p>\(SVGPlot.escape(p))</p>\n" }
            for table in section.tables {
                h += "<table>\n<tr>" + table.header.map { "<th>\(SVGPlot.escape($0))</th>" }.joined() + "</tr>\n"
                for row in table.rows { h += "<tr>" + row.map { "<td>\(SVGPlot.escape($0))</td>" }.joined() + "</tr>\n" }
                h += "</table>\n"
            }
            h += section.html
            if !section.figures.isEmpty {
                h += "<div class=\"figures\">\n"
                for name in section.figures {
                    if let svg = figures[name] { h += "<figure id=\"\(SVGPlot.escape(name))\">\n\(svg)</figure>\n" }
                }
                h += "</div>\n"
            }
        }
        return h + "</body>\n</html>\n"
    }
}
