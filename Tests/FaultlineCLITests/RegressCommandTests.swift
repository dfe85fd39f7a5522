import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import _TestSupport

/// `faultline regress` through the real binary: its JSON against values computed here from the
/// definitions, the conformal coverage on held-out rows, infinite intervals, drift, the HTML page
/// (well-formed SVG marks inside their frames), --help within 80 columns.
@Suite("faultline regress")
struct RegressCommandTests {
    /// Heteroscedastic data y = sin x + (0.2 + 0.6|x|)·ε: calibration (400 rows), test (600) and a
    /// shifted test set (noise × 1.5); predictions as means, mean-σ pairs and 90 % quantile bands.
    static let directory: String = {
        let dir = TestScratch.root.appendingPathComponent("faultline-regress-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func write(_ name: String, _ values: [Double], columns: Int) {
            let shape = columns == 1 ? "(\(values.count),)" : "(\(values.count / columns), \(columns))"
            try! Data(HostileInputTests.npy("<f8", shape, values.withUnsafeBytes { Array($0) })).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func uniform() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return (Double(state >> 11) + 0.5) / Double(1 << 53) }
        func normal() -> Double { (-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * Double.pi * uniform()) }
        for (name, n, noise) in [("cal", 400, 1.0), ("test", 600, 1.0), ("shift", 600, 1.5)] {
            let x = (0..<n).map { _ in uniform() * 4 - 2 }
            let s = x.map { 0.2 + 0.6 * abs($0) }
            let y = (0..<n).map { Foundation.sin(x[$0]) + noise * s[$0] * normal() }
            let m = x.map { Foundation.sin($0) }
            write("\(name)_mean.npy", m, columns: 1)
            write("\(name)_gauss.npy", (0..<n).flatMap { [m[$0], s[$0]] }, columns: 2)
            write("\(name)_q.npy", (0..<n).flatMap { [m[$0] - 1.2 * s[$0], m[$0] + 1.2 * s[$0]] }, columns: 2)
            write("\(name)_y.npy", y, columns: 1)
        }
        write("tiny_mean.npy", [0, 1, 2, 3, 4], columns: 1)
        write("tiny_y.npy", [0.5, 0.5, 2.5, 3, 3], columns: 1)
        return dir
    }()

    struct Report: Decodable {
        struct Metrics: Decodable { var meanAbsoluteError: Double; var rootMeanSquaredError: Double; var r2: Double; var medianAbsoluteError: Double }
        struct Coverage: Decodable { var coverage: Double; var meanWidth: Double; var unbounded: Int }
        struct Conformal: Decodable { var method: String; var rank: Int; var calibrationSize: Int; var coverage: Coverage; var quantile: Double }
        struct Calibration: Decodable { var pitHistogram: [Int]; var meanAbsoluteError: Double }
        struct Drift: Decodable { var drift: Bool; var tests: [Test] }
        struct Test: Decodable { var name: String; var drifted: Bool }
        var samples: Int
        var metrics: Metrics
        var gaussianNLL: Double?
        var calibration: Calibration?
        var conformal: Conformal?
        var drift: Drift?
    }

    static func run(_ arguments: [String]) throws -> (CLIRunner.Result, Report?) {
        let r = try CLIRunner.run(["regress"] + arguments.map { $0.replacingOccurrences(of: "@/", with: directory + "/") } + ["--json"])
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return (r, try? decoder.decode(Report.self, from: Data(r.stdout.utf8)))
    }

