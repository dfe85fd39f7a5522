import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import _TestSupport

@Suite("faultline train / attack / demo")
struct ModelCommandTests {
    static func temporaryDirectory() -> String {
        let dir = TestScratch.root.appendingPathComponent("faultline-cli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    @Test func trainThenAttackOnDigits() throws {
        let dir = Self.temporaryDirectory()
        let train = try CLIRunner.run(["train", "--data", "digits", "--spec", "linear:64-32,relu,linear:32-10", "--epochs", "15",
                                       "--out", dir + "/m.safetensors", "--json", "--quiet"])
        #expect(train.status == 0, "\(train.stderr)")
        struct Member: Decodable { var weights: String; var testAccuracy: Double? }
        let members = try JSONDecoder().decode([Member].self, from: Data(train.stdout.utf8))
        #expect(members.count == 1 && (members[0].testAccuracy ?? 0) > 0.8)

        // Attack 40 random inputs in [0, 1] through the CLI.
        let x = dir + "/x.npy", y = dir + "/y.npy"
        try writeSample(x: x, y: y)
        let attack = try CLIRunner.run(["attack", "--weights", dir + "/m.safetensors", "--x", x, "--y", y, "--eps", "0.2,0,0.05",
                                        "--steps", "10", "--json", "--out", dir + "/adv.npz"])
        #expect(attack.status == 0, "\(attack.stderr)")
        struct Report: Decodable { struct Row: Decodable { var epsilon: Float; var robustAccuracy: Double }; var cleanAccuracy: Double; var rows: [Row] }
        let report = try JSONDecoder().decode(Report.self, from: Data(attack.stdout.utf8))
        #expect(report.rows.map(\.epsilon) == [0, 0.05, 0.2])
        #expect(report.rows[0].robustAccuracy == report.cleanAccuracy)
        #expect(report.rows[2].robustAccuracy <= report.rows[1].robustAccuracy)
        #expect(FileManager.default.fileExists(atPath: dir + "/adv.npz"))
        let threshold = try CLIRunner.run(["attack", "--weights", dir + "/m.safetensors", "--x", x, "--y", y, "--eps", "0.3", "--min-accuracy", "0.99", "--quiet"])
        #expect(threshold.status == 1)

        // AutoAttack reports the robust accuracy after each stage; DeepFool answers every ε from one run.
        let auto = try CLIRunner.run(["attack", "--weights", dir + "/m.safetensors", "--x", x, "--y", y, "--eps", "0.05", "--attack", "autoattack",
                                      "--steps", "10", "--queries", "50", "--json"])
        #expect(auto.status == 0, "\(auto.stderr)")
        struct Staged: Decodable { struct Row: Decodable { struct Stage: Decodable { var attack: String; var robustAccuracy: Double }; var stages: [Stage] }; var rows: [Row] }
        let stages = try JSONDecoder().decode(Staged.self, from: Data(auto.stdout.utf8)).rows[0].stages
        #expect(stages.map(\.attack) == ["apgd-ce", "apgd-t-dlr", "square"])
        #expect(zip(stages.dropFirst(), stages).allSatisfy { $0.robustAccuracy <= $1.robustAccuracy })
        let deepfool = try CLIRunner.run(["attack", "--weights", dir + "/m.safetensors", "--x", x, "--y", y, "--eps", "0,0.1,1", "--attack", "deepfool", "--json"])
        #expect(deepfool.status == 0, "\(deepfool.stderr)")
        let curve = try JSONDecoder().decode(Report.self, from: Data(deepfool.stdout.utf8))
        #expect(curve.rows[0].robustAccuracy == curve.cleanAccuracy && curve.rows[2].robustAccuracy <= curve.rows[1].robustAccuracy)

        // Corruption table: one cell per corruption and severity; unknown names exit 2.
        let corrupt = try CLIRunner.run(["corrupt", "--weights", dir + "/m.safetensors", "--x", x, "--y", y, "--corruptions", "contrast,rotation",
                                         "--severities", "1,5", "--json"])
        #expect(corrupt.status == 0, "\(corrupt.stderr)")
        struct Sweep: Decodable { struct Cell: Decodable { var corruption: String; var severity: Int; var accuracy: Double }; var cells: [Cell] }
        #expect(try JSONDecoder().decode(Sweep.self, from: Data(corrupt.stdout.utf8)).cells.map(\.severity) == [1, 5, 1, 5])
        let unknown = try CLIRunner.run(["corrupt", "--weights", dir + "/m.safetensors", "--x", x, "--y", y, "--corruptions", "fog"])
        #expect(unknown.status == 2 && unknown.stderr.contains("fog"))
    }

    /// 40 random rows as x.npy (float32, [0, 1]) and labels as y.npy (int64), written byte by byte here
    /// so the test does not depend on the writer of the library.
    func writeSample(x: String, y: String) throws {
        var rng = SystemRandomNumberGenerator()
        let values = (0..<(40 * 64)).map { _ in Float.random(in: 0...1, using: &rng) }
        let labels = (0..<40).map { Int64($0 % 10) }
        try Data(npy(descr: "<f4", shape: "(40, 64)", payload: values.withUnsafeBytes { Array($0) })).write(to: URL(fileURLWithPath: x))
        try Data(npy(descr: "<i8", shape: "(40,)", payload: labels.withUnsafeBytes { Array($0) })).write(to: URL(fileURLWithPath: y))
    }

    func npy(descr: String, shape: String, payload: [UInt8]) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let n = header.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8) + payload
    }

    @Test func badInputsExitWithCode2() throws {
        let dir = Self.temporaryDirectory()
        let missing = try CLIRunner.run(["attack", "--weights", dir + "/none.safetensors", "--x", "a.npy", "--y", "b.npy"])
        #expect(missing.status == 2 && missing.stderr.contains("no such file"))
        let train = try CLIRunner.run(["train", "--data", "digits", "--spec", "linear:63-10", "--epochs", "1", "--out", dir + "/m.safetensors", "--quiet"])
        #expect(train.status == 2 && train.stderr.contains("63"), "\(train.stderr)")
        let spec = try CLIRunner.run(["train", "--data", "digits", "--spec", "linear:64-10,softplus", "--quiet"])
        #expect(spec.status == 2 && spec.stderr.contains("softplus"))
        let unwritable = try CLIRunner.run(["demo", "--out", "/nonexistent-dir/report", "--quiet", "--members", "1"])
        #expect(unwritable.status == 2 && unwritable.stderr.contains("report"))
    }

    @Test func demoWritesTheReport() throws {
        let out = Self.temporaryDirectory() + "/report"
        let r = try CLIRunner.run(["demo", "--out", out, "--quiet", "--members", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))
        struct Report: Decodable {
            struct Row: Decodable { var epsilon: Float; var pgd20: Double }
            struct Ensemble: Decodable { var accuracy: Double }
            var ensemble: Ensemble; var robustness: [Row]
        }
        let report = try JSONDecoder().decode(Report.self, from: data)
        #expect(report.ensemble.accuracy > 0.9)
        #expect(report.robustness.first?.epsilon == 0 && report.robustness.last!.pgd20 < report.robustness.first!.pgd20)
        #expect(try String(contentsOfFile: out + "/report.txt", encoding: .utf8).contains("PGD-20"))
        // The HTML page and every plot parse as XML, and the page embeds every plot.
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        let plots = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".svg") }
        #expect(plots.count == 7, "\(plots)")
        for name in plots + ["report.html"] {
            let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: out + "/" + name)))
            #expect(parser.parse(), "\(name) is not well-formed: \(parser.parserError.map { "\($0)" } ?? "")")
        }
        for name in plots {
            #expect(html.contains("<figure id=\"\(name)\">"), "report.html lacks \(name)")
            let svg = try String(contentsOfFile: out + "/" + name, encoding: .utf8)
            #expect(svg.contains("<polyline") || ["uncertainty.svg", "reliability.svg"].contains(name))
            #expect(SVGRenderCheck.violations(svg) == [], "\(name): \(SVGRenderCheck.violations(svg))")
        }
    }

    /// `--label-column` reads features and labels from one CSV: `train` and `attack` on it give what the
    /// same rows give as separate .npy files; a missing column, a non-CSV --x and --y with
    /// --label-column are refused naming the options.
    @Test func labelColumnOfACSV() throws {
        let dir = Self.temporaryDirectory()
        var g = AnalysisCommandTests.SplitMix(9)
        let x = (0..<(40 * 4)).map { _ in Float(g.uniform()) }, y = (0..<40).map { $0 % 3 }
        var csv = "a,b,label,c,d\n"
        for i in 0..<40 { csv += "\(x[i * 4]),\(x[i * 4 + 1]),\(y[i]),\(x[i * 4 + 2]),\(x[i * 4 + 3])\n" }
        try csv.write(toFile: dir + "/data.csv", atomically: true, encoding: .utf8)
        try AnalysisCommandTests.write(x, shape: [40, 4], to: dir + "/x.npy")
        try AnalysisCommandTests.writeLabels(y, to: dir + "/y.npy")
        let trained = try CLIRunner.run(["train", "--x", dir + "/data.csv", "--label-column", "label", "--spec", "linear:4-8,relu,linear:8-3",
                                         "--epochs", "5", "--out", dir + "/m.safetensors", "--quiet"])
        #expect(trained.status == 0, "\(trained.stderr)")
        func attack(_ data: [String]) throws -> [String] {
            let r = try CLIRunner.run(["attack", "--weights", dir + "/m.safetensors", "--eps", "0,0.05", "--steps", "5", "--json", "--quiet"] + data)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.split(separator: "\n").filter { !$0.contains("\"seconds\"") }.map(String.init)
        }
        let fromCSV = try attack(["--x", dir + "/data.csv", "--label-column", "label"])
        #expect(fromCSV == (try attack(["--x", dir + "/x.npy", "--y", dir + "/y.npy"])) && !fromCSV.isEmpty)
        #expect(fromCSV == (try attack(["--x", dir + "/data.csv", "--label-column", "2"])))
        for (arguments, fragment) in [(["--x", dir + "/data.csv", "--label-column", "nope"], "no column 'nope'"),
                                      (["--x", dir + "/x.npy", "--label-column", "label"], "--label-column needs --x"),
                                      (["--x", dir + "/data.csv", "--label-column", "label", "--y", dir + "/y.npy"], "not both"),
                                      (["--x", dir + "/x.npy"], "--y is required")] {
            let r = try CLIRunner.run(["attack", "--weights", dir + "/m.safetensors", "--eps", "0.05"] + arguments)
            #expect(r.status == 2 && r.stderr.contains(fragment), "\(arguments): \(r.stderr)")
        }
    }

    /// `train --adversarial pgd|fast` and `--noise` save a model every command reads and report its test
    /// accuracy under PGD-10; inconsistent defence options are refused before any work.
    @Test func trainWithADefence() throws {
        let dir = Self.temporaryDirectory()
        struct Member: Decodable { var testAccuracy: Double?; var testRobustAccuracy: Double? }
        for defence in [["--adversarial", "pgd", "--eps", "0.1", "--attack-steps", "3"], ["--adversarial", "fast", "--eps", "0.1", "--ramp-epochs", "2"],
                        ["--noise", "0.2"]] {
            let r = try CLIRunner.run(["train", "--data", "digits", "--spec", "linear:64-32,relu,linear:32-10", "--epochs", "4", "--out",
                                       dir + "/d.safetensors", "--json", "--quiet"] + defence)
            #expect(r.status == 0, "\(defence): \(r.stderr)")
            let member = try #require(try JSONDecoder().decode([Member].self, from: Data(r.stdout.utf8)).first)
            #expect((member.testRobustAccuracy ?? -1) >= 0 && member.testRobustAccuracy! <= member.testAccuracy!, "\(defence)")
        }
        for (bad, fragment) in [(["--adversarial", "pgd"], "--eps"), (["--adversarial", "mart", "--eps", "0.1"], "--adversarial"),
                                (["--noise", "0"], "--noise"), (["--adversarial", "fast", "--eps", "0.1", "--noise", "0.1"], "not both"),
                                (["--adversarial", "pgd", "--eps", "0.1", "--box", "0,0.5"], "outside --box")] {
            let r = try CLIRunner.run(["train", "--data", "digits", "--epochs", "1", "--out", dir + "/bad.safetensors", "--quiet"] + bad)
            #expect(r.status == 2 && r.stderr.contains(fragment) && !FileManager.default.fileExists(atPath: dir + "/bad.safetensors"), "\(bad): \(r.stderr)")
        }
    }
}
