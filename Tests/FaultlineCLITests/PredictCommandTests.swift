import FaultlineIO
import Foundation
import Testing
import _TestSupport

@Suite("faultline predict")
struct PredictCommandTests {
    /// The ONNX fixtures, found from this source file (the CLI tests do not bundle them).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FaultlineONNXTests/Fixtures").path

    /// Logits and the tap equal onnxruntime's for any batch and block size; probabilities are the softmax.
    @Test(arguments: [("resnet", "1", "17"), ("normalized", "5", "7"), ("mlp_dynamo", "256", "3")])
    func writesLogitsProbabilitiesAndTaps(name: String, batch: String, block: String) throws {
        let out = TestScratch.root.appendingPathComponent("predict-\(name)-\(UUID().uuidString).npz").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let tap = try String(contentsOfFile: "\(Self.fixtures)/\(name)_tap.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let r = try CLIRunner.run(["predict", "--model", "\(Self.fixtures)/\(name).onnx", "--x", "\(Self.fixtures)/\(name)_x.npy",
                                   "--features", tap, "--out", out, "--batch-size", batch, "--block-rows", block, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let arrays = Dictionary(uniqueKeysWithValues: try NPZ.read(out).map { ($0.name, $0.tensor.values(as: Float.self)) })
        let key = "features_" + tap.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? String($0) : "_" }.joined().drop { $0 == "_" }
        #expect(Set(arrays.keys) == ["logits", "probabilities", key])
        let logits = try NPY.read("\(Self.fixtures)/\(name)_logits.npy").values(as: Float.self)
        let features = try NPY.read("\(Self.fixtures)/\(name)_features.npy").values(as: Float.self)
        let scale = max(logits.map(abs).max()!, 1e-3)
        #expect(zip(arrays["logits"]!, logits).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
        #expect(zip(arrays[key]!, features).allSatisfy { abs($0 - $1) <= 1e-5 * max(features.map(abs).max()!, 1e-3) })
        let classes = arrays["probabilities"]!.count / 17
        for row in 0..<17 {
            let p = arrays["probabilities"]![(row * classes)..<((row + 1) * classes)]
            #expect(abs(p.reduce(0, +) - 1) < 1e-5)
        }
    }

    /// Bad models and inputs: exit 2 with a message naming the file and node.
    @Test func badInputsExitTwo() throws {
        let f = Self.fixtures, out = TestScratch.root.appendingPathComponent("predict-bad.npz").path
        let cases: [([String], String)] = [
            (["--model", "\(f)/unsupported_op.onnx", "--x", "\(f)/mlp_x.npy"], "node 'the_hardmax' (Hardmax)"),
            (["--model", "\(f)/cycle.onnx", "--x", "\(f)/mlp_x.npy"], "node 'cycle_add'"),
            (["--model", "\(f)/missing_initializer.onnx", "--x", "\(f)/mlp_x.npy"], "classifier_head.weight"),
            (["--model", "\(f)/truncated.onnx", "--x", "\(f)/mlp_x.npy"], "truncated.onnx"),
            (["--model", "\(f)/mlp.onnx", "--x", "\(f)/resnet_x.npy"], "takes 20"),
            (["--model", "\(f)/mlp.onnx", "--x", "\(f)/mlp_x.npy", "--features", "no_such_tensor"], "no_such_tensor"),
        ]
        for (arguments, message) in cases {
            let r = try CLIRunner.run(["predict"] + arguments + ["--out", out])
            #expect(r.status == 2 && r.stderr.contains(message), "\(arguments): \(r.status) \(r.stderr)")
        }
        let list = try CLIRunner.run(["predict", "--model", "\(f)/mlp.onnx", "--list-tensors"])
        #expect(list.status == 0 && list.stdout.contains("/Sigmoid_output_0\t[24]") && list.stdout.contains("logits\t[4]"))
    }

    /// The hostile ONNX files of scripts/fixtures/make_onnx_bad_inputs.py (one defect each) through every
    /// command that takes --model: exit 2, a message naming the file and the node or tensor at fault,
    /// no output written. The directory is listed, so a new bad_*.onnx file is covered without an edit here
    /// (and must appear in `mentions`).
    @Test func hostileOnnxFilesExitTwoInEveryCommand() throws {
        let f = Self.fixtures
        let mentions = [
            "bad_conv_groups.onnx": "node 'grouped_conv' (Conv)", "bad_duplicate_output.onnx": "node 'second_writer'",
            "bad_huge_dims.onnx": "'fc.weight'", "bad_negative_dims.onnx": "'fc.weight'", "bad_no_output.onnx": "'nowhere'",
            "bad_old_opset.onnx": "opset 7", "bad_raw_size.onnx": "'fc.weight'", "bad_reshape.onnx": "node 'odd_reshape'",
            "bad_shape_mismatch.onnx": "node 'fc' (Gemm)", "bad_string_weight.onnx": "'fc.weight'",
        ]
        let files = try FileManager.default.contentsOfDirectory(atPath: f).filter { $0.hasPrefix("bad_") && $0.hasSuffix(".onnx") }.sorted()
        #expect(Set(files) == Set(mentions.keys), "every hostile file has its expected message")
        let dir = TestScratch.root.appendingPathComponent("hostile-onnx-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for file in files {
            let model = "\(f)/\(file)", x = "\(f)/mlp_x.npy", y = "\(f)/mlp_y.npy"
            for arguments in [["predict", "--model", model, "--x", x, "--out", dir + "/p.npz"],
                              ["attack", "--model", model, "--x", x, "--y", y, "--eps", "0.1", "--out", dir + "/a.npz"],
                              ["report", "--model", model, "--train-x", x, "--train-y", y, "--test-x", x, "--test-y", y, "--out", dir + "/r"],
                              ["demo", "--model", model, "--out", dir + "/d"]] {
                let r = try CLIRunner.run(arguments)
                #expect(r.status == 2 && r.stderr.contains(file) && r.stderr.contains(mentions[file] ?? "?"), "\(arguments[0]) \(file): \(r.status) \(r.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: dir), "\(file): no output left behind")
        }
    }
}
