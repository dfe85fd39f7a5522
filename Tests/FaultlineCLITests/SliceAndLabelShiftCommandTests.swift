import Foundation
import Testing
import _TestSupport

/// `faultline slices` and `faultline labelshift` through the real binary: their JSON against counts
/// made here, their exit codes, --help within 80 columns, and hostile inputs (exit 2 naming the option
/// and the file, no output left behind).
@Suite("faultline slices and labelshift")
struct SliceAndLabelShiftCommandTests {
    /// 3-class probabilities of 1-D Gaussian classes (means −1.5, 0, 1.5) under source priors
    /// (0.7, 0.2, 0.1): a source set and a target set drawn with priors (0.1, 0.3, 0.6), slices i % 4
    /// (slice 2's rows predicted wrong whenever i % 8 == 2).
    static let directory: String = {
        let dir = TestScratch.root.appendingPathComponent("faultline-slices-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func write(_ name: String, _ bytes: [UInt8]) { try! Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        func f32(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
        func i64(_ v: [Int]) -> [UInt8] { v.map(Int64.init).withUnsafeBytes { Array($0) } }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return Double(state >> 11) / Double(1 << 53) }
        func normal() -> Double { (-2 * Foundation.log(max(uniform(), 1e-300))).squareRoot() * Foundation.cos(2 * Double.pi * uniform()) }
        let p = [0.7, 0.2, 0.1], means = [-1.5, 0, 1.5]
        func sample(_ priors: [Double], _ n: Int) -> ([Float], [Int]) {
            var rows: [Float] = [], labels: [Int] = []
            for _ in 0..<n {
                let u = uniform()
                let y = u < priors[0] ? 0 : (u < priors[0] + priors[1] ? 1 : 2)
                let x = means[y] + normal()
                let a = zip(p, means).map { $0 * Foundation.exp(-0.5 * ($1 - x) * ($1 - x)) }
                let s = a.reduce(0, +)
                rows += a.map { Float($0 / s) }
                labels.append(y)
            }
            return (rows, labels)
        }
        let (sp, sy) = sample(p, 2000), (tp, ty) = sample([0.1, 0.3, 0.6], 2000)
        write("sp.npy", HostileInputTests.npy("<f4", "(2000, 3)", f32(sp)))
        write("sy.npy", HostileInputTests.npy("<i8", "(2000,)", i64(sy)))
        write("tp.npy", HostileInputTests.npy("<f4", "(2000, 3)", f32(tp)))
        write("ty.npy", HostileInputTests.npy("<i8", "(2000,)", i64(ty)))
        // Miscalibrated logits: 3·log p + (0.5, 0, −0.5) (overconfident, biased).
        func logits(_ rows: [Float]) -> [Float] { rows.enumerated().map { Float(3 * Foundation.log(max(Double($0.element), 1e-30)) + [0.5, 0, -0.5][$0.offset % 3]) } }
        write("sz.npy", HostileInputTests.npy("<f4", "(2000, 3)", f32(logits(sp))))
        write("tz.npy", HostileInputTests.npy("<f4", "(2000, 3)", f32(logits(tp))))
        // Slices: slice 2 gets its labels moved off the argmax on every other row.
        var labels = ty
        for i in 0..<2000 where i % 8 == 2 {
            let row = tp[(3 * i)..<(3 * i + 3)]
            labels[i] = (Array(row).indices.max { row[row.startIndex + $0] < row[row.startIndex + $1] }! + 1) % 3
        }
        write("ty_sliced.npy", HostileInputTests.npy("<i8", "(2000,)", i64(labels)))
        write("slices.npy", HostileInputTests.npy("<i8", "(2000,)", i64((0..<2000).map { $0 % 4 })))
        write("meta.csv", Array(("region,age\n" + (0..<2000).map { "\($0 % 4),\($0 % 7)\n" }.joined()).utf8))
        // Hostile files: NaN probabilities, one class only in the labels, ids with a fraction.
        var nan = [Float](repeating: 1.0 / 3, count: 60)
        nan[7] = .nan
        write("p3_nan.npy", HostileInputTests.npy("<f4", "(20, 3)", f32(nan)))
        write("p3.npy", HostileInputTests.npy("<f4", "(20, 3)", f32([Float](repeating: 1.0 / 3, count: 60))))
        write("p4.npy", HostileInputTests.npy("<f4", "(20, 4)", f32([Float](repeating: 0.25, count: 80))))
        write("y3.npy", HostileInputTests.npy("<i8", "(20,)", i64((0..<20).map { $0 % 3 })))
        write("y_zero.npy", HostileInputTests.npy("<i8", "(20,)", i64([Int](repeating: 0, count: 20))))
        write("y_5.npy", HostileInputTests.npy("<i8", "(20,)", i64([Int](repeating: 5, count: 20))))
        write("y_short.npy", HostileInputTests.npy("<i8", "(19,)", i64([Int](repeating: 0, count: 19))))
        write("ids_half.npy", HostileInputTests.npy("<f8", "(20,)", (0..<20).map { Double($0) + ($0 == 4 ? 0.5 : 0) }.withUnsafeBytes { Array($0) }))
        write("ids_nan.npy", HostileInputTests.npy("<f8", "(20,)", ([Double.nan] + [Double](repeating: 1, count: 19)).withUnsafeBytes { Array($0) }))
        write("x_empty.npy", HostileInputTests.npy("<f4", "(0, 3)", []))
        write("y_empty.npy", HostileInputTests.npy("<i8", "(0,)", []))
        return dir
    }()

