import Foundation
import Testing
import _TestSupport

/// The failing-example tiles of the demo's report.html (PNG data URIs written by Faultline's own
/// encoder) decode in headless Chromium at their 8×8 size: a page holding every tile of the report and
/// a script that lists each image's natural size once loaded, read back with --dump-dom. Skipped where
/// Chromium is not installed.
@Suite("example tiles in Chromium", .enabled(if: installedChromium != nil))
struct ExampleTilesRenderingTests {
    @Test func everyTileDecodes() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let demo = try CLIRunner.run(["demo", "--out", dir + "/report", "--quiet", "--members", "1"])
        #expect(demo.status == 0, "\(demo.stderr)")
        let html = try String(contentsOfFile: dir + "/report/report.html", encoding: .utf8)
        var images: [String] = []
        var rest = html[...]
        while let start = rest.range(of: "<img src=\"data:image/png;base64,") {
            guard let end = rest[start.lowerBound...].range(of: "/>") else { break }
            images.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        #expect(images.count >= 8, "the demo has tiles: \(images.count)")
        let page = "<html><body><div id=\"sizes\"></div>" + images.joined() + "<script>window.onload = () => { "
            + "document.getElementById('sizes').textContent = '[' + Array.from(document.images).map(i => i.naturalWidth + 'x' + i.naturalHeight).join(' ') + ']' }"
            + "</script></body></html>"
        try page.write(toFile: dir + "/tiles.html", atomically: true, encoding: .utf8)
        let dom = try ReportRenderingTests.chrome(["--virtual-time-budget=5000", "--dump-dom", "file://" + dir + "/tiles.html"])
        guard let open = dom.range(of: "<div id=\"sizes\">["), let close = dom[open.upperBound...].range(of: "]") else {
            Issue.record("no sizes in the dumped DOM: \(dom.prefix(300))")
            return
        }
        let sizes = dom[open.upperBound..<close.lowerBound].split(separator: " ")
        #expect(sizes.count == images.count && sizes.allSatisfy { $0 == "8x8" }, "\(sizes.prefix(10))")
    }
}
