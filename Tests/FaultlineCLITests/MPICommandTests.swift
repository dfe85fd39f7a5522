import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// Open MPI's launcher and library, when installed (scripts/bootstrap installs openmpi-bin and
/// libopenmpi-dev). Looked up on disk, never dlopened here: the test process itself must not load libmpi.
let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
let libmpiInstalled: Bool = {
    if let path = ProcessInfo.processInfo.environment["FAULTLINE_MPI"] { return FileManager.default.fileExists(atPath: path) }
    return ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
        .contains { FileManager.default.fileExists(atPath: "\($0)/libmpi.so.40") }
}()

/// The commands that run on several ranks give the one-process results under `mpirun -np K`, and a failed
/// or killed rank ends the job with an error naming it and no output file.
@Suite("faultline under mpirun", .serialized,
       .enabled(if: mpirun != nil && libmpiInstalled, "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev, or run scripts/bootstrap)"))
struct MPICommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FaultlineONNXTests/Fixtures").path
    /// mpirun as root needs both variables; Open MPI ignores them otherwise.
    static let environment: [String: String?] = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                                 "OMPI_MCA_rmaps_base_oversubscribe": "1", "FAULTLINE_THREADS": "1"]

    /// `faultline arguments` on `ranks` ranks (coreutils timeout ends mpirun, which ends its ranks, if it hangs).
    static func run(_ ranks: Int, _ arguments: [String]) throws -> CLIRunner.Result {
        try CLIRunner.run(arguments, environment: environment,
                          launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", String(ranks)])
    }

    static func temporary(_ name: String) -> String {
        TestScratch.root.appendingPathComponent("mpi-\(UUID().uuidString)-\(name)").path
    }

    /// Seeded N×C logits, their softmax, and labels, written as .npy files.
    static func scores(_ n: Int, classes c: Int, seed: UInt64) throws -> (logits: String, probs: String, labels: String) {
        var rng = Philox(seed: seed, stream: 3)
        var z = Matrix<Float>(rows: n, columns: c)
        for i in 0..<n { for j in 0..<c { z[i, j] = Float(6 * rng.uniform() - 3) } }
        let p = try Linalg.softmaxRows(z)
        let y = (0..<n).map { _ in Int64(rng.uniform() * Double(c)) }
        let paths = (temporary("z.npy"), temporary("p.npy"), temporary("y.npy"))
        try NPY.write(z, to: paths.0)
        try NPY.write(p, to: paths.1)
        try NPY.write(Tensor(shape: [n], values: y), to: paths.2)
        return paths
    }

    static func remove(_ paths: String...) { for p in paths { try? FileManager.default.removeItem(atPath: p) } }

    /// The first `rows` rows of `digits` and their labels, written as .npy files: (x, y) paths.
    static func digitsRows(_ digits: LabeledDataset, _ rows: Int) throws -> (String, String) {
        let (x, y) = (temporary("x\(rows).npy"), temporary("y\(rows).npy"))
        let part = digits.subset(Array(0..<rows))
        try NPY.write(part.features, to: x)
        try NPY.write(Tensor(shape: [rows], values: part.labels.map(Int64.init)), to: y)
        return (x, y)
    }

    @Test func infoReportsTheJob() throws {
        let r = try Self.run(2, ["info", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        struct Info: Decodable { struct MPI: Decodable { var launched: Bool; var active: Bool; var rank: Int; var size: Int; var library: String?; var hosts: [String] }; var mpi: MPI }
        let info = try JSONDecoder().decode(Info.self, from: Data(r.stdout.utf8))
        #expect(info.mpi.launched && info.mpi.active && info.mpi.rank == 0 && info.mpi.size == 2 && info.mpi.hosts.count == 2)
        #expect(info.mpi.library?.contains("libmpi") == true)
        let one = try CLIRunner.run(["info"])
        #expect(one.stdout.contains("MPI: not launched by mpirun"))
    }

    /// predict: the .npz of K ranks is the one-process file's arrays bit for bit (17 rows on 1, 2 and 3 ranks;
    /// 2 rows on 3 ranks leaves one rank without rows). (Each mpirun costs 1–2 s here: few runs.)
    @Test func predictIsBitIdentical() throws {
        let model = "\(Self.fixtures)/mlp_dynamo.onnx", x = "\(Self.fixtures)/mlp_dynamo_x.npy"
        let two = Self.temporary("x2.npy")
        try NPY.write(try NPY.readRows(x, rows: 0..<2, as: Float.self), to: two)
        defer { Self.remove(two) }
        for (input, counts) in [(x, [1, 2, 3]), (two, [3])] {
            let one = Self.temporary("one.npz")
            defer { Self.remove(one) }
            let r1 = try CLIRunner.run(["predict", "--model", model, "--x", input, "--out", one, "--quiet"])
            #expect(r1.status == 0, "\(r1.stderr)")
            let expected = try NPZ.read(one)
            for ranks in counts {
                let out = Self.temporary("k.npz")
                defer { Self.remove(out) }
                let r = try Self.run(ranks, ["predict", "--model", model, "--x", input, "--out", out, "--batch-size", "5", "--block-rows", "3"])
                #expect(r.status == 0, "\(r.stderr)")
                let got = try NPZ.read(out)
                #expect(got.map(\.name) == expected.map(\.name))
                for (a, b) in zip(got, expected) { #expect(a.tensor == b.tensor, "\(a.name), \(ranks) ranks, \(input)") }
            }
        }
    }

    /// Messages capped at 64 bytes (FAULTLINE_MPI_MAX_MESSAGE): gathers, reductions and broadcasts run in
    /// many rounds and the outputs are still the one-process ones.
    @Test func smallMessageRoundsGiveTheSameOutputs() throws {
        let model = "\(Self.fixtures)/mlp_dynamo.onnx", x = "\(Self.fixtures)/mlp_dynamo_x.npy"
        let one = Self.temporary("one.npz"), out = Self.temporary("rounds.npz")
        let (z, _, y) = try Self.scores(70, classes: 4, seed: 8)
        defer { Self.remove(one, out, z, y) }
        let r1 = try CLIRunner.run(["predict", "--model", model, "--x", x, "--out", one, "--quiet"])
        let r = try CLIRunner.run(["predict", "--model", model, "--x", x, "--out", out, "--quiet"], environment: Self.environment.merging(["FAULTLINE_MPI_MAX_MESSAGE": "64"]) { $1 },
                                  launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", "3"])
        #expect(r1.status == 0 && r.status == 0, "\(r.stderr)")
        #expect(try NPZ.read(out).map(\.tensor) == NPZ.read(one).map(\.tensor))
        let c1 = try CLIRunner.run(["calibrate", "--logits", z, "--labels", y, "--json"])
        let c = try CLIRunner.run(["calibrate", "--logits", z, "--labels", y, "--json"], environment: Self.environment.merging(["FAULTLINE_MPI_MAX_MESSAGE": "64"]) { $1 },
                                  launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", "2"])
        #expect(c.status == 0, "\(c.stderr)")
        let a = try JSONDecoder().decode(CalibrationJSON.self, from: Data(c1.stdout.utf8)).before
        let b = try JSONDecoder().decode(CalibrationJSON.self, from: Data(c.stdout.utf8)).before
        #expect(a.ece == b.ece && a.bins == b.bins && a.nll == b.nll)
    }

    struct CalibrationJSON: Decodable {
        struct Summary: Decodable, Equatable {
            var ece, mce, classwiseECE, topLabelECE, brier, nll, accuracy: Double
            struct Bin: Decodable, Equatable { var count: Int; var meanConfidence: Double; var accuracy: Double }
            var bins: [Bin]
        }
        var samples: Int
        var before: Summary
    }

    /// calibrate: from logits the top-1 metrics and bins are bit-identical, everything ≤ 1e-12 relative
    /// (logits on 2, 3 and 4 ranks, probabilities on 3).
    @Test func calibrateEqualsOneProcess() throws {
        let (z, p, y) = try Self.scores(130, classes: 6, seed: 2)
        defer { Self.remove(z, p, y) }
        for (option, file) in [("--logits", z), ("--probs", p)] {
            let r1 = try CLIRunner.run(["calibrate", option, file, "--labels", y, "--json"])
            #expect(r1.status == 0, "\(r1.stderr)")
            let one = try JSONDecoder().decode(CalibrationJSON.self, from: Data(r1.stdout.utf8)).before
            for ranks in option == "--logits" ? [2, 3, 4] : [3] {
                let r = try Self.run(ranks, ["calibrate", option, file, "--labels", y, "--json"])
                #expect(r.status == 0, "\(r.stderr)")
                let got = try JSONDecoder().decode(CalibrationJSON.self, from: Data(r.stdout.utf8))
                #expect(got.samples == 130)
                let d = got.before
                if option == "--logits" {
                    #expect(d.ece == one.ece && d.mce == one.mce && d.brier == one.brier && d.nll == one.nll && d.bins == one.bins)
                }
                #expect(d.bins.map(\.count) == one.bins.map(\.count))
                for (a, b) in [(d.ece, one.ece), (d.classwiseECE, one.classwiseECE), (d.topLabelECE, one.topLabelECE), (d.brier, one.brier), (d.nll, one.nll)] {
                    #expect(abs(a - b) <= 1e-12 * max(abs(b), 1e-300), "\(option) \(ranks) ranks: \(a) vs \(b)")
                }
            }
        }
    }

    /// conformal: the report and the sets are the one-process ones (the threshold bit for bit).
    @Test func conformalEqualsOneProcess() throws {
        let (_, calibration, calibrationY) = try Self.scores(200, classes: 5, seed: 4)
        let (_, test, testY) = try Self.scores(31, classes: 5, seed: 5)
        defer { Self.remove(calibration, calibrationY, test, testY) }
        for score in ["lac", "aps-randomized"] {
            let arguments = ["conformal", "--calibration-probs", calibration, "--calibration-labels", calibrationY, "--probs", test, "--labels", testY,
                             "--score", score, "--alpha", "0.2", "--tolerance", "1", "--json"]
            let one = Self.temporary("one.npz"), many = Self.temporary("many.npz")
            defer { Self.remove(one, many) }
            let r1 = try CLIRunner.run(arguments + ["--out", one])
            #expect(r1.status == 0, "\(r1.stderr)")
            let r = try Self.run(3, arguments + ["--out", many])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == r1.stdout)
            #expect(try NPZ.read(many).map(\.tensor) == NPZ.read(one).map(\.tensor))
        }
    }

    /// shift fit: the detector fitted on 3 ranks (with a calibrated threshold) scores like the one-process one.
    @Test func shiftFitEqualsOneProcess() throws {
        let (features, _, labels) = try Self.scores(150, classes: 4, seed: 10)
        let (held, _, _) = try Self.scores(41, classes: 4, seed: 11)
        let one = Self.temporary("one.safetensors"), many = Self.temporary("many.safetensors")
        defer { Self.remove(features, labels, held, one, many) }
        let arguments = ["shift", "fit", "--features", features, "--labels", labels, "--calibration-features", held, "--fpr", "0.1"]
        let r1 = try CLIRunner.run(arguments + ["--out", one])
        let r = try Self.run(3, arguments + ["--out", many])
        #expect(r1.status == 0 && r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("on 3 ranks"))
        struct Score: Decodable { var meanScore: Double; var flagged: Int?; struct T: Decodable { var value: Double }; var threshold: T? }
        let a = try JSONDecoder().decode(Score.self, from: Data(CLIRunner.run(["shift", "score", "--detector", one, "--features", held, "--json"]).stdout.utf8))
        let b = try JSONDecoder().decode(Score.self, from: Data(CLIRunner.run(["shift", "score", "--detector", many, "--features", held, "--json"]).stdout.utf8))
        #expect(abs(a.meanScore - b.meanScore) <= 1e-5 * abs(a.meanScore), "\(a.meanScore) vs \(b.meanScore)")
        #expect(a.flagged == b.flagged && a.threshold != nil && abs(a.threshold!.value - b.threshold!.value) <= 1e-5 * abs(a.threshold!.value))
    }

    /// Communication volume (`FAULTLINE_MPI_STATS=1`): the bytes each rank sends to merge a Gaussian fit do
    /// not depend on N, and `predict`'s gather sends each rank's N/K rows of logits and probabilities.
    @Test func trafficIsConstantForTheFitAndLinearInTheRowsForGathers() throws {
        func traffic(_ ranks: Int, _ arguments: [String]) throws -> [String: Int] {
            var environment = Self.environment
            environment["FAULTLINE_MPI_STATS"] = "1"
            let r = try CLIRunner.run(arguments, environment: environment,
                                      launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", String(ranks)])
            #expect(r.status == 0, "\(r.stderr)")
            let line = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("faultline: rank 1 of \(ranks):") })
            var bytes: [String: Int] = [:]
            for part in line.split(separator: ":", maxSplits: 2).last!.split(separator: ";") {
                let words = part.split(separator: " ")
                if words.count >= 4, let b = Int(words[3]) { bytes[String(words[0])] = b }
            }
            return bytes
        }
        var paths: [String] = []
        defer { for p in paths { Self.remove(p) } }
        var fits: [[String: Int]] = [], gathers: [Int] = []
        for n in [40, 80] {
            let (z, _, y) = try Self.scores(n, classes: 4, seed: 30)
            let out = Self.temporary("fit.safetensors"), predicted = Self.temporary("p.npz")
            paths += [z, y, out, predicted]
            fits.append(try traffic(4, ["shift", "fit", "--features", z, "--labels", y, "--out", out]))
            let x = Self.temporary("x.npy")
            paths.append(x)
            try NPY.write(BundledDatasets.digits().features.sliceRows(0..<n), to: x)
            gathers.append(try traffic(4, ["predict", "--model", "\(Self.fixtures)/digits_mlp.onnx", "--x", x, "--out", predicted, "--quiet"])["MPI_Gatherv"] ?? -1)
        }
        #expect(fits[0] == fits[1] && (fits[0]["MPI_Allgatherv"] ?? 0) > 0, "\(fits)")
        #expect(gathers == [10 * 10 * 4 * 2, 20 * 10 * 4 * 2], "rank 1's gathered bytes for 10 and 20 rows: \(gathers)")
    }

    /// uncertainty: the report and the per-sample .npz of 3 members on 3 ranks are the one-process ones
    /// bit for bit (5 rows: ranks of 2, 2 and 1 rows).
    @Test func uncertaintyIsBitIdentical() throws {
        let members = try (0..<3).map { try Self.scores(5, classes: 4, seed: 20 + UInt64($0)) }
        defer { for m in members { Self.remove(m.logits, m.probs, m.labels) } }
        let one = Self.temporary("one.npz"), many = Self.temporary("many.npz")
        defer { Self.remove(one, many) }
        for useLogits in [false, true] {
            let arguments = ["uncertainty", "--labels", members[0].labels, "--json"] + members.flatMap { ["--member", useLogits ? $0.logits : $0.probs] }
                + (useLogits ? ["--logits"] : [])
            let r1 = try CLIRunner.run(arguments + ["--out", one])
            let r = try Self.run(3, arguments + ["--out", many])
            #expect(r1.status == 0 && r.status == 0, "\(r.stderr)")
            #expect(r.stdout == r1.stdout)
            #expect(try NPZ.read(many).map(\.tensor) == NPZ.read(one).map(\.tensor))
        }
    }

    /// certify: the table (text and JSON) of K ranks is the one-process one — CROWN (digits MLP) and IBP
    /// (a GELU graph) with attacks (5 APGD steps, starts keyed by the row's index in --x) on 17 rows on 1,
    /// 2 and 3 ranks, 2 rows on 3
    /// ranks (one rank without rows), a CSV with its labels, Lipschitz on an .npz input read whole and sliced; randomized
    /// smoothing on 2 and 3 ranks byte-identical.
    @Test func certifyEqualsOneProcess() throws {
        let model = "\(Self.fixtures)/mlp_dynamo.onnx", x = "\(Self.fixtures)/mlp_dynamo_x.npy", y = "\(Self.fixtures)/mlp_dynamo_y.npy"
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test
        let ((dx, dy), (x2, y2)) = (try Self.digitsRows(digits, 17), try Self.digitsRows(digits, 2))
        // The same 17 rows as a CSV holding its labels (read whole and sliced on every rank).
        let csv = Self.temporary("d.csv")
        let part = digits.subset(Array(0..<17))
        try (["label," + (0..<64).map { "f\($0)" }.joined(separator: ",")] + (0..<17).map { i in
            "\(part.labels[i]),\(part.features.row(i).map { "\($0)" }.joined(separator: ","))"
        }).joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        defer { Self.remove(dx, dy, x2, y2, csv) }
        let mlp = "\(Self.fixtures)/digits_mlp.onnx"  // a layer chain: CROWN applies (mlp_dynamo's GELU does not)
        let common = ["--box=-1,2", "--eps", "0,0.01,0.03,0.1", "--steps", "5", "--seed", "3", "--quiet"]
        let cases: [(args: [String], ranks: [Int])] = [
            (["--model", mlp, "--x", dx, "--y", dy, "--method", "crown"] + common + ["--json"], [2, 3]),
            (["--model", model, "--x", x, "--y", y, "--method", "ibp"] + common, [1]),
            (["--model", mlp, "--x", x2, "--y", y2, "--method", "ibp"] + common + ["--json"], [3]),
            (["--model", mlp, "--x", csv, "--label-column", "label", "--method", "crown"] + common, [3]),
            (["--model", StateDictCommandTests.fixtures + "/named_cnn.safetensors", "--spec", StateDictCommandTests.cnnSpec, "--method", "lipschitz",
              "--x", StateDictCommandTests.fixtures + "/named_cnn_expected.npz:x", "--y", StateDictCommandTests.fixtures + "/named_cnn_expected.npz:y",
              "--eps", "0,0.01,0.1", "--steps", "3", "--json", "--quiet"], [2]),
        ]
        for (arguments, counts) in cases {
            let one = try CLIRunner.run(["certify"] + arguments)
            #expect(one.status == 0 && !one.stdout.isEmpty, "\(one.stderr)")
            for ranks in counts {
                let r = try Self.run(ranks, ["certify"] + arguments)
                #expect(r.status == 0, "\(ranks) ranks: \(r.stderr)")
                #expect(r.stdout == one.stdout, "\(ranks) ranks, \(arguments):\n\(r.stdout)\nvs\n\(one.stdout)")
            }
        }
        // Randomized smoothing: noise keyed by the row's index in --x, so the certificates, and the table, are
        // the one-process ones (17 rows on 2 and 3 ranks, 2 rows on 3 ranks).
        for (xPath, yPath, counts) in [(dx, dy, [2, 3]), (x2, y2, [3])] {
            let arguments = ["certify", "--model", mlp, "--x", xPath, "--y", yPath, "--method", "smoothing", "--sigma", "0.25",
                             "--n0", "20", "--n", "200", "--eps", "0,0.1,0.25", "--seed", "5", "--quiet", "--json"]
            let one = try CLIRunner.run(arguments)
            #expect(one.status == 0 && one.stdout.contains("certifiedAtRadius"), "\(one.stderr)")
            for ranks in counts {
                let r = try Self.run(ranks, arguments)
                #expect(r.status == 0 && r.stdout == one.stdout, "smoothing on \(ranks) ranks:\n\(r.stdout)\nvs\n\(one.stdout)\n\(r.stderr)")
            }
        }
    }

    /// `attack` on 17 digits rows: the JSON report (seconds aside) and the --out examples equal the
    /// one-process run on 2 and 3 ranks, for PGD with restarts, APGD-T, Square, AutoAttack, FGSM and
    /// DeepFool, and on 3 ranks over 2 rows (a rank without rows).
    @Test func attackEqualsOneProcess() throws {
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test
        let ((dx, dy), (x2, y2)) = (try Self.digitsRows(digits, 17), try Self.digitsRows(digits, 2))
        let (outOne, outMany) = (Self.temporary("one.npz"), Self.temporary("many.npz"))
        defer { Self.remove(dx, dy, x2, y2, outOne, outMany) }
        let mlp = "\(Self.fixtures)/digits_mlp.onnx"
        let simd = ProcessInfo.processInfo.environment["FAULTLINE_BACKEND"] == "simd"
        /// The report without its timings.
        func table(_ json: String) throws -> String {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            object["rows"] = (object["rows"] as? [[String: Any]])?.map { row in row.filter { $0.key != "seconds" } }
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        let common = ["--model", mlp, "--box=0,1", "--eps", "0.03,0.1", "--steps", "5", "--seed", "3", "--queries", "30", "--json", "--quiet"]
        let cases: [(args: [String], ranks: [Int])] = [
            (["--x", dx, "--y", dy, "--attack", "pgd", "--restarts", "2"], [2, 3]),
            (["--x", dx, "--y", dy, "--attack", "autoattack"], [2, 3]),
            (["--x", dx, "--y", dy, "--attack", "apgd-t"], [3]),
            (["--x", dx, "--y", dy, "--attack", "square"], [2]),
            (["--x", dx, "--y", dy, "--attack", "fgsm"], [2]),
            (["--x", dx, "--y", dy, "--attack", "deepfool"], [3]),
            (["--x", x2, "--y", y2, "--attack", "autoattack"], [3]),
        ]
        for (arguments, counts) in cases {
            let one = try CLIRunner.run(["attack"] + common + arguments + ["--out", outOne])
            #expect(one.status == 0 && !one.stdout.isEmpty, "\(one.stderr)")
            let expected = try NPZ.read(outOne)
            for ranks in counts {
                try? FileManager.default.removeItem(atPath: outMany)
                let r = try Self.run(ranks, ["attack"] + common + arguments + ["--out", outMany])
                #expect(r.status == 0, "\(ranks) ranks: \(r.stderr)")
                #expect(try table(r.stdout) == table(one.stdout), "\(ranks) ranks, \(arguments):\n\(r.stdout)\nvs\n\(one.stdout)")
                // Bit-identical on the simd backend; the blas backend's GEMMs round a row by its batch's size
                // (a rank's batch is its shard), which may move an example by a few ulps.
                let gathered = try NPZ.read(outMany)
                #expect(gathered.map(\.name) == expected.map(\.name))
                for (a, b) in zip(gathered, expected) {
                    let (u, v) = (try a.tensor.matrix(Float.self), try b.tensor.matrix(Float.self))
                    let gap = zip(u.elements, v.elements).map { abs($0 - $1) }.max() ?? 0
                    #expect(u.rows == v.rows && (simd ? a.tensor == b.tensor : gap <= 1e-5), "\(ranks) ranks, \(arguments): --out \(a.name) off by \(gap)")
                }
            }
        }
    }

    /// A bad row in rank 1's part: exit 2, rank 0 names rank 1 and the row once, and no output is written.
    @Test func aFailedRankEndsTheJobWithoutOutput() throws {
        let (_, p, y) = try Self.scores(40, classes: 3, seed: 6)
        var bad = try NPY.readMatrix(p, as: Float.self)
        bad[35, 1] = 2
        let badPath = Self.temporary("bad.npy"), out = Self.temporary("sets.npz")
        try NPY.write(bad, to: badPath)
        defer { Self.remove(p, y, badPath, out) }
        let r = try Self.run(2, ["conformal", "--calibration-probs", p, "--calibration-labels", y, "--probs", badPath, "--out", out])
        #expect(r.status == 2 && !r.timedOut, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("faultline conformal: rank 1 of 2: --probs \(badPath): probability[35, 1] = 2.0"), "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "rank 1 of 2").count == 2)  // once, from rank 0
        #expect(!FileManager.default.fileExists(atPath: out))
        // Too few calibration rows for α: every rank finds it after the all-gather; reported once, exit 2.
        let few = Self.temporary("few.npy"), fewY = Self.temporary("fewy.npy")
        try NPY.write(try NPY.readRows(p, rows: 0..<3, as: Float.self), to: few)
        try NPY.write(Tensor(shape: [3], values: [Int64(0), 1, 2]), to: fewY)
        defer { Self.remove(few, fewY) }
        let small = try Self.run(2, ["conformal", "--calibration-probs", few, "--calibration-labels", fewY, "--probs", p, "--alpha", "0.1"])
        #expect(small.status == 2 && small.stderr.contains("ranks 0, 1 of 2: ") && small.stderr.contains("needs at least 9"), "\(small.stderr)")
        #expect(!small.stderr.contains("MPI_ABORT"), "\(small.stderr)")
        let refused = try Self.run(2, ["calibrate", "--probs", p, "--labels", y, "--fit", "temperature"])
        #expect(refused.status == 2 && refused.stderr.contains("ranks 0, 1 of 2: under mpirun, calibrate computes the metrics only"), "\(refused.stderr)")
    }

    /// A rank killed (SIGKILL) while the job starts: mpirun ends the job within seconds, non-zero, naming the
    /// rank, and no output file exists.
    @Test func aKilledRankEndsTheJobWithoutOutput() throws {
        let x = Self.temporary("big.npy"), out = Self.temporary("killed.npz")
        let rows = try NPY.readMatrix("\(Self.fixtures)/resnet_x.npy", as: Float.self)
        try NPY.write(rows.gatherRows((0..<20_000).map { $0 % rows.rows }), to: x)
        defer { Self.remove(x, out) }
        let start = Date()
        // Rank 1 kills itself (its own pid, the exec'd faultline) 0.2 s in: inside its start-up and MPI's
        // initialisation, long before the job could end (at one second the predict sometimes finished first
        // on a fast machine, and the test failed).
        let script = "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (sleep 0.2; kill -9 $$) & fi; exec \"$0\" \"$@\""
        let r = try CLIRunner.run(["predict", "--model", "\(Self.fixtures)/resnet.onnx", "--x", x, "--out", out, "--quiet"], environment: Self.environment,
                                  launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", "2", "/bin/sh", "-c", script])
        #expect(r.status != 0 && !r.timedOut, "\(r.status) \(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(r.stderr.contains("rank 1"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}

extension MPICommandTests {
    /// FAULTLINE_MPI=none: a faultline started inside an mpirun job runs as one process (no MPI), as a child
    /// of an MPI program would need; a FAULTLINE_MPI naming no library stops every rank with exit 2.
    @Test func mpiCanBeTurnedOffOrMisnamed() throws {
        let r = try CLIRunner.run(["info", "--json"], environment: Self.environment.merging(["FAULTLINE_MPI": "none"]) { $1 },
                                  launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        // Both ranks run alone: two reports, neither launched.
        #expect(r.stdout.components(separatedBy: "\"launched\" : false").count == 3, "\(r.stdout)")
        let missing = try CLIRunner.run(["info"], environment: Self.environment.merging(["FAULTLINE_MPI": "/nonexistent/libmpi.so"]) { $1 },
                                        launcher: ["/usr/bin/timeout", "-k", "5", "60", mpirun!, "--oversubscribe", "--bind-to", "none", "-np", "2"])
        #expect(missing.status == 2 && missing.stderr.contains("MPI is unavailable") && missing.stderr.contains("/nonexistent/libmpi.so"), "\(missing.stderr)")
    }
}