    static func run(_ arguments: [String]) throws -> CLIRunner.Result {
        try CLIRunner.run(arguments.map { $0.replacingOccurrences(of: "@/", with: directory + "/") }, timeout: 120)
    }

    struct Row: Decodable { var slice: String; var samples: Int; var errors: Int; var upperBound: Double; var worse: Bool; var zeroFailureBound: Double? }
    struct Table: Decodable { var rows: [Row]; var worst: String? }
    struct Estimate: Decodable { var estimate: Double; var lower: Double; var upper: Double }
    struct Slices: Decodable { var overall: Row; var classes: Table; var slices: Table?; var errorDetectionAUROC: Estimate?; var correction: String }

    @Test func slicesNamesThePlantedSliceAndCountsErrors() throws {
        let r = try Self.run(["slices", "--probs", "@/tp.npy", "--labels", "@/ty_sliced.npy", "--slices", "@/slices.npy", "--bootstrap", "200", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try JSONDecoder().decode(Slices.self, from: Data(r.stdout.utf8))
        #expect(s.overall.samples == 2000 && s.classes.rows.count == 3 && s.correction == "holm")
        #expect(s.classes.rows.map(\.samples).reduce(0, +) == 2000 && s.classes.rows.map(\.errors).reduce(0, +) == s.overall.errors)
        let slices = try #require(s.slices)
        #expect(slices.rows.map(\.slice) == ["slice 0", "slice 1", "slice 2", "slice 3"] && slices.rows.allSatisfy { $0.samples == 500 })
        #expect(slices.worst == "slice 2" && slices.rows.filter(\.worse).map(\.slice) == ["slice 2"])
        #expect(slices.rows[2].errors >= 250, "every other row of slice 2 is wrong")
        // The CSV column gives the same table.
        let csv = try Self.run(["slices", "--probs", "@/tp.npy", "--labels", "@/ty_sliced.npy", "--slices", "@/meta.csv", "--slice-column", "region",
                                "--bootstrap", "200", "--json"])
        #expect(csv.status == 0, "\(csv.stderr)")
        #expect(try JSONDecoder().decode(Slices.self, from: Data(csv.stdout.utf8)).slices?.rows.map(\.errors) == slices.rows.map(\.errors))
        // Text output names the worst slice; --max-error below the worst upper bound exits 1.
        let text = try Self.run(["slices", "--probs", "@/tp.npy", "--labels", "@/ty_sliced.npy", "--slices", "@/slices.npy", "--bootstrap", "50",
                                 "--max-error", "0.5"])
        #expect(text.status == 1 && text.stdout.contains("worst slice: slice 2") && text.stderr.contains("--max-error"), "\(text.stdout)\(text.stderr)")
    }

    struct Accuracy: Decodable { var sourceAccuracy: Double; var atc: Double; var doc: Double }
    struct Conformal: Decodable { var coverage: Double?; var unweightedCoverage: Double? }
    struct LabelShift: Decodable {
        var weights: [Double]; var sourcePriors: [Double]; var targetPriors: [Double]; var accuracyEstimate: Accuracy
        var targetAccuracy: Double?; var correctedTargetAccuracy: Double?; var conformal: Conformal?; var converged: Bool?
    }

    @Test(arguments: ["bbse", "mlls", "rlls"])
    func labelShiftEstimatesCorrectsAndPredicts(_ method: String) throws {
        let out = Self.directory + "/corrected-\(method).npy"
        let r = try Self.run(["labelshift", "--source-probs", "@/sp.npy", "--source-labels", "@/sy.npy", "--target-probs", "@/tp.npy",
                              "--target-labels", "@/ty.npy", "--method", method, "--conformal-alpha", "0.1", "--out", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try JSONDecoder().decode(LabelShift.self, from: Data(r.stdout.utf8))
        for y in 0..<3 { #expect(abs(s.weights[y] * s.sourcePriors[y] - s.targetPriors[y]) <= 1e-9) }
        if method == "rlls" {
            // The default ρ (0.25 here) shrinks towards w = 1, in the right direction; ρ = 0 is BBSE.
            #expect(s.weights[0] < 1 && s.weights[2] > 1, "\(s.weights)")
            let bbse = try Self.run(["labelshift", "--source-probs", "@/sp.npy", "--source-labels", "@/sy.npy", "--target-probs", "@/tp.npy", "--json"])
            let free = try Self.run(["labelshift", "--source-probs", "@/sp.npy", "--source-labels", "@/sy.npy", "--target-probs", "@/tp.npy", "--json",
                                     "--method", "rlls", "--regularization", "0"])
            let a = try JSONDecoder().decode(LabelShift.self, from: Data(bbse.stdout.utf8)), b = try JSONDecoder().decode(LabelShift.self, from: Data(free.stdout.utf8))
            for y in 0..<3 { #expect(abs(a.weights[y] - b.weights[y]) <= 1e-6, "\(a.weights) vs \(b.weights)") }
            return
        }
        for (q, truth) in zip(s.targetPriors, [0.1, 0.3, 0.6]) { #expect(abs(q - truth) <= 0.08, "\(method): \(s.targetPriors)") }
        #expect(s.correctedTargetAccuracy! > s.targetAccuracy! + 0.05, "the prior correction helps: \(s.targetAccuracy!) → \(s.correctedTargetAccuracy!)")
        #expect(abs(s.accuracyEstimate.atc - s.targetAccuracy!) <= 0.1 && abs(s.accuracyEstimate.doc - s.targetAccuracy!) <= 0.15)
        #expect(s.conformal!.coverage! >= 0.87 && s.conformal!.unweightedCoverage! < 0.85, "\(s.conformal!)")
        if method == "mlls" { #expect(s.converged == true) }
        // 2000 × 3 float32 after a 128-byte header.
        let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int
        #expect(size == 128 + 2000 * 3 * 4)
    }

    struct Calibrated: Decodable { struct Fit: Decodable { var temperature: Double }; var targetPriors: [Double]; var calibration: Fit? }

    /// MLLS needs calibrated probabilities: on miscalibrated logits BCTS undoes the temperature and
    /// brings the estimate back to the truth.
    @Test func bctsCalibratesBeforeMLLS() throws {
        let base = ["labelshift", "--source-logits", "@/sz.npy", "--source-labels", "@/sy.npy", "--target-logits", "@/tz.npy", "--method", "mlls", "--json"]
        let raw = try Self.run(base), calibrated = try Self.run(base + ["--calibrate", "bcts"])
        #expect(raw.status == 0 && calibrated.status == 0, "\(raw.stderr)\(calibrated.stderr)")
        let r = try JSONDecoder().decode(Calibrated.self, from: Data(raw.stdout.utf8))
        let c = try JSONDecoder().decode(Calibrated.self, from: Data(calibrated.stdout.utf8))
        #expect(abs(try #require(c.calibration).temperature - 3) <= 0.3, "\(c.calibration!)")
        let truth = [0.1, 0.3, 0.6]
        let errorRaw = zip(r.targetPriors, truth).map { abs($0 - $1) }.max()!, errorBCTS = zip(c.targetPriors, truth).map { abs($0 - $1) }.max()!
        #expect(errorBCTS <= 0.06 && errorBCTS < errorRaw, "MLLS error \(errorRaw) raw, \(errorBCTS) after BCTS")
    }

    struct Bounds: Decodable { var upperBound: Double?; var zeroFailureBound: Double? }

    /// `bounds` reports the one-sided bound, and 1 − α^(1/n) for zero errors.
    @Test func boundsGivesTheZeroFailureBound() throws {
        let r = try CLIRunner.run(["bounds", "--errors", "0", "--samples", "1000", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let b = try JSONDecoder().decode(Bounds.self, from: Data(r.stdout.utf8))
        let exact = 1 - Foundation.pow(0.05, 1.0 / 1000)
        #expect(abs(b.zeroFailureBound! - exact) <= 1e-15 && b.upperBound == b.zeroFailureBound)
        let text = try CLIRunner.run(["bounds", "--errors", "0", "--samples", "1000"])
        #expect(text.stdout.contains("0 errors in 1000: error ≤ 0.00299125") && text.stdout.contains("rule of three gives 0.003"), "\(text.stdout)")
        let some = try JSONDecoder().decode(Bounds.self, from: Data(try CLIRunner.run(["bounds", "--errors", "3", "--samples", "1000", "--json"]).stdout.utf8))
        #expect(some.zeroFailureBound == nil && some.upperBound! > 0.003)
    }

    @Test func helpFitsEightyColumns() throws {
        for command in [["slices"], ["labelshift"], ["bounds"]] {
            let r = try CLIRunner.run(command + ["--help"])
            #expect(r.status == 0)
            for line in r.stdout.split(separator: "\n") where !line.hasPrefix("USAGE:") {
                #expect(line.count <= 80, "faultline \(command.joined(separator: " ")) --help: \(line.count) columns: \(line)")
            }
        }
    }

    static let slices = ["slices", "--probs", "@/p3.npy", "--labels", "@/y3.npy"]
    static let shift = ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y3.npy", "--target-probs", "@/p3.npy"]

    static let cases: [HostileInputTests.Case] = [
        .init(name: "slices labels out of range", arguments: ["slices", "--probs", "@/p3.npy", "--labels", "@/y_5.npy"], mentions: ["--labels", "y_5.npy", "3 classes"]),
        .init(name: "slices NaN probability", arguments: ["slices", "--probs", "@/p3_nan.npy", "--labels", "@/y3.npy"], mentions: ["--probs", "p3_nan.npy", "probability[2, 1]"]),
        .init(name: "slices label count mismatch", arguments: ["slices", "--probs", "@/p3.npy", "--labels", "@/y_short.npy"], mentions: ["--labels", "y_short.npy", "--probs", "p3.npy"]),
        .init(name: "slices empty input", arguments: ["slices", "--probs", "@/x_empty.npy", "--labels", "@/y_empty.npy"], mentions: ["--probs", "x_empty.npy"]),
        .init(name: "slices ids NaN", arguments: slices + ["--slices", "@/ids_nan.npy"], mentions: ["--slices", "ids_nan.npy", "index 0"]),
        .init(name: "slices ids with a fraction", arguments: slices + ["--slices", "@/ids_half.npy"], mentions: ["--slices", "ids_half.npy", "index 4"]),
        .init(name: "slices id count mismatch", arguments: slices + ["--slices", "@/y_short.npy"], mentions: ["--slices", "y_short.npy", "19"]),
        .init(name: "slices column of a non-CSV", arguments: slices + ["--slices", "@/y3.npy", "--slice-column", "region"], mentions: ["--slices", "y3.npy", "CSV"]),
        .init(name: "slices missing CSV column", arguments: slices + ["--slices", "@/meta.csv", "--slice-column", "nope"], mentions: ["--slices", "meta.csv", "nope"]),
        .init(name: "slices --slice-column without --slices", arguments: slices + ["--slice-column", "region"], mentions: ["--slice-column"]),
        .init(name: "slices robust outcomes not 0/1", arguments: slices + ["--robust-correct", "@/y_5.npy"], mentions: ["--robust-correct", "y_5.npy"]),
        .init(name: "slices --alpha 0.7", arguments: slices + ["--alpha", "0.7"], mentions: ["--alpha"]),
        .init(name: "slices --alpha nan", arguments: slices + ["--alpha", "nan"], mentions: ["--alpha"]),
        .init(name: "slices --correction bonferroni", arguments: slices + ["--correction", "bonferroni"], mentions: ["--correction"]),
        .init(name: "slices --bootstrap 0", arguments: slices + ["--bootstrap", "0"], mentions: ["--bootstrap"]),
        .init(name: "slices --bootstrap huge", arguments: slices + ["--bootstrap", "100000000000"], mentions: ["--bootstrap"]),
        .init(name: "slices --probs and --logits", arguments: slices + ["--logits", "@/p3.npy"], mentions: ["--probs", "--logits"]),
        .init(name: "labelshift class counts differ", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y3.npy", "--target-probs", "@/p4.npy",
                                                                 "--out", "@/ls1.npy"], mentions: ["--source-probs", "--target-probs", "p4.npy"], outputs: ["ls1.npy"]),
        .init(name: "labelshift source labels out of range", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y_5.npy", "--target-probs", "@/p3.npy"],
              mentions: ["--source-labels", "y_5.npy"]),
        .init(name: "labelshift NaN target", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y3.npy", "--target-probs", "@/p3_nan.npy",
                                                         "--out", "@/ls2.npz"], mentions: ["--target-probs", "p3_nan.npy"], outputs: ["ls2.npz"]),
        .init(name: "labelshift source label count mismatch", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y_short.npy", "--target-probs", "@/p3.npy"],
              mentions: ["--source-labels", "y_short.npy", "--source-probs"]),
        .init(name: "labelshift target label count mismatch", arguments: shift + ["--target-labels", "@/y_short.npy"], mentions: ["--target-labels", "y_short.npy"]),
        .init(name: "labelshift empty target", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y3.npy", "--target-probs", "@/x_empty.npy"],
              mentions: ["--target-probs", "x_empty.npy"]),
        .init(name: "labelshift BBSE singular confusion", arguments: shift + ["--out", "@/ls3.npy"], mentions: ["--source-labels", "y3.npy", "singular"], outputs: ["ls3.npy"]),
        .init(name: "labelshift MLLS class absent from the source", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y_zero.npy",
                                                                                 "--target-probs", "@/p3.npy", "--method", "mlls"], mentions: ["--source-labels", "y_zero.npy", "class 1"]),
        .init(name: "labelshift --regularization -1", arguments: shift + ["--method", "rlls", "--regularization=-1"], mentions: ["--regularization"]),
        .init(name: "labelshift --method em", arguments: shift + ["--method", "em"], mentions: ["--method"]),
        .init(name: "labelshift --score entropy", arguments: shift + ["--score", "entropy"], mentions: ["--score"]),
        .init(name: "labelshift --conformal-alpha 1.5", arguments: shift + ["--conformal-alpha", "1.5"], mentions: ["--conformal-alpha"]),
        .init(name: "labelshift --calibrate bcts without logits", arguments: shift + ["--calibrate", "bcts"], mentions: ["--calibrate", "--source-logits"]),
        .init(name: "labelshift --calibrate platt", arguments: shift + ["--calibrate", "platt"], mentions: ["--calibrate"]),
        .init(name: "labelshift --out .txt", arguments: shift + ["--out", "@/ls4.txt"], mentions: ["--out"], outputs: ["ls4.txt"]),
        .init(name: "labelshift no target", arguments: ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y3.npy"], mentions: ["--target-probs"]),
        .init(name: "labelshift missing file", arguments: ["labelshift", "--source-probs", "@/nope.npy", "--source-labels", "@/y3.npy", "--target-probs", "@/p3.npy"],
              mentions: ["--source-probs", "nope.npy"]),
    ]

    @Test(arguments: cases)
    func hostileInputExitsWith2(_ c: HostileInputTests.Case) throws {
        let r = try Self.run(c.arguments)
        #expect(!r.timedOut && !r.signaled, "\(c.name): \(r.status)\n\(r.stderr)")
        #expect(r.status == 2, "\(c.name): exit \(r.status)\n\(r.stderr)")
        for m in c.mentions { #expect(r.stderr.contains(m), "\(c.name): stderr does not mention '\(m)':\n\(r.stderr)") }
        #expect(!r.stderr.contains("Fatal error"), "\(c.name): \(r.stderr)")
        for output in c.outputs { #expect(!FileManager.default.fileExists(atPath: Self.directory + "/" + output), "\(c.name): \(output) was written") }
    }

    /// The generated corpus of malformed files (`HostileInputTests.malformedFiles`: truncated, lying
    /// shapes, bad dtypes, zip bombs, ragged CSV, …) in every array slot of the two commands.
    static let slots: [(name: String, arguments: @Sendable (String) -> [String])] = [
        ("slices --probs", { ["slices", "--probs", $0, "--labels", "@/y3.npy"] }),
        ("slices --slices", { ["slices", "--probs", "@/p3.npy", "--labels", "@/y3.npy", "--slices", $0] }),
        ("labelshift --target-probs", { ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", "@/y3.npy", "--target-probs", $0] }),
        ("labelshift --source-labels", { ["labelshift", "--source-probs", "@/p3.npy", "--source-labels", $0, "--target-probs", "@/p3.npy"] }),
    ]

    static let corpus: [HostileInputTests.Case] = HostileInputTests.malformedCorpus(slots)

    @Test(arguments: corpus)
    func malformedFileExitsWith2(_ c: HostileInputTests.Case) throws {
        try HostileInputTests.expectMalformedFileRefused(c, directory: Self.directory)
    }
}
