import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// Named state_dicts with batchnorm, `--normalize` and the `.pt` refusal through the command line
/// (fixtures of scripts/fixtures/make_state_dict_fixtures.py, read from the NN tests' directory).
@Suite("faultline: named state_dicts and --normalize")
struct StateDictCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FaultlineNNTests/Fixtures").path
    static let cnnSpec = "input:3x8x8,conv2d:3-8-3-1-1,batchnorm2d:8,relu,maxpool:2,conv2d:8-8-3-1-1,relu,batchnorm2d:8,flatten,linear:128-5"
    static let mean = "0.485,0.456,0.406", std = "0.229,0.224,0.225"

    static func expected() throws -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: try NPZ.read(fixtures + "/named_cnn_expected.npz").map { ($0.name, $0.tensor.values(as: Float.self)) })
    }

    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        let scale = max(b.map(abs).max() ?? 0, 1e-3)
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * scale }
    }

    /// `predict` on the state_dict, with and without `--normalize` (both syntaxes), equals PyTorch's
    /// model(x) and model((x − mean)/std) on the raw x.
    @Test(arguments: [nil, ["--normalize", "\(mean):\(std)"], ["--normalize=\(mean):\(std)"]] as [[String]?])
    func predictWithAndWithoutNormalize(normalize: [String]?) throws {
        let out = TestScratch.root.appendingPathComponent("sd-\(UUID().uuidString).npz").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLIRunner.run(["predict", "--model", Self.fixtures + "/named_cnn.safetensors", "--spec", Self.cnnSpec,
                                   "--x", Self.fixtures + "/named_cnn_expected.npz:x", "--out", out, "--quiet"] + (normalize ?? []))
        #expect(r.status == 0, "\(r.stderr)")
        let logits = try NPZ.read(out).first { $0.name == "logits" }!.tensor.values(as: Float.self)
        let e = try Self.expected()
        #expect(Self.close(logits, e[normalize == nil ? "logits" : "logits_normalized"]!))
        #expect(!Self.close(logits, e[normalize == nil ? "logits_normalized" : "logits"]!))
    }

    /// `attack` at ε = 0 reports the clean accuracy of the normalised model (argmax of PyTorch's
    /// normalised logits), and its adversarial examples stay in the raw box [0, 1]; `certify --method ibp`
    /// runs on the normalised layer stack.
    @Test func attackAndCertifyWithNormalize() throws {
        let dir = TestScratch.root.appendingPathComponent("sd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try Self.expected()
        let y = e["y"]!.map { Int($0) }
        func accuracy(_ logits: [Float]) -> Double {
            Double((0..<y.count).filter { i in
                let row = Array(logits[(i * 5)..<(i * 5 + 5)])
                return row.firstIndex(of: row.max()!) == y[i]
            }.count) / Double(y.count)
        }
        let common = ["--model", Self.fixtures + "/named_cnn.safetensors", "--spec", Self.cnnSpec, "--x", Self.fixtures + "/named_cnn_expected.npz:x",
                      "--y", Self.fixtures + "/named_cnn_expected.npz:y", "--normalize", "\(Self.mean):\(Self.std)"]
        let attack = try CLIRunner.run(["attack"] + common + ["--eps", "0,0.03", "--steps", "5", "--json", "--out", dir + "/adv.npz"])
        #expect(attack.status == 0, "\(attack.stderr)")
        struct Report: Decodable { var cleanAccuracy: Double }
        #expect(try JSONDecoder().decode(Report.self, from: Data(attack.stdout.utf8)).cleanAccuracy == accuracy(e["logits_normalized"]!))
        for array in try NPZ.read(dir + "/adv.npz") where array.tensor.dtype.isFloatingPoint {
            let values = array.tensor.values(as: Float.self)
            #expect(values.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(array.name)")
        }
        let certify = try CLIRunner.run(["certify"] + common + ["--method", "ibp", "--eps", "0,0.001", "--json"])
        #expect(certify.status == 0, "\(certify.stderr)")
    }

    /// A per-channel `--box` on the 3-channel CNN: with equal channels the report equals `--box 0,1`;
    /// with channel 1 limited to [0, 0.5] the examples stay in each channel's interval and within ε,
    /// `certify --method ibp` accepts it, and an input outside its channel is refused naming --x and --box.
    @Test func perChannelBox() throws {
        let dir = TestScratch.root.appendingPathComponent("box-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = ["--model", Self.fixtures + "/named_cnn.safetensors", "--spec", Self.cnnSpec]
        let raw = Self.fixtures + "/named_cnn_expected.npz:x", y = Self.fixtures + "/named_cnn_expected.npz:y"
        func attack(_ x: String, _ box: String, out: String? = nil) throws -> CLIRunner.Result {
            try CLIRunner.run(["attack"] + model + ["--x", x, "--y", y, "--eps", "0,0.1", "--steps", "5", "--json", "--box", box]
                              + (out.map { ["--out", $0] } ?? []))
        }
        let uniform = try attack(raw, "0,1"), perChannel = try attack(raw, "0,0,0:1,1,1")
        #expect(uniform.status == 0 && perChannel.status == 0, "\(uniform.stderr) \(perChannel.stderr)")
        func withoutTimes(_ json: String) -> [String] { json.split(separator: "\n").filter { !$0.contains("\"seconds\"") }.map(String.init) }
        #expect(withoutTimes(uniform.stdout) == withoutTimes(perChannel.stdout) && !withoutTimes(uniform.stdout).isEmpty)
        let refused = try attack(raw, "0,0,0:1,0.5,1")
        #expect(refused.status == 2 && refused.stderr.contains("--x") && refused.stderr.contains("outside --box"), "\(refused.stderr)")
        // Channel 1 (features 64..<128 of 3×8×8) clamped to [0, 0.5].
        var x = try NPZ.read(Self.fixtures + "/named_cnn_expected.npz").first { $0.name == "x" }!.tensor.values(as: Float.self)
        let rows = x.count / 192
        for i in 0..<rows { for j in 64..<128 { x[i * 192 + j] = min(x[i * 192 + j], 0.5) } }
        try NPY.write(try Matrix<Float>(rows: rows, columns: 192, elements: x), to: dir + "/x.npy")
        let narrow = try attack(dir + "/x.npy", "0,0,0:1,0.5,1", out: dir + "/adv.npz")
        #expect(narrow.status == 0, "\(narrow.stderr)")
        let adversarial = try NPZ.read(dir + "/adv.npz").first { $0.name == "eps_0.1" }!.tensor.values(as: Float.self)
        #expect(adversarial.count == x.count)
        for (k, a) in adversarial.enumerated() {
            let hi: Float = (64..<128).contains(k % 192) ? 0.5 : 1
            #expect(a >= 0 && a <= hi && abs(a - x[k]) <= 0.1 + 1e-6, "element \(k): \(a) from \(x[k])")
        }
        #expect(adversarial != x, "the attack never moved: the test proves nothing")
        let certify = try CLIRunner.run(["certify"] + model + ["--x", dir + "/x.npy", "--y", y, "--method", "ibp", "--eps", "0,0.001",
                                                              "--box", "0,0,0:1,0.5,1", "--json"])
        #expect(certify.status == 0, "\(certify.stderr)")
    }

    /// Bad `--normalize` values are usage errors at parse time; one that does not fit the model names both.
    @Test(arguments: [("0.5", "MEAN"), ("0.5:0", "> 0"), ("a:1", "MEAN"), ("0.1,0.2:1,2,3", "as many"), ("0.1,0.2:1", "2 channels")])
    func badNormalize(value: String, fragment: String) throws {
        let r = try CLIRunner.run(["attack", "--model", Self.fixtures + "/named_cnn.safetensors", "--spec", Self.cnnSpec,
                                   "--x", Self.fixtures + "/named_cnn_expected.npz:x", "--y", Self.fixtures + "/named_cnn_expected.npz:y",
                                   "--eps", "0", "--normalize", value])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--normalize") && r.stderr.contains(fragment), "\(r.stderr)")
    }

    /// A torch.save file is refused by its bytes wherever a model is read (even named .onnx or
    /// .safetensors), in one line with the fix.
    @Test(arguments: ["torch_zip.pt", "torch_legacy.pt"])
    func ptFilesAreRefused(file: String) throws {
        let dir = TestScratch.root.appendingPathComponent("sd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in [file, "model.onnx", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: Self.fixtures + "/" + file, toPath: dir + "/" + name)
            for command in [["attack", "--eps", "0"], ["predict", "--out", dir + "/o.npz"]] {
                let r = try CLIRunner.run([command[0], "--model", dir + "/" + name, "--x", Self.fixtures + "/named_cnn_expected.npz:x"]
                                          + (command[0] == "attack" ? ["--y", Self.fixtures + "/named_cnn_expected.npz:y"] : []) + command.dropFirst())
                #expect(r.status == 2, "\(command[0]) \(name): \(r.stderr)")
                #expect(r.stderr.contains(name) && r.stderr.contains("safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")")
                        && r.stderr.contains("torch.onnx.export"), "\(command[0]) \(name): \(r.stderr)")
                #expect(r.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "\(r.stderr)")
            }
        }
    }
}
