import FaultlineIO
import Foundation
import Testing
import _TestSupport

/// `faultline train --model net.onnx`: an imported residual graph fine-tuned with PGD-AT, saved as a
/// parameter file naming the graph, read back by the other commands and by train itself; misuses are
/// errors naming the option and the file.
@Suite("graph fine-tuning")
struct GraphFineTuningTests {
    static let fixtures = PredictCommandTests.fixtures

    @Test func fineTunedGraphsRunEverywhere() throws {
        let dir = TestScratch.root.appendingPathComponent("graph-ft-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = try OnnxJourneyTests.data(in: dir)
        let base = "\(Self.fixtures)/resnet.onnx", tuned = dir + "/tuned.safetensors"
        let train = try CLIRunner.run(["train", "--model", base, "--x", x, "--y", y, "--epochs", "3", "--batch-size", "34", "--adversarial", "pgd",
                                       "--eps", "0.02", "--attack-steps", "3", "--box=-1,2", "--lr", "0.01", "--out", tuned, "--json"])
        #expect(train.status == 0, "\(train.stderr)")
        // One line per epoch with the held-out clean and PGD-10 accuracy.
        #expect(train.stderr.components(separatedBy: "\n").filter { $0.hasPrefix("epoch ") && $0.contains("PGD-10") }.count == 0,
                "--json silences progress")
        let file = try SafeTensors.read(tuned)
        #expect(file.metadata["faultline_graph"] == URL(fileURLWithPath: base).standardized.path)
        #expect(file.tensors.count == 14)  // 7 trainable nodes of the fixture, weight and bias each
        // The tuned graph differs from the base and every command reads it through --model.
        let before = try CLIRunner.run(["predict", "--model", base, "--x", x, "--out", dir + "/base.npz", "--quiet"])
        let after = try CLIRunner.run(["predict", "--model", tuned, "--x", x, "--out", dir + "/tuned.npz", "--quiet"])
        #expect(before.status == 0 && after.status == 0, "\(after.stderr)")
        let l0 = try NPZ.read(dir + "/base.npz").first { $0.name == "logits" }!.tensor.values(as: Float.self)
        let l1 = try NPZ.read(dir + "/tuned.npz").first { $0.name == "logits" }!.tensor.values(as: Float.self)
        #expect(l0.count == l1.count && zip(l0, l1).contains { abs($0 - $1) > 1e-4 })
        let attack = try CLIRunner.run(["attack", "--model", tuned, "--x", x, "--y", y, "--eps", "0.02", "--box=-1,2", "--steps", "5", "--quiet"])
        #expect(attack.status == 0, "\(attack.stderr)")
        // Training goes on from the parameter file, and the new file still names the original graph.
        let again = try CLIRunner.run(["train", "--model", tuned, "--x", x, "--y", y, "--epochs", "1", "--out", dir + "/again.safetensors", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try SafeTensors.read(dir + "/again.safetensors").metadata["faultline_graph"] == file.metadata["faultline_graph"])
    }

    @Test func misusesAreClearErrors() throws {
        let dir = TestScratch.root.appendingPathComponent("graph-ft-bad-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (x, y) = try OnnxJourneyTests.data(in: dir)
        let base = "\(Self.fixtures)/resnet.onnx"
        // --out .onnx would be read back as a graph: refused at parse time.
        let onnxOut = try CLIRunner.run(["train", "--model", base, "--x", x, "--y", y, "--out", dir + "/t.onnx"])
        #expect(onnxOut.status != 0 && onnxOut.stderr.contains("--out") && onnxOut.stderr.contains(".safetensors"), "\(onnxOut.stderr)")
        // A state_dict is not a graph to fine-tune.
        let stateDict = dir + "/mlp.safetensors"
        let made = try CLIRunner.run(["train", "--data", "digits", "--epochs", "1", "--out", stateDict, "--quiet"])
        #expect(made.status == 0)
        let notGraph = try CLIRunner.run(["train", "--model", stateDict, "--x", x, "--y", y, "--out", dir + "/t.safetensors"])
        #expect(notGraph.status == 2 && notGraph.stderr.contains("--model") && notGraph.stderr.contains("--spec"), "\(notGraph.stderr)")
        // A parameter file whose base graph is gone, or whose tensors do not fit it, names the file and the cause.
        let tuned = dir + "/tuned.safetensors"
        let train = try CLIRunner.run(["train", "--model", base, "--x", x, "--y", y, "--epochs", "1", "--out", tuned, "--quiet"])
        #expect(train.status == 0, "\(train.stderr)")
        var file = try SafeTensors.read(tuned)
        file.metadata["faultline_graph"] = dir + "/gone.onnx"
        try SafeTensors.write(file, to: dir + "/orphan.safetensors")
        let orphan = try CLIRunner.run(["attack", "--model", dir + "/orphan.safetensors", "--x", x, "--y", y, "--box=-1,2"])
        #expect(orphan.status == 2 && orphan.stderr.contains("gone.onnx") && orphan.stderr.contains("orphan.safetensors"), "\(orphan.stderr)")
        file = try SafeTensors.read(tuned)
        let k = file.tensors.firstIndex { $0.name.hasSuffix(".weight") }!
        file.tensors[k].tensor = Tensor(shape: [1, 3], values: [Float](repeating: 0, count: 3))
        try SafeTensors.write(file, to: dir + "/misfit.safetensors")
        let misfit = try CLIRunner.run(["predict", "--model", dir + "/misfit.safetensors", "--x", x, "--out", dir + "/m.npz"])
        #expect(misfit.status == 2 && misfit.stderr.contains(file.tensors[k].name.replacingOccurrences(of: ".weight", with: "")), "\(misfit.stderr)")
        file = try SafeTensors.read(tuned)
        file.tensors[k].tensor = Tensor(shape: file.tensors[k].tensor.shape,
                                        values: [Float](repeating: .nan, count: file.tensors[k].tensor.count))
        try SafeTensors.write(file, to: dir + "/nan.safetensors")
        let nan = try CLIRunner.run(["attack", "--model", dir + "/nan.safetensors", "--x", x, "--y", y, "--box=-1,2"])
        #expect(nan.status == 2 && nan.stderr.contains("NaN"), "\(nan.stderr)")
    }
}
