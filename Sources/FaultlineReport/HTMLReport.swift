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
