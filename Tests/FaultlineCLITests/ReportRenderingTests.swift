import Foundation
import Testing
import _TestSupport

/// The Chromium binary, if one is installed.
let installedChromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// The demo's report.html rendered by headless Chromium (`scripts/render-check` installs it; skipped
/// where it is not installed): the browser's DOM holds every figure with drawn content, and a
/// screenshot of the page is not blank.
@Suite("report rendering in Chromium", .enabled(if: installedChromium != nil))
struct ReportRenderingTests {
    static let chromium = installedChromium

    static func chrome(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium!)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func everyFigureRendersWithContent() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let demo = try CLIRunner.run(["demo", "--out", dir + "/report", "--quiet", "--members", "2"])
        #expect(demo.status == 0, "\(demo.stderr)")
        let page = "file://" + dir + "/report/report.html"
        let dom = try Self.chrome(["--dump-dom", page])
        for name in ["reliability.svg", "risk_coverage.svg", "uncertainty.svg", "roc.svg", "robustness.svg", "corruptions.svg", "conformal.svg"] {
            guard let start = dom.range(of: "<figure id=\"\(name)\">") else {
                Issue.record("the rendered page has no figure \(name)")
                continue
            }
            let figure = dom[start.upperBound...]
            let body = figure[..<(figure.range(of: "</figure>")?.lowerBound ?? figure.endIndex)]
            #expect(body.contains("<svg") && (body.contains("<polyline") || body.contains("<rect x")), "\(name) rendered empty")
        }
        _ = try Self.chrome(["--screenshot=" + dir + "/page.png", "--window-size=1100,2600", page])
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/page.png"))
        #expect(png.count > 50_000, "the screenshot is \(png.count) bytes: a blank page?")
    }
}
