import FaultlineAnalysis
import FaultlineIO
import Foundation
import Testing
import _TestSupport

/// The README's journey for a user's PyTorch model: an ONNX file from `torch.onnx.export` goes into
/// `attack`, `certify --method ibp` and `report` through `--model`, and `predict`'s outputs into `calibrate` and `conformal`.
@Suite("ONNX model journeys")
struct OnnxJourneyTests {
    static let fixtures = PredictCommandTests.fixtures

    /// 340 rows: the ResNet fixture's 17 inputs, each 20 times with small noise, labels cycling through the
    /// classes (so every class has training rows).
    static func data(in dir: String) throws -> (x: String, y: String) {
        let x = try NPY.readMatrix("\(fixtures)/resnet_x.npy", as: Float.self)
        var rows: [Float] = [], labels: [Int64] = []
        var state: UInt64 = 7
        for copy in 0..<20 {
            for i in 0..<x.rows {
                for v in x.row(i) {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    rows.append(v + Float(Int(state >> 40) % 1000 - 500) * 1e-4)
                }
                labels.append(Int64((copy * x.rows + i) % 10))
            }
        }
        try NPY.write(Tensor(shape: [20 * x.rows, x.columns], values: rows), to: dir + "/x.npy")
        try NPY.write(Tensor(shape: [labels.count], values: labels), to: dir + "/y.npy")
        return (dir + "/x.npy", dir + "/y.npy")
    }

