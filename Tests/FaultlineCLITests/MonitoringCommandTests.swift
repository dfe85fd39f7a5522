import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import _TestSupport

/// `faultline drift fit | check | stream`, the old two-file `faultline drift`, and `faultline selective`.
@Suite("faultline drift fit / check / stream / compare, selective")
struct MonitoringCommandTests {
    func decode<T: Decodable>(_ type: T.Type, _ r: CLIRunner.Result) throws -> T { try JSONDecoder().decode(T.self, from: Data(r.stdout.utf8)) }

    /// N × 3 normal rows; column 1 is shifted by `shift` from row `from` on.
    static func rows(_ n: Int, seed: UInt64, shift: Float = 0, from: Int = 0) -> [Float] {
        var g = AnalysisCommandTests.SplitMix(seed)
        return (0..<(n * 3)).map { i in
            let z = Float((-2 * Foundation.log(1 - g.uniform())).squareRoot() * Foundation.cos(2 * .pi * g.uniform()))
            return z + (i % 3 == 1 && i / 3 >= from ? shift : 0)
        }
    }

    static func csv(_ values: [Float], header: String) -> String {
        header + "\n" + stride(from: 0, to: values.count, by: 3).map { i in values[i..<(i + 3)].map { String($0) }.joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    struct Feature: Decodable { var name: String; var statistic: Double; var pValue: Double; var adjustedPValue: Double; var drifted: Bool }
    struct Batch: Decodable { var features: [Feature]; var driftedFeatures: [String]; var drift: Bool; var rows: Int }
    struct Window: Decodable, Equatable { var index: Int; var firstRow: Int; var rows: Int; var driftedFeatures: Int; var smallestAdjustedPValue: Double; var worstFeature: String }
    struct Windows: Decodable { var windows: [Window]; var windowsWithDrift: Int }

    @Test func fitCheckWindowsAndNames() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let reference = Self.rows(400, seed: 1), current = Self.rows(300, seed: 2, shift: 1.5, from: 150)
        try Self.csv(reference, header: "age,income,score").write(toFile: dir + "/ref.csv", atomically: true, encoding: .utf8)
        try Self.csv(current, header: "age,income,score").write(toFile: dir + "/cur.csv", atomically: true, encoding: .utf8)
        try AnalysisCommandTests.write(reference, shape: [400, 3], to: dir + "/ref.npy")
        try AnalysisCommandTests.write(current, shape: [300, 3], to: dir + "/cur.npy")
        let fit = try CLIRunner.run(["drift", "fit", "--reference", dir + "/ref.csv", "--out", dir + "/ref.safetensors"])
        #expect(fit.status == 0, "\(fit.stderr)")
        // A batch: the shifted column is named and the only one drifted.
        let check = try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--current", dir + "/cur.csv", "--json"])
        #expect(check.status == 0, "\(check.stderr)")
        let batch = try decode(Batch.self, check)
        #expect(batch.features.map(\.name) == ["age", "income", "score"] && batch.driftedFeatures == ["income"] && batch.rows == 300)
        let text = try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--current", dir + "/cur.npy", "--fail-on-drift"])
        #expect(text.status == 1 && text.stdout.contains("income") && text.stdout.contains("adjusted p"), "\(text.stdout)")
        // Windows: streamed from the .npy equal the CSV's (read whole); drift only in windows that reach row 150.
        let streamed = try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--current", dir + "/cur.npy", "--window", "50", "--stride", "25", "--json"])
        let whole = try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--current", dir + "/cur.csv", "--window", "50", "--stride", "25", "--json"])
        #expect(streamed.status == 0 && whole.status == 0, "\(streamed.stderr) \(whole.stderr)")
        let w = try decode(Windows.self, streamed).windows
        #expect(w == (try decode(Windows.self, whole)).windows)
        #expect(w.count == 11 && w.map(\.firstRow) == (0..<11).map { $0 * 25 })
        #expect(w.filter { $0.firstRow + 50 <= 150 && $0.driftedFeatures > 0 }.count <= 1)  // 5 clean windows at α = 0.05 (this seed: 1)
        #expect(w.filter { $0.firstRow >= 150 }.allSatisfy { $0.driftedFeatures >= 1 && $0.worstFeature == "income" })
        // The features run in parallel; the JSON is the same bytes with 1 and 2 threads.
        for arguments in [["--current", dir + "/cur.npy"], ["--current", dir + "/cur.npy", "--window", "40", "--stride", "30"]] {
            let runs = try ["1", "2"].map { try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--json"] + arguments,
                                                              environment: ["FAULTLINE_THREADS": $0]) }
            #expect(runs[0].status == 0 && runs[0].stdout == runs[1].stdout, "\(arguments)")
        }
        let lines = try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--current", dir + "/cur.npy", "--window", "100"])
        #expect(lines.status == 0 && lines.stdout.split(separator: "\n").filter { $0.hasPrefix("window ") }.count == 3, "\(lines.stdout)")
        // HTML pages: well-formed XML with the names, the table and SVG plots.
        for (arguments, mention) in [(["--current", dir + "/cur.csv"], "income"), (["--current", dir + "/cur.npy", "--window", "50"], "worst feature")] {
            let r = try CLIRunner.run(["drift", "check", "--reference", dir + "/ref.safetensors", "--html", dir + "/page.html"] + arguments)
            #expect(r.status == 0, "\(r.stderr)")
            let page = try String(contentsOfFile: dir + "/page.html", encoding: .utf8)
            #expect(page.contains(mention) && page.contains("<svg"), "\(arguments)")
            #expect((try? XMLDocument(xmlString: page.replacingOccurrences(of: "<!DOCTYPE html>", with: ""))) != nil, "\(arguments): not well-formed")
        }
        // --names on a .npy reference; a CSV whose header disagrees is refused.
        try "a\nb\nc\n".write(toFile: dir + "/names.txt", atomically: true, encoding: .utf8)
        let named = try CLIRunner.run(["drift", "fit", "--reference", dir + "/ref.npy", "--names", dir + "/names.txt", "--out", dir + "/named.safetensors",
                                       "--correction", "bonferroni", "--alpha", "0.01"])
        #expect(named.status == 0, "\(named.stderr)")
        let byName = try decode(Batch.self, try CLIRunner.run(["drift", "check", "--reference", dir + "/named.safetensors", "--current", dir + "/cur.npy", "--json"]))
        #expect(byName.features.map(\.name) == ["a", "b", "c"] && byName.driftedFeatures == ["b"])
        let disagree = try CLIRunner.run(["drift", "check", "--reference", dir + "/named.safetensors", "--current", dir + "/cur.csv"])
        #expect(disagree.status == 2 && disagree.stderr.contains("'age'"), "\(disagree.stderr)")
        try "a\nb\n".write(toFile: dir + "/two.txt", atomically: true, encoding: .utf8)
        let short = try CLIRunner.run(["drift", "fit", "--reference", dir + "/ref.npy", "--names", dir + "/two.txt", "--out", dir + "/x.safetensors"])
        #expect(short.status == 2 && short.stderr.contains("--names"), "\(short.stderr)")
    }

