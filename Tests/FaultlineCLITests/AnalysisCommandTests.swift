import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import _TestSupport

/// The analysis subcommands over small files: calibrate, uncertainty, shift fit/score, drift, conformal, bounds.
@Suite("faultline calibrate / uncertainty / shift / drift / conformal / bounds")
struct AnalysisCommandTests {
    /// A float32 .npy written byte by byte (independent of the library's writer).
    static func write(_ values: [Float], shape: [Int], to path: String) throws {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        try Data(ModelCommandTests().npy(descr: "<f4", shape: dims, payload: values.withUnsafeBytes { Array($0) })).write(to: URL(fileURLWithPath: path))
    }

    static func writeLabels(_ values: [Int], to path: String) throws {
        let v = values.map { Int64($0) }
        try Data(ModelCommandTests().npy(descr: "<i8", shape: "(\(v.count),)", payload: v.withUnsafeBytes { Array($0) })).write(to: URL(fileURLWithPath: path))
    }

    /// Logits with a known label structure: the label's logit is raised by `margin`.
    static func logits(_ n: Int, _ c: Int, seed: UInt64, margin: Float) -> ([Float], [Int]) {
        var g = SplitMix(seed)
        let y = (0..<n).map { _ in Int(g.next() % UInt64(c)) }
        var z = (0..<(n * c)).map { _ in Float(g.uniform() * 4 - 2) }
        for i in 0..<n { z[i * c + y[i]] += margin }
        return (z, y)
    }

    struct SplitMix {
        var state: UInt64
        init(_ seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    }

    func decode<T: Decodable>(_ type: T.Type, _ r: CLIRunner.Result) throws -> T { try JSONDecoder().decode(T.self, from: Data(r.stdout.utf8)) }