    @Test func attackAndReportTakeAnOnnxModel() throws {
        let dir = TestScratch.root.appendingPathComponent("onnx-journey-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = try Self.data(in: dir)
        let model = "\(Self.fixtures)/resnet.onnx"
        let attack = try CLIRunner.run(["attack", "--model", model, "--x", x, "--y", y, "--eps", "0,0.01", "--box=-1,2", "--steps", "5", "--json", "--quiet"])
        #expect(attack.status == 0, "\(attack.stderr)")
        struct AttackJSON: Decodable { struct Row: Decodable { var epsilon: Float; var robustAccuracy: Double }; var cleanAccuracy: Double; var rows: [Row] }
        let a = try JSONDecoder().decode(AttackJSON.self, from: Data(attack.stdout.utf8))
        #expect(a.rows[0].robustAccuracy == a.cleanAccuracy && a.rows[1].robustAccuracy <= a.cleanAccuracy)
        let report = try CLIRunner.run(["report", "--model", model, "--train-x", x, "--train-y", y, "--test-x", x, "--test-y", y, "--box=-1,2",
                                        "--eps", "0,0.01", "--robustness-samples", "40", "--out", dir + "/report", "--quiet"])
        #expect(report.status == 0, "\(report.stderr)")
        let decoded = try JSONDecoder().decode(FailureReport.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/report/report.json")))
        // Graphs are certified by IBP (in the certifiedCROWN column, with a note saying so), checked against APGD-CE.
        #expect(decoded.samples.test == 340 && decoded.robustness.count == 2)
        #expect(decoded.robustness.allSatisfy { ($0.certifiedCROWN ?? -1) >= 0 && $0.certifiedCROWN! <= $0.apgdCE && $0.inconsistencies == [] })
        #expect(decoded.robustnessNotes.contains { $0.hasPrefix("CROWN skipped") && $0.contains("IBP") })
        #expect(decoded.certificationMethod == "IBP")
        #expect(try String(contentsOfFile: dir + "/report/report.html", encoding: .utf8).contains("IBP certified"))
        // CROWN needs a Sequential: certify says so, naming the option, the file and the method that works.
        let crown = try CLIRunner.run(["certify", "--model", model, "--x", x, "--y", y, "--method", "crown", "--box=-1,2"])
        #expect(crown.status == 2 && crown.stderr.contains("--model") && crown.stderr.contains("resnet.onnx")
                && crown.stderr.contains("--method ibp"), "\(crown.stderr)")
        // IBP certifies the graph: at ε = 0 every correctly classified row, never a row the attack breaks.
        let ibp = try CLIRunner.run(["certify", "--model", model, "--x", x, "--y", y, "--method", "ibp", "--box=-1,2", "--eps", "0,0.001,0.05",
                                     "--steps", "5", "--json", "--quiet"])
        #expect(ibp.status == 0, "\(ibp.stderr)")
        struct CertifyJSON: Decodable {
            struct Row: Decodable { var epsilon: Float; var attackAccuracy: Double; var certifiedAccuracy: Double; var inconsistencies: [Int] }
            var method: String; var cleanAccuracy: Double; var rows: [Row]
        }
        let c = try JSONDecoder().decode(CertifyJSON.self, from: Data(ibp.stdout.utf8))
        #expect(c.method == "ibp" && c.rows.count == 3 && c.rows[0].certifiedAccuracy == c.cleanAccuracy && c.cleanAccuracy > 0)
        #expect(c.rows.allSatisfy { $0.certifiedAccuracy <= $0.attackAccuracy && $0.inconsistencies.isEmpty })
        #expect(c.rows[2].certifiedAccuracy <= c.rows[1].certifiedAccuracy && c.rows[1].certifiedAccuracy <= c.rows[0].certifiedAccuracy)
    }

    /// `certify --method crown` on the ONNX export of a PyTorch nn.Sequential MLP (a layer chain): runs,
    /// certifies no more than the attack leaves and never less than IBP.
    @Test func crownCertifiesAnOnnxLayerChain() throws {
        let dir = TestScratch.root.appendingPathComponent("onnx-crown-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let digits = try BundledDatasets.digits().stratifiedSplit(seed: 0).test.subset(Array(0..<60))
        try NPY.write(digits.features, to: dir + "/x.npy")
        try NPY.write(Tensor(shape: [60], values: digits.labels.map(Int64.init)), to: dir + "/y.npy")
        struct CertifyJSON: Decodable {
            struct Row: Decodable { var attackAccuracy: Double; var certifiedAccuracy: Double; var inconsistencies: [Int] }
            var rows: [Row]
        }
        var certified: [String: [Double]] = [:]
        for method in ["crown", "ibp"] {
            let r = try CLIRunner.run(["certify", "--model", "\(Self.fixtures)/digits_mlp.onnx", "--x", dir + "/x.npy", "--y", dir + "/y.npy",
                                       "--method", method, "--eps", "0,0.01,0.03", "--steps", "10", "--json", "--quiet"])
            #expect(r.status == 0, "\(method): \(r.stderr)")
            let c = try JSONDecoder().decode(CertifyJSON.self, from: Data(r.stdout.utf8))
            #expect(c.rows.allSatisfy { $0.certifiedAccuracy <= $0.attackAccuracy && $0.inconsistencies.isEmpty })
            certified[method] = c.rows.map(\.certifiedAccuracy)
        }
        #expect(zip(certified["crown"]!, certified["ibp"]!).allSatisfy { $0 >= $1 } && certified["crown"]![1] > 0, "\(certified)")
    }

    /// The README's second journey: `predict` turns a model and inputs into logits, probabilities and a
    /// feature tap, which `calibrate`, `conformal` and `shift` take without Python. On the trained ResNet
    /// fixture (64 inputs, a fifth of them mislabelled: 32 to calibrate, 32 to test) and a noisy copy of the test rows.
    @Test func predictFeedsCalibrateConformalAndShift() throws {
        let dir = TestScratch.root.appendingPathComponent("predict-journey-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let arrays = Dictionary(uniqueKeysWithValues: try NPZ.read("\(Self.fixtures)/resnet_trained_apgd.npz").map { ($0.name, $0.tensor) })
        let x = arrays["x_u8"]!.values(as: Double.self).map { Float($0) / 255 }, clean = arrays["y"]!.values(as: Double.self).map { Int64($0) }
        // Every fifth label moved to the next class: the model classifies all 64 inputs correctly, and
        // temperature scaling is undefined without mistakes in the calibration rows.
        let y = clean.indices.map { $0 % 5 == 2 ? (clean[$0] + 1) % 10 : clean[$0] }
        let d = x.count / y.count, half = y.count / 2
        var state: UInt64 = 3
        let noisy = x[(half * d)...].map { v -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return v + Float(Int(state >> 40) % 1001 - 500) / 500 * 0.5
        }
        try NPY.write(Tensor(shape: [half, d], values: Array(x[..<(half * d)])), to: dir + "/val_x.npy")
        try NPY.write(Tensor(shape: [half, d], values: Array(x[(half * d)...])), to: dir + "/test_x.npy")
        try NPY.write(Tensor(shape: [half, d], values: noisy), to: dir + "/noisy_x.npy")
        try NPY.write(Tensor(shape: [half], values: Array(y[..<half])), to: dir + "/val_y.npy")
        try NPY.write(Tensor(shape: [half], values: Array(y[half...])), to: dir + "/test_y.npy")
        let model = "\(Self.fixtures)/resnet_trained.onnx"
        for set in ["val", "test", "noisy"] {
            let r = try CLIRunner.run(["predict", "--model", model, "--x", "\(dir)/\(set)_x.npy", "--out", "\(dir)/\(set).npz",
                                       "--features", "/Reshape_output_0", "--quiet"])
            #expect(r.status == 0, "predict \(set): \(r.stderr)")
        }
        let calibrate = try CLIRunner.run(["calibrate", "--logits", dir + "/test.npz:logits", "--labels", dir + "/test_y.npy",
                                           "--fit", "temperature", "--calibration-logits", dir + "/val.npz:logits",
                                           "--calibration-labels", dir + "/val_y.npy", "--json"])
        #expect(calibrate.status == 0 && calibrate.stdout.contains("temperature"), "\(calibrate.stderr)")
        let conformal = try CLIRunner.run(["conformal", "--calibration-probs", dir + "/val.npz:probabilities",
                                           "--calibration-labels", dir + "/val_y.npy", "--probs", dir + "/test.npz:probabilities",
                                           "--labels", dir + "/test_y.npy", "--alpha", "0.1", "--tolerance", "0.15", "--json"])
        #expect(conformal.status == 0 && conformal.stdout.contains("coverage"), "\(conformal.stderr)")
        let fit = try CLIRunner.run(["shift", "fit", "--features", dir + "/val.npz:features_Reshape_output_0", "--labels", dir + "/val_y.npy",
                                     "--out", dir + "/detector.safetensors"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let score = try CLIRunner.run(["shift", "score", "--detector", dir + "/detector.safetensors",
                                       "--features", dir + "/test.npz:features_Reshape_output_0",
                                       "--ood", dir + "/noisy.npz:features_Reshape_output_0", "--json"])
        #expect(score.status == 0, "\(score.stderr)")
        struct Detection: Decodable { struct Metrics: Decodable { var auroc: Double }; var metrics: Metrics }
        let auroc = try JSONDecoder().decode(Detection.self, from: Data(score.stdout.utf8)).metrics.auroc
        #expect(auroc > 0.5, "heavy noise must look shifted in the model's features: AUROC \(auroc)")
    }

    /// `faultline demo --model` analyses a user's digits classifier (the 64-32-10 MLP of the APGD
    /// fixtures, exported to ONNX) on the demo's split instead of training an ensemble; a model of the
    /// wrong shape is exit 2 naming --model and saying what the digits need.
    @Test func demoTakesAnOnnxModel() throws {
        let dir = TestScratch.root.appendingPathComponent("demo-onnx-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLIRunner.run(["demo", "--model", "\(Self.fixtures)/digits_mlp.onnx", "--out", dir, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONDecoder().decode(FailureReport.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/report.json")))
        #expect(report.samples.test > 300 && report.robustness.count == 6 && report.ensemble == nil && report.heldOutClass == nil)
        #expect(report.reliability.accuracy > 0.85, "the digits MLP is ~95 % accurate: \(report.reliability.accuracy)")
        let wrong = try CLIRunner.run(["demo", "--model", "\(Self.fixtures)/resnet.onnx", "--out", dir + "-wrong", "--quiet"])
        #expect(wrong.status == 2 && wrong.stderr.contains("--model") && wrong.stderr.contains("64 inputs"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "-wrong"))
    }
}