    /// Hostile or foreign reference files, bad windows and widths: exit 2 with the option and file named.
    @Test func badReferencesAndWindows() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        try AnalysisCommandTests.write(Self.rows(40, seed: 1), shape: [40, 3], to: dir + "/x.npy")
        try AnalysisCommandTests.write(Array(Self.rows(40, seed: 1)[0..<80]), shape: [40, 2], to: dir + "/x2.npy")
        #expect(try CLIRunner.run(["drift", "fit", "--reference", dir + "/x.npy", "--out", dir + "/r.safetensors"]).status == 0)
        try Data([1, 2, 3, 4, 5, 6, 7, 8, 9]).write(to: URL(fileURLWithPath: dir + "/junk.safetensors"))
        let header: [UInt8] = Array(#"{"x":{"dtype":"F32","shape":[1000000000,1000000000],"data_offsets":[0,4]}}"#.utf8)
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + [0, 0, 0, 0]).write(to: URL(fileURLWithPath: dir + "/huge.safetensors"))
        for bad in ["junk.safetensors", "huge.safetensors", "x.npy", "missing.safetensors"] {
            let r = try CLIRunner.run(["drift", "check", "--reference", dir + "/" + bad, "--current", dir + "/x.npy"], memoryLimit: 1 << 30)
            #expect(r.status == 2 && r.stderr.contains("--reference") && r.stderr.contains(bad), "\(bad): \(r.status) \(r.stderr)")
        }
        let cases: [([String], String)] = [
            (["--current", dir + "/x2.npy"], "x2.npy"),
            (["--current", dir + "/x.npy", "--window", "41"], "fewer than one window"),
            (["--current", dir + "/x.npy", "--window", "0"], "--window"),
            (["--current", dir + "/x.npy", "--stride", "3"], "--stride needs --window"),
            (["--current", dir + "/x2.npy", "--window", "10"], "x2.npy"),
        ]
        for (arguments, mention) in cases {
            let r = try CLIRunner.run(["drift", "check", "--reference", dir + "/r.safetensors"] + arguments)
            #expect(r.status == 2 && r.stderr.contains(mention), "\(arguments): \(r.status) \(r.stderr)")
        }
        #expect(try CLIRunner.run(["drift", "fit", "--reference", dir + "/x.npy", "--out", dir + "/y.safetensors", "--correction", "holm"]).status == 2)
    }

    /// The old two-file invocation still runs `compare`, with the same output as naming it.
    @Test func oldInvocationStillWorks() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        try AnalysisCommandTests.write(Self.rows(60, seed: 1), shape: [60, 3], to: dir + "/a.npy")
        try AnalysisCommandTests.write(Self.rows(60, seed: 2, shift: 2), shape: [60, 3], to: dir + "/b.npy")
        let old = try CLIRunner.run(["drift", "--reference", dir + "/a.npy", "--current", dir + "/b.npy", "--permutations", "50", "--json"])
        let named = try CLIRunner.run(["drift", "compare", "--reference", dir + "/a.npy", "--current", dir + "/b.npy", "--permutations", "50", "--json"])
        #expect(old.status == 0 && old.stdout == named.stdout && old.stdout.contains("\"ksPValues\""), "\(old.stderr)")
        #expect(try CLIRunner.run(["drift", "--reference", dir + "/a.npy"]).status == 2)
        // The per-feature JSON names the features (CSV header of the reference), BH-adjusted.
        try Self.csv(Self.rows(60, seed: 1), header: "x,y,z").write(toFile: dir + "/a.csv", atomically: true, encoding: .utf8)
        try AnalysisCommandTests.write(Self.rows(60, seed: 2, shift: 3), shape: [60, 3], to: dir + "/c.npy")
        struct Compare: Decodable { var ksFeatures: [Feature]; var driftedFeatures: [Int] }
        let byHeader = try CLIRunner.run(["drift", "--reference", dir + "/a.csv", "--current", dir + "/c.npy", "--permutations", "0", "--json"])
        #expect(byHeader.status == 0, "\(byHeader.stderr)")
        let report = try decode(Compare.self, byHeader)
        #expect(report.ksFeatures.map(\.name) == ["x", "y", "z"] && report.driftedFeatures == [1] && report.ksFeatures.map(\.drifted) == [false, true, false])
        let text = try CLIRunner.run(["drift", "--reference", dir + "/a.csv", "--current", dir + "/c.npy", "--permutations", "0"])
        #expect(text.stdout.contains("y ("), "\(text.stdout)")
    }

    struct Stream: Decodable { var detector: String; var values: Int; var changePoints: [Int]; var inControlAverageRunLength: Double? }

    /// Each detector finds a 3σ mean shift at value 600 soon after it, and none before it with a large
    /// threshold; bad options exit 2.
    @Test(arguments: [["cusum", "--mean", "0", "--sigma", "1", "--threshold", "8"], ["page-hinkley", "--threshold", "25", "--delta", "0.5"], ["adwin"]])
    func streamDetectsAShift(detector: [String]) throws {
        let dir = ModelCommandTests.temporaryDirectory()
        var g = AnalysisCommandTests.SplitMix(9)
        let values = (0..<1200).map { i in Float((-2 * Foundation.log(1 - g.uniform())).squareRoot() * Foundation.cos(2 * .pi * g.uniform())) + (i >= 600 ? 3 : 0) }
        try AnalysisCommandTests.write(values, shape: [1200], to: dir + "/s.npy")
        let r = try CLIRunner.run(["drift", "stream", "--input", dir + "/s.npy", "--detector"] + detector + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try decode(Stream.self, r)
        #expect(report.values == 1200 && report.detector == detector[0])
        #expect(report.changePoints.first.map { $0 >= 600 && $0 < 700 } == true, "\(detector): \(report.changePoints)")
        #expect((report.inControlAverageRunLength != nil) == (detector[0] == "cusum"))
        let fail = try CLIRunner.run(["drift", "stream", "--input", dir + "/s.npy", "--detector"] + detector + ["--fail-on-change"])
        #expect(fail.status == 1 && fail.stdout.contains("change"), "\(fail.stdout)")
        #expect(try CLIRunner.run(["drift", "stream", "--input", dir + "/s.npy", "--detector", "ddm"]).status == 2)
        #expect(try CLIRunner.run(["drift", "stream", "--input", dir + "/s.npy", "--detector", detector[0], "--column", "1"]).status == 2)
        #expect(try CLIRunner.run(["drift", "stream", "--input", dir + "/s.npy", "--detector", detector[0], "--direction", "sideways"]).status == 2)
        let badParameter = try CLIRunner.run(["drift", "stream", "--input", dir + "/s.npy", "--detector", detector[0], "--delta", "-1", "--slack", "-1"])
        #expect(badParameter.status == 2 && badParameter.stderr.contains("--detector"), "\(badParameter.stderr)")
    }

    struct Selective: Decodable {
        struct Entry: Decodable { var score: String; var aurc: Double }
        var entries: [Entry]; var best: String; var samples: Int
    }

    @Test func selectiveScores() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let (z, y) = AnalysisCommandTests.logits(300, 4, seed: 5, margin: 1.5)
        try AnalysisCommandTests.write(z, shape: [300, 4], to: dir + "/z.npy")
        try AnalysisCommandTests.writeLabels(y, to: dir + "/y.npy")
        let r = try CLIRunner.run(["selective", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try decode(Selective.self, r)
        #expect(report.entries.map(\.score) == ["msp", "margin", "neg-entropy", "neg-energy", "max-logit"] && report.samples == 300)
        #expect(report.entries.first { $0.score == report.best }!.aurc == report.entries.map(\.aurc).min())
        let text = try CLIRunner.run(["selective", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy"])
        #expect(text.status == 0 && text.stdout.contains("AURC") && text.stdout.contains("best"))
        #expect(try CLIRunner.run(["selective", "--logits", dir + "/z.npy", "--probs", dir + "/z.npy", "--labels", dir + "/y.npy"]).status == 2)
        #expect(try CLIRunner.run(["selective", "--probs", dir + "/z.npy", "--labels", dir + "/y.npy"]).status == 2)  // not probabilities
    }
}
