import Foundation
import Testing
import _TestSupport

/// `faultline data issues` and `faultline data leakage` through the real binary: answers on inputs
/// built here (the issues checked against cleanlab 2.9.0 on the same float32 probabilities: rows 4, 11,
/// 25), exit codes, --help within 80 columns, and hostile inputs (exit 2 naming the option and file).
@Suite("faultline data")
struct DataCommandTests {
    /// p.npy: 30 rows of 3 classes, row i of class i % 3 with probability 0.6 + 0.3·((7i) mod 10)/10 and
    /// the rest split evenly; y.npy: the classes with rows 4, 11 and 25 moved to the next class.
    /// train.npy 12×3, test.npy 5×3 (rows 0 and 1 copies of train rows 3 and 7, row 2 train row 5 moved
    /// by 0.001, rows 3 and 4 far away), with labels (test row 1's label differs from its twin's).
    static let directory: String = {
        let dir = TestScratch.root.appendingPathComponent("faultline-data-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func write(_ name: String, _ bytes: [UInt8]) { try! Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        func f32(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
        func i64(_ v: [Int]) -> [UInt8] { v.map(Int64.init).withUnsafeBytes { Array($0) } }
        var p: [Float] = [], y: [Int] = []
        for i in 0..<30 {
            let a = Float(0.6 + 0.3 * Double((i * 7) % 10) / 10)
            var row = [Float](repeating: (1 - a) / 2, count: 3)
            row[i % 3] = a
            p += row
            y.append([4, 11, 25].contains(i) ? (i + 1) % 3 : i % 3)
        }
        write("p.npy", HostileInputTests.npy("<f4", "(30, 3)", f32(p)))
        write("y.npy", HostileInputTests.npy("<i8", "(30,)", i64(y)))
        write("z.npy", HostileInputTests.npy("<f4", "(30, 3)", f32(p.map { Foundation.log($0) })))
        var off = p
        off[5 * 3] += 0.01
        write("p_off.npy", HostileInputTests.npy("<f4", "(30, 3)", f32(off)))
        var nan = p
        nan[2 * 3 + 1] = .nan
        write("p_nan.npy", HostileInputTests.npy("<f4", "(30, 3)", f32(nan)))
        write("y_3.npy", HostileInputTests.npy("<i8", "(30,)", i64([Int](repeating: 3, count: 30))))
        write("y_short.npy", HostileInputTests.npy("<i8", "(29,)", i64([Int](repeating: 0, count: 29))))
        write("p1.npy", HostileInputTests.npy("<f4", "(30, 1)", f32([Float](repeating: 1, count: 30))))
        var train: [Float] = []
        for i in 0..<12 { train += [Float(i), Float(i * i % 7), Float(3 - i)] }
        func row(_ i: Int) -> [Float] { Array(train[(3 * i)..<(3 * i + 3)]) }
        let near: [Float] = row(5).map { $0 + 0.001 }, far: [Float] = [100, 100, 100, -50, 0, 50]
        var test: [Float] = row(3)
        test += row(7)
        test += near
        test += far
        write("train.npy", HostileInputTests.npy("<f4", "(12, 3)", f32(train)))
        write("test.npy", HostileInputTests.npy("<f4", "(5, 3)", f32(test)))
        write("train_y.npy", HostileInputTests.npy("<i8", "(12,)", i64((0..<12).map { $0 % 4 })))
        write("test_y.npy", HostileInputTests.npy("<i8", "(5,)", i64([3, 0, 1, 0, 0])))
        var testNaN = test
        testNaN[4] = .nan
        write("test_nan.npy", HostileInputTests.npy("<f4", "(5, 3)", f32(testNaN)))
        write("test_wide.npy", HostileInputTests.npy("<f4", "(1, 4)", f32([1, 2, 3, 4])))
        write("test_empty.npy", HostileInputTests.npy("<f4", "(0, 3)", []))
        write("train_empty.npy", HostileInputTests.npy("<f4", "(0, 3)", []))
        return dir
    }()

    static func run(_ arguments: [String]) throws -> CLIRunner.Result {
        try CLIRunner.run(arguments.map { $0.replacingOccurrences(of: "@/", with: directory + "/") }, timeout: 60)
    }

    struct Issues: Decodable {
        var issues: [Int]; var samples: Int; var classes: Int; var filter: String; var ranking: String
        var thresholds: [Double]; var confidentJoint: [[Int]]; var scores: [Double]
    }

    @Test func issuesFindTheFlippedRows() throws {
        for extra in [[], ["--filter", "confident_learning", "--rank-by", "normalized_margin"]] {
            let r = try Self.run(["data", "issues", "--probs", "@/p.npy", "--labels", "@/y.npy", "--json"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let out = try JSONDecoder().decode(Issues.self, from: Data(r.stdout.utf8))
            #expect(out.issues == [4, 11, 25] && out.samples == 30 && out.classes == 3)
            #expect(out.confidentJoint == [[10, 0, 1], [0, 8, 0], [0, 2, 9]])  // cleanlab's calibrated joint
        }
        // Logits give the same rows; the text names them; --fail-above exits 1.
        let z = try Self.run(["data", "issues", "--logits", "@/z.npy", "--labels", "@/y.npy", "--json"])
        #expect(try JSONDecoder().decode(Issues.self, from: Data(z.stdout.utf8)).issues == [4, 11, 25])
        let text = try Self.run(["data", "issues", "--probs", "@/p.npy", "--labels", "@/y.npy"])
        #expect(text.status == 0 && text.stdout.contains("3 label issues in 30 rows"), "\(text.stdout)")
        let fail = try Self.run(["data", "issues", "--probs", "@/p.npy", "--labels", "@/y.npy", "--fail-above", "0.05"])
        #expect(fail.status == 1 && fail.stderr.contains("--fail-above"))
    }

    struct Leakage: Decodable {
        struct Pair: Decodable { var test: Int; var train: Int; var distance: Double; var exact: Bool; var labelsDiffer: Bool? }
        var pairs: [Pair]; var exactDuplicateTestRows: Int; var nearDuplicateTestRows: Int
        var exactLabelConflicts: Int?; var threshold: Double; var medianTrainNeighbourDistance: Double?
    }

    @Test func leakageFindsThePlantedDuplicates() throws {
        let r = try Self.run(["data", "leakage", "--train", "@/train.npy", "--test", "@/test.npy", "--threshold", "0.01",
                              "--train-labels", "@/train_y.npy", "--test-labels", "@/test_y.npy", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONDecoder().decode(Leakage.self, from: Data(r.stdout.utf8))
        #expect(out.exactDuplicateTestRows == 2 && out.nearDuplicateTestRows == 3 && out.exactLabelConflicts == 1)
        #expect(out.pairs.map(\.test) == [0, 1, 2] && out.pairs.map(\.train) == [3, 7, 5] && out.pairs.map(\.exact) == [true, true, false])
        #expect(out.pairs.map(\.labelsDiffer) == [false, true, false])
        #expect(abs(out.pairs[2].distance - Double(Float(5 + 0.001) - 5) * 3.0.squareRoot()) <= 1e-6)
        // Default: relative threshold; --fail-on-duplicates exits 1; an empty test set is fine.
        let relative = try JSONDecoder().decode(Leakage.self, from: Data(try Self.run(["data", "leakage", "--train", "@/train.npy", "--test", "@/test.npy", "--json"]).stdout.utf8))
        #expect(relative.medianTrainNeighbourDistance != nil && relative.exactDuplicateTestRows == 2)
        let fail = try Self.run(["data", "leakage", "--train", "@/train.npy", "--test", "@/test.npy", "--fail-on-duplicates"])
        #expect(fail.status == 1 && fail.stdout.contains("2 of 5 test rows equal a training row"), "\(fail.stdout)")
        let empty = try Self.run(["data", "leakage", "--train", "@/train.npy", "--test", "@/test_empty.npy", "--json"])
        #expect(empty.status == 0, "\(empty.stderr)")
    }

    @Test func helpFitsEightyColumns() throws {
        for command in [["data"], ["data", "issues"], ["data", "leakage"]] {
            let r = try CLIRunner.run(command + ["--help"])
            #expect(r.status == 0)
            for line in r.stdout.split(separator: "\n") where !line.hasPrefix("USAGE:") {
                #expect(line.count <= 80, "faultline \(command.joined(separator: " ")) --help: \(line.count) columns: \(line)")
            }
        }
    }

    /// `report --label-probs` of the wrong shape (3 classes for a 10-class model) is refused before any work.
    @Test func reportRefusesMisfitLabelProbabilities() throws {
        let dir = HostileInputTests.directory
        let args = HostileInputTests.report(["--label-probs", "@/p3.npy"], out: "rlp1").map { $0.replacingOccurrences(of: "@/", with: dir + "/") }
        let r = try CLIRunner.run(args, timeout: 60)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("--label-probs") && r.stderr.contains("p3.npy") && r.stderr.contains("10 classes"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/rlp1"))
    }

    static let issues = ["data", "issues", "--probs", "@/p.npy", "--labels", "@/y.npy"]
    static let leakage = ["data", "leakage", "--train", "@/train.npy", "--test", "@/test.npy"]

    static let cases: [HostileInputTests.Case] = [
        .init(name: "issues labels out of range", arguments: ["data", "issues", "--probs", "@/p.npy", "--labels", "@/y_3.npy"], mentions: ["--labels", "y_3.npy", "3 classes"]),
        .init(name: "issues label count mismatch", arguments: ["data", "issues", "--probs", "@/p.npy", "--labels", "@/y_short.npy"], mentions: ["--labels", "y_short.npy", "29", "--probs"]),
        .init(name: "issues NaN probability", arguments: ["data", "issues", "--probs", "@/p_nan.npy", "--labels", "@/y.npy"], mentions: ["--probs", "p_nan.npy", "probability[2, 1]"]),
        .init(name: "issues row not summing to 1", arguments: ["data", "issues", "--probs", "@/p_off.npy", "--labels", "@/y.npy"], mentions: ["--probs", "p_off.npy", "row 5", "sums to"]),
        .init(name: "issues one class column", arguments: ["data", "issues", "--probs", "@/p1.npy", "--labels", "@/y_short.npy"], mentions: ["--probs", "p1.npy", "2 classes"]),
        .init(name: "issues --probs and --logits", arguments: issues + ["--logits", "@/z.npy"], mentions: ["--probs", "--logits"]),
        .init(name: "issues no scores", arguments: ["data", "issues", "--labels", "@/y.npy"], mentions: ["--probs", "--logits"]),
        .init(name: "issues --filter predicted_neq_given", arguments: issues + ["--filter", "predicted_neq_given"], mentions: ["--filter"]),
        .init(name: "issues --rank-by entropy", arguments: issues + ["--rank-by", "entropy"], mentions: ["--rank-by"]),
        .init(name: "issues --top -1", arguments: issues + ["--top=-1"], mentions: ["--top"]),
        .init(name: "issues --fail-above 2", arguments: issues + ["--fail-above", "2"], mentions: ["--fail-above"]),
        .init(name: "issues --fail-above nan", arguments: issues + ["--fail-above", "nan"], mentions: ["--fail-above"]),
        .init(name: "issues missing file", arguments: ["data", "issues", "--probs", "@/nope.npy", "--labels", "@/y.npy"], mentions: ["--probs", "nope.npy"]),
        .init(name: "leakage NaN test row", arguments: ["data", "leakage", "--train", "@/train.npy", "--test", "@/test_nan.npy"], mentions: ["--test", "test_nan.npy", "row 1, column 1"]),
        .init(name: "leakage widths differ", arguments: ["data", "leakage", "--train", "@/train.npy", "--test", "@/test_wide.npy"], mentions: ["--test", "test_wide.npy", "4 features", "--train"]),
        .init(name: "leakage empty train", arguments: ["data", "leakage", "--train", "@/train_empty.npy", "--test", "@/test.npy"], mentions: ["--train", "train_empty.npy", "no rows"]),
        .init(name: "leakage --threshold -1", arguments: leakage + ["--threshold=-1"], mentions: ["--threshold"]),
        .init(name: "leakage --threshold nan", arguments: leakage + ["--threshold", "nan"], mentions: ["--threshold"]),
        .init(name: "leakage both thresholds", arguments: leakage + ["--threshold", "1", "--relative-threshold", "0.1"], mentions: ["--threshold", "--relative-threshold"]),
        .init(name: "leakage --median-rows -1", arguments: leakage + ["--median-rows=-1"], mentions: ["--median-rows"]),
        .init(name: "leakage --max-pairs 0", arguments: leakage + ["--max-pairs", "0"], mentions: ["--max-pairs"]),
        .init(name: "leakage one label file", arguments: leakage + ["--train-labels", "@/train_y.npy"], mentions: ["--test-labels"]),
        .init(name: "leakage train label count", arguments: leakage + ["--train-labels", "@/test_y.npy", "--test-labels", "@/test_y.npy"],
              mentions: ["--train-labels", "test_y.npy", "5 labels", "12 rows"]),
        .init(name: "leakage test label count", arguments: leakage + ["--train-labels", "@/train_y.npy", "--test-labels", "@/y_3.npy"], mentions: ["--test-labels", "y_3.npy"]),
        .init(name: "leakage missing file", arguments: ["data", "leakage", "--train", "@/nope.npy", "--test", "@/test.npy"], mentions: ["--train", "nope.npy"]),
        .init(name: "data unknown subcommand", arguments: ["data", "frobnicate"], mentions: ["frobnicate"]),
    ]

    @Test(arguments: cases)
    func hostileInputExitsWith2(_ c: HostileInputTests.Case) throws {
        let r = try Self.run(c.arguments)
        #expect(!r.timedOut && !r.signaled, "\(c.name): \(r.status)\n\(r.stderr)")
        #expect(r.status == 2, "\(c.name): exit \(r.status)\n\(r.stderr)")
        for m in c.mentions { #expect(r.stderr.contains(m), "\(c.name): stderr does not mention '\(m)':\n\(r.stderr)") }
        #expect(!r.stderr.contains("Fatal error"), "\(c.name): \(r.stderr)")
    }

    /// The generated corpus of malformed files in every array slot of the two commands.
    static let slots: [(name: String, arguments: @Sendable (String) -> [String])] = [
        ("data issues --probs", { ["data", "issues", "--probs", $0, "--labels", "@/y.npy"] }),
        ("data issues --labels", { ["data", "issues", "--probs", "@/p.npy", "--labels", $0] }),
        ("data leakage --train", { ["data", "leakage", "--train", $0, "--test", "@/test.npy"] }),
        ("data leakage --test", { ["data", "leakage", "--train", "@/train.npy", "--test", $0] }),
    ]

    static let corpus: [HostileInputTests.Case] = HostileInputTests.malformedCorpus(slots)

    @Test(arguments: corpus)
    func malformedFileExitsWith2(_ c: HostileInputTests.Case) throws {
        try HostileInputTests.expectMalformedFileRefused(c, directory: Self.directory)
    }
}