    @Test func calibrateMeasuresFitsAndChecks() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let (z, y) = Self.logits(400, 5, seed: 1, margin: 1)
        let (cz, cy) = Self.logits(400, 5, seed: 2, margin: 1)
        try Self.write(z.map { $0 * 4 }, shape: [400, 5], to: dir + "/z.npy")  // overconfident: weak signal, logits scaled up
        try Self.writeLabels(y, to: dir + "/y.npy")
        try Self.write(cz.map { $0 * 4 }, shape: [400, 5], to: dir + "/cz.npy")
        try Self.writeLabels(cy, to: dir + "/cy.npy")
        let r = try CLIRunner.run(["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--fit", "temperature",
                                   "--calibration-logits", dir + "/cz.npy", "--calibration-labels", dir + "/cy.npy", "--save", dir + "/t.json", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        struct M: Decodable { var ece: Double; var nll: Double }
        struct Report: Decodable { var before: M; var after: M? }
        let report = try decode(Report.self, r)
        #expect(report.after!.nll < report.before.nll, "temperature scaling must lower the NLL of overconfident logits")
        #expect(FileManager.default.fileExists(atPath: dir + "/t.json"))
        // Bootstrap intervals bracket every estimate, and the accuracy interval has the binomial width.
        let boot = try CLIRunner.run(["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--bootstrap", "300", "--seed", "3", "--json"])
        #expect(boot.status == 0, "\(boot.stderr)")
        struct Interval: Decodable { var estimate: Double; var lower: Double; var upper: Double }
        struct Boot: Decodable { var intervals: [String: Interval]; var before: M }
        let intervals = try decode(Boot.self, boot).intervals
        #expect(intervals.count == 7 && intervals.values.allSatisfy { $0.lower <= $0.estimate && $0.estimate <= $0.upper && $0.lower < $0.upper })
        let accuracy = intervals["accuracy"]!, sd = (accuracy.estimate * (1 - accuracy.estimate) / 400).squareRoot()
        #expect(abs((accuracy.upper - accuracy.lower) - 2 * 1.96 * sd) <= 0.35 * 2 * 1.96 * sd, "\(accuracy) vs ±1.96·\(sd)")
        #expect(try CLIRunner.run(["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--bootstrap=-1"]).status == 2)
        let strict = try CLIRunner.run(["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--max-ece", "0"])
        #expect(strict.status == 1)
        let bad = try CLIRunner.run(["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--binning", "quantile"])
        #expect(bad.status == 2 && bad.stderr.contains("binning"))
    }

    @Test func uncertaintyDecomposes() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        var values: [Float] = []
        for m in 0..<3 {
            let (z, _) = Self.logits(50, 4, seed: UInt64(10 + m), margin: 1)
            for i in 0..<50 {
                let row = z[(i * 4)..<(i * 4 + 4)], e = row.map { Foundation.exp($0) }, s = e.reduce(0, +)
                values += e.map { $0 / s }
            }
        }
        try Self.write(values, shape: [3, 50, 4], to: dir + "/p.npy")
        let r = try CLIRunner.run(["uncertainty", "--stacked", dir + "/p.npy", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        struct S: Decodable { var entropy: Double; var aleatoric: Double; var epistemic: Double }
        struct Report: Decodable { var members: Int; var all: S }
        let report = try decode(Report.self, r)
        #expect(report.members == 3 && abs(report.all.entropy - report.all.aleatoric - report.all.epistemic) < 1e-6 && report.all.epistemic >= 0)
        let wrongShape = try CLIRunner.run(["uncertainty", "--stacked", dir + "/p.npy", "--labels", dir + "/p.npy"])
        #expect(wrongShape.status == 2)
    }

    @Test func shiftFitScoreAndDrift() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        var g = Self.SplitMix(3)
        func gaussian(_ n: Int, _ shift: Float) -> [Float] {
            (0..<(n * 6)).map { _ in Float((-2 * Foundation.log(1 - g.uniform())).squareRoot() * Foundation.cos(2 * .pi * g.uniform())) + shift }
        }
        try Self.write(gaussian(300, 0), shape: [300, 6], to: dir + "/train.npy")
        try Self.writeLabels((0..<300).map { $0 % 3 }, to: dir + "/train_y.npy")
        try Self.write(gaussian(100, 0), shape: [100, 6], to: dir + "/test.npy")
        try Self.write(gaussian(100, 3), shape: [100, 6], to: dir + "/ood.npy")
        let fit = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--labels", dir + "/train_y.npy", "--out", dir + "/d.safetensors"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let score = try CLIRunner.run(["shift", "score", "--detector", dir + "/d.safetensors", "--features", dir + "/test.npy", "--ood", dir + "/ood.npy", "--json"])
        #expect(score.status == 0, "\(score.stderr)")
        struct Metrics: Decodable { var auroc: Double }
        struct Report: Decodable { var metrics: Metrics? }
        #expect(try decode(Report.self, score).metrics!.auroc > 0.95)
        let drift = try CLIRunner.run(["drift", "--reference", dir + "/test.npy", "--current", dir + "/ood.npy", "--permutations", "100", "--fail-on-drift"])
        #expect(drift.status == 1, "a 3σ mean shift must be detected: \(drift.stdout)")
        let exact = try CLIRunner.run(["drift", "--reference", dir + "/test.npy", "--current", dir + "/test.npy", "--permutations", "0", "--ks-method", "exact", "--json"])
        struct DriftReport: Decodable { var ksPValues: [Double]? }
        let exactP = try decode(DriftReport.self, exact).ksPValues ?? []
        #expect(exact.status == 0 && exactP.count == 6 && exactP.allSatisfy { $0 == 1 }, "identical samples: p = 1")
        #expect(try CLIRunner.run(["drift", "--reference", dir + "/test.npy", "--current", dir + "/ood.npy", "--ks-method", "scipy"]).status == 2)
        let untied = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--labels", dir + "/train_y.npy", "--detector", "per-class",
                                        "--shrinkage", "0", "--log-determinant", "--accumulation", "float32", "--out", dir + "/u.safetensors"])
        #expect(untied.status == 0, "\(untied.stderr)")
        let untiedScore = try CLIRunner.run(["shift", "score", "--detector", dir + "/u.safetensors", "--features", dir + "/test.npy", "--ood", dir + "/ood.npy", "--json"])
        #expect(untiedScore.status == 0, "\(untiedScore.stderr)")
        #expect(try decode(Report.self, untiedScore).metrics!.auroc > 0.95)
        let knn = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--detector", "knn", "--k", "5", "--out", dir + "/k.safetensors"])
        #expect(knn.status == 0)
        let missing = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--out", dir + "/m.safetensors"])
        #expect(missing.status == 2 && missing.stderr.contains("--labels"))
    }