    /// The five-row closed form: residuals 0.5, −0.5, 0.5, 0, −1 → MAE 0.5, RMSE √0.35, median |r| 0.5,
    /// R² = 1 − 1.75/Σ(y − ȳ)².
    @Test func metricsFollowTheirDefinitions() throws {
        let (r, report) = try Self.run(["--pred", "@/tiny_mean.npy", "--y", "@/tiny_y.npy"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try #require(report).metrics
        let y = [0.5, 0.5, 2.5, 3, 3], mean = y.reduce(0, +) / 5
        #expect(abs(m.meanAbsoluteError - 0.5) < 1e-15 && abs(m.rootMeanSquaredError - 0.35.squareRoot()) < 1e-15 && m.medianAbsoluteError == 0.5)
        #expect(abs(m.r2 - (1 - 1.75 / y.map { ($0 - mean) * ($0 - mean) }.reduce(0, +))) < 1e-14)
    }

    /// Every method covers the held-out rows at α = 0.1 (within 3 binomial standard errors), with the
    /// order statistic k = ⌈401 · 0.9⌉ = 361 (asymmetric: ⌈401 · 0.95⌉ = 381); Gaussian predictions get
    /// an NLL and a PIT histogram of 600 samples.
    @Test func conformalMethodsCoverHeldOutRows() throws {
        let cases: [(method: String, suffix: String, columns: [String], rank: Int)] = [
            ("residual", "mean", [], 361), ("normalized", "gauss", [], 361), ("cqr", "q", ["--columns", "lower-upper"], 361),
            ("cqr-asymmetric", "q", ["--columns", "lower-upper"], 381),
        ]
        for c in cases {
            let (r, report) = try Self.run(["--pred", "@/test_\(c.suffix).npy", "--y", "@/test_y.npy", "--calibration-pred", "@/cal_\(c.suffix).npy",
                                            "--calibration-y", "@/cal_y.npy", "--method", c.method, "--alpha", "0.1"] + c.columns)
            #expect(r.status == 0, "\(c.method): \(r.stderr)")
            let conformal = try #require(report?.conformal, "\(c.method): \(r.stdout)")
            #expect(conformal.method == c.method && conformal.rank == c.rank && conformal.calibrationSize == 400)
            #expect(conformal.coverage.coverage >= 0.9 - 3 * (0.09 / 600).squareRoot(), "\(c.method): \(conformal.coverage.coverage)")
        }
        let (_, gaussian) = try Self.run(["--pred", "@/test_gauss.npy", "--y", "@/test_y.npy"])
        #expect(gaussian?.gaussianNLL != nil && gaussian?.calibration?.pitHistogram.reduce(0, +) == 600)
        #expect((gaussian?.calibration?.meanAbsoluteError ?? 1) < 0.05)
    }

    /// Five calibration rows at α = 0.1 need k = 6 > 5: exit 2 naming the minimum, or with
    /// --allow-infinite every interval is (−∞, ∞) (coverage 1, width ∞).
    @Test func tooFewCalibrationRowsThrowOrGiveInfiniteIntervals() throws {
        let base = ["--pred", "@/tiny_mean.npy", "--y", "@/tiny_y.npy", "--calibration-pred", "@/tiny_mean.npy", "--calibration-y", "@/tiny_y.npy"]
        let (refused, _) = try Self.run(base)
        #expect(refused.status == 2 && refused.stderr.contains("--calibration-pred") && refused.stderr.contains("at least 9"), "\(refused.stderr)")
        let (r, report) = try Self.run(base + ["--allow-infinite"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try #require(report?.conformal)
        #expect(c.rank == 6 && c.quantile == .infinity && c.coverage.coverage == 1 && c.coverage.unbounded == 5)
        let text = try CLIRunner.run(["regress"] + (base + ["--allow-infinite"]).map { $0.replacingOccurrences(of: "@/", with: Self.directory + "/") })
        #expect(text.stdout.contains("> n: infinite intervals") && text.stdout.contains("∞"), "\(text.stdout)")
    }

    /// The shifted set (noise × 1.5) drifts in |residual| against the test set; the test set against
    /// itself does not. Coverage below 1 − α − tolerance on the shifted set exits 1.
    @Test func driftAndExitCodes() throws {
        let (same, a) = try Self.run(["--pred", "@/test_gauss.npy", "--y", "@/test_y.npy", "--reference-pred", "@/test_gauss.npy", "--reference-y", "@/test_y.npy"])
        #expect(same.status == 0 && a?.drift?.drift == false, "\(same.stderr)")
        let (shifted, b) = try Self.run(["--pred", "@/shift_gauss.npy", "--y", "@/shift_y.npy", "--reference-pred", "@/test_gauss.npy", "--reference-y", "@/test_y.npy",
                                         "--calibration-pred", "@/cal_gauss.npy", "--calibration-y", "@/cal_y.npy"])
        #expect(b?.drift?.tests.first { $0.name == "absolute residual" }?.drifted == true, "\(shifted.stdout)")
        #expect(shifted.status == 1 && shifted.stderr.contains("coverage"), "\(shifted.status): \(shifted.stderr)")
    }

    /// The page: parses as XML, every SVG's marks inside its frame, the four plots present; --out JSON.
    @Test func htmlPageAndJSONFile() throws {
        let dir = Self.directory
        let r = try CLIRunner.run(["regress", "--pred", dir + "/shift_gauss.npy", "--y", dir + "/shift_y.npy", "--reference-pred", dir + "/test_gauss.npy",
                                   "--reference-y", dir + "/test_y.npy", "--html", dir + "/page.html", "--out", dir + "/report.json"])
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOfFile: dir + "/page.html", encoding: .utf8)
        for id in ["coverage", "pit", "residuals", "residual-cdf"] { #expect(html.contains("<figure id=\"\(id)\">"), "no figure \(id)") }
        #expect(XMLParser(data: Data(html.utf8)).parse(), "the page is not well-formed")
        for svg in SVGRenderCheck.documents(inHTML: html) { #expect(SVGRenderCheck.violations(svg).isEmpty, "\(SVGRenderCheck.violations(svg).prefix(3))") }
        let saved = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/report.json")))
        #expect(saved.samples == 600 && saved.drift != nil)
    }

    @Test func helpFitsEightyColumns() throws {
        let r = try CLIRunner.run(["regress", "--help"])
        #expect(r.status == 0)
        for line in r.stdout.split(separator: "\n") where !line.hasPrefix("USAGE:") {
            #expect(line.count <= 80, "faultline regress --help: \(line.count) columns: \(line)")
        }
    }
}
