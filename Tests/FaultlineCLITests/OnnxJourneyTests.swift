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
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-journey-\(UUID().uuidString)").path
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
}
