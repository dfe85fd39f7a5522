import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineNN
import FaultlineONNX
import FaultlineReport

/// `faultline predict`: logits, probabilities and feature taps of an ONNX model for an input file.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run an ONNX model on inputs: logits, probabilities and named feature taps into an .npz (for calibrate, conformal, shift…).",
        discussion: """
            --model is an .onnx file (torch.onnx.export); --x an .npy of N rows (N×features or N×C×H×W, C order), read \
            in blocks of --block-rows from its memory mapping, or any array file Faultline reads. --out FILE.npz gets \
            `logits` and `probabilities` (N×classes, float32) and one `features_<name>` array per --features NAME (characters other than letters, digits, '.', '-' and '_' become '_'; any \
            tensor of the graph, e.g. the input of the last Gemm for Mahalanobis/KNN/ViM; --list-tensors prints them). \
            A Softmax at the end of the graph is dropped, so `logits` are logits. Exit code 2 on bad input or an \
            unsupported model; the message names the file, node and operator.
            """)

    @Option(help: "The model (.onnx).") var model: String
    @Option(help: "Inputs: .npy (streamed) or another array file; rows × the model's input size.") var x: String?
    @Option(help: "A tensor to save (repeat the option); saved as features_<name>.") var features: [String] = []
    @Option(help: "Output .npz.") var out: String?
    @Option(help: "Rows per forward pass.") var batchSize = 256
    @Option(help: "Rows read from the input file per block.") var blockRows = 8192
    @Flag(help: "Print the graph's tensors (names and per-sample shapes) and exit.") var listTensors = false
    @Flag(help: "No progress bar.") var quiet = false

    func validate() throws {
        guard batchSize > 0, blockRows > 0 else { throw ValidationError("--batch-size and --block-rows must be positive") }
        guard listTensors || (x != nil && out != nil) else { throw ValidationError("--x and --out are required (or --list-tensors)") }
    }

    func run() throws {
        try Inputs.guarded("predict") {
            let graph = try ONNXModel.load(path: model)
            if listTensors {
                for name in graph.tensorNames { print("\(name)\t\(graph.shape(of: name)!)") }
                return
            }
            guard let x, let out else { return }
            let prediction: GraphModel.Prediction
            if x.lowercased().hasSuffix(".npy") {
                let blocks = try NPY.rowBlocks(x, blockRows: blockRows, as: Float.self)
                let bar = ProgressBar("predict", total: blocks.shape.rows, quiet: quiet)
                prediction = try graph.predict(blocks, rows: blocks.shape.rows, taps: features, batchSize: batchSize) { bar.update($0) }
            } else {
                let matrix = try Inputs.features(x, option: "--x")
                prediction = try graph.predict(CollectionOfOne(matrix), rows: matrix.rows, taps: features, batchSize: batchSize)
            }
            var used = Set<String>()
            let taps = prediction.taps.map { tap -> (String, Tensor) in
                // .npz member names cannot hold '/': other characters become '_' (a repeat gets a number).
                let safe = String(tap.name.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
                var key = "features_" + safe.drop { $0 == "_" }
                while !used.insert(key).inserted { key += "_" }
                return (key, Tensor(tap.values))
            }
            try NPZ.write([("logits", Tensor(prediction.logits)), ("probabilities", Tensor(prediction.probabilities))] + taps, to: out)
            printError("faultline predict: \(prediction.logits.rows) rows → \(out) (logits, probabilities\(taps.map { ", " + $0.0 }.joined()))")
        }
    }
}