    /// `shift fit --holdout` / `--calibration-features` store a threshold; `shift score` counts the flagged
    /// samples of each set: about --fpr of fresh in-distribution rows, nearly all of a 3σ-shifted set.
    @Test func shiftThresholdFlagsSamples() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        var g = Self.SplitMix(5)
        func gaussian(_ n: Int, _ shift: Float) -> [Float] {
            (0..<(n * 4)).map { _ in Float((-2 * Foundation.log(1 - g.uniform())).squareRoot() * Foundation.cos(2 * .pi * g.uniform())) + shift }
        }
        try Self.write(gaussian(2000, 0), shape: [2000, 4], to: dir + "/train.npy")
        try Self.writeLabels((0..<2000).map { $0 % 2 }, to: dir + "/train_y.npy")
        try Self.write(gaussian(1000, 0), shape: [1000, 4], to: dir + "/calibration.npy")
        try Self.write(gaussian(2000, 0), shape: [2000, 4], to: dir + "/test.npy")
        try Self.write(gaussian(200, 3), shape: [200, 4], to: dir + "/ood.npy")
        struct Threshold: Decodable { var value: Float; var falsePositiveRate: Double; var calibrationSamples: Int }
        struct Report: Decodable { var samples: Int; var threshold: Threshold?; var flagged: Int?; var oodFlagged: Int? }
        for (name, extra, held) in [("holdout", ["--holdout", "0.25"], 500), ("file", ["--calibration-features", dir + "/calibration.npy"], 1000)] {
            let fit = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--labels", dir + "/train_y.npy", "--fpr", "0.1",
                                         "--out", dir + "/\(name).safetensors"] + extra)
            #expect(fit.status == 0 && fit.stdout.contains("flags scores >") && fit.stdout.contains("\(held) held-out"), "\(name): \(fit.stdout) \(fit.stderr)")
            let score = try CLIRunner.run(["shift", "score", "--detector", dir + "/\(name).safetensors", "--features", dir + "/test.npy",
                                           "--ood", dir + "/ood.npy", "--json"])
            let r = try decode(Report.self, score)
            #expect(r.threshold?.calibrationSamples == held && r.threshold?.falsePositiveRate == 0.1)
            let rate = Double(r.flagged ?? -1) / Double(r.samples)
            #expect(abs(rate - 0.1) < 0.035, "\(name): flagged \(rate) of fresh in-distribution rows at --fpr 0.1")
            #expect((r.oodFlagged ?? 0) > 180, "\(name): \(r.oodFlagged ?? -1) of 200 shifted rows flagged")
            let text = try CLIRunner.run(["shift", "score", "--detector", dir + "/\(name).safetensors", "--features", dir + "/test.npy"])
            #expect(text.stdout.contains("of 2000 flagged as shifted"), "\(text.stdout)")
        }
        let plain = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--labels", dir + "/train_y.npy", "--out", dir + "/plain.safetensors"])
        #expect(plain.status == 0)
        let unflagged = try CLIRunner.run(["shift", "score", "--detector", dir + "/plain.safetensors", "--features", dir + "/test.npy", "--json"])
        #expect(try decode(Report.self, unflagged).threshold == nil)
        for bad in [["--holdout", "1"], ["--holdout", "0.2", "--calibration-features", dir + "/calibration.npy"], ["--fpr", "0"]] {
            let r = try CLIRunner.run(["shift", "fit", "--features", dir + "/train.npy", "--labels", dir + "/train_y.npy", "--out", dir + "/bad.safetensors"] + bad)
            #expect(r.status == 2 && !FileManager.default.fileExists(atPath: dir + "/bad.safetensors"), "\(bad): \(r.stderr)")
        }
    }

    @Test func conformalAndBounds() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        func probabilities(_ seed: UInt64) throws -> [Int] {
            let (z, y) = Self.logits(300, 4, seed: seed, margin: 2)
            var p: [Float] = []
            for i in 0..<300 {
                let e = z[(i * 4)..<(i * 4 + 4)].map { Foundation.exp($0) }, s = e.reduce(0, +)
                p += e.map { $0 / s }
            }
            try Self.write(p, shape: [300, 4], to: dir + "/p\(seed).npy")
            try Self.writeLabels(y, to: dir + "/y\(seed).npy")
            return y
        }
        _ = try probabilities(1)
        _ = try probabilities(2)
        let r = try CLIRunner.run(["conformal", "--calibration-probs", dir + "/p1.npy", "--calibration-labels", dir + "/y1.npy",
                                   "--probs", dir + "/p2.npy", "--labels", dir + "/y2.npy", "--alpha", "0.1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        struct Report: Decodable { var coverage: Double?; var meanSetSize: Double }
        #expect(try decode(Report.self, r).coverage! >= 0.85)
        let mapie = try CLIRunner.run(["conformal", "--calibration-probs", dir + "/p1.npy", "--calibration-labels", dir + "/y1.npy",
                                       "--probs", dir + "/p2.npy", "--labels", dir + "/y2.npy", "--score", "aps-mapie", "--last-label", "randomized", "--json"])
        #expect(mapie.status == 0, "\(mapie.stderr)")
        #expect(try decode(Report.self, mapie).coverage! >= 0.85)
        #expect(try CLIRunner.run(["conformal", "--calibration-probs", dir + "/p1.npy", "--calibration-labels", dir + "/y1.npy",
                                   "--probs", dir + "/p2.npy", "--score", "aps-mapie", "--last-label", "sometimes"]).status == 2)
        let rapsMapie = try CLIRunner.run(["conformal", "--calibration-probs", dir + "/p1.npy", "--calibration-labels", dir + "/y1.npy",
                                           "--probs", dir + "/p2.npy", "--labels", dir + "/y2.npy", "--score", "raps-mapie", "--json"])
        #expect(rapsMapie.status == 0, "\(rapsMapie.stderr)")
        #expect(try decode(Report.self, rapsMapie).coverage! >= 0.85)
        let tooSmall = try CLIRunner.run(["conformal", "--calibration-probs", dir + "/p1.npy", "--calibration-labels", dir + "/y1.npy",
                                          "--probs", dir + "/p2.npy", "--alpha", "0.001"])
        #expect(tooSmall.status == 2 && tooSmall.stderr.contains("at least"))
        let bounds = try CLIRunner.run(["bounds", "--errors", "5", "--samples", "100", "--json"])
        struct Interval: Decodable { var lower: Double; var upper: Double }
        struct Bounds: Decodable { var clopperPearson: Interval }
        let cp = try decode(Bounds.self, bounds).clopperPearson
        // SciPy: beta.ppf(0.025, 5, 96), beta.ppf(0.975, 6, 95).
        #expect(abs(cp.lower - 0.016431879) < 1e-8 && abs(cp.upper - 0.112834911) < 1e-8, "\(cp)")
        #expect(try CLIRunner.run(["bounds", "--errors", "5", "--samples", "100", "--max-error", "0.05"]).status == 1)
        #expect(try CLIRunner.run(["bounds", "--errors", "5"]).status == 2)
    }

    /// `report` on a model trained through the CLI, with the split it exported: every plot written,
    /// the page parses as XML, and bad inputs leave no report behind.
    @Test func reportOnUserFiles() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let train = try CLIRunner.run(["train", "--data", "digits", "--spec", "linear:64-32,relu,linear:32-10", "--epochs", "10",
                                       "--out", dir + "/m.safetensors", "--export-split", dir + "/split", "--quiet"])
        #expect(train.status == 0, "\(train.stderr)")
        let s = dir + "/split/"
        let r = try CLIRunner.run(["report", "--weights", dir + "/m.safetensors", "--train-x", s + "train_x.npy", "--train-y", s + "train_y.npy",
                                   "--test-x", s + "test_x.npy", "--test-y", s + "test_y.npy", "--calibration-x", s + "validation_x.npy",
                                   "--calibration-y", s + "validation_y.npy", "--shifted", "same=" + s + "test_x.npy," + s + "test_y.npy",
                                   "--eps", "0.02,0.05", "--out", dir + "/report", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/report")
        #expect(Set(files).isSuperset(of: ["report.html", "report.json", "reliability.svg", "robustness.svg", "roc.svg", "corruptions.svg", "conformal.svg"]), "\(files)")
        for name in files where name.hasSuffix(".svg") || name.hasSuffix(".html") {
            #expect(XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: dir + "/report/" + name))).parse(), "\(name)")
        }
        struct Row: Decodable { var mahalanobisAUROC: Double }
        struct Report: Decodable { var shift: [Row] }
        let report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/report/report.json")))
        #expect(abs(report.shift[0].mahalanobisAUROC - 0.5) < 1e-9, "a copy of the test set is indistinguishable from it")
        let bad = try CLIRunner.run(["report", "--weights", dir + "/m.safetensors", "--train-x", s + "train_x.npy", "--train-y", s + "test_y.npy",
                                     "--test-x", s + "test_x.npy", "--test-y", s + "test_y.npy", "--out", dir + "/bad", "--quiet"])
        #expect(bad.status == 2 && !FileManager.default.fileExists(atPath: dir + "/bad"))
        // A layer without a bound rule is a clear input error (exit 2), not a crash.
        let gelu = try CLIRunner.run(["train", "--data", "digits", "--spec", "linear:64-16,gelu,linear:16-10", "--epochs", "1",
                                      "--out", dir + "/g.safetensors", "--quiet"])
        #expect(gelu.status == 0)
        let certify = try CLIRunner.run(["certify", "--weights", dir + "/g.safetensors", "--x", s + "test_x.npy", "--y", s + "test_y.npy",
                                         "--method", "crown", "--eps", "0.01", "--quiet"])
        #expect(certify.status == 2 && certify.stderr.contains("GELU"), "\(certify.stderr)")
    }
}
