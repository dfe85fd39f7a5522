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
        abstract: "Run a model (ONNX or state_dict) on inputs: logits, probabilities and named feature taps into an .npz (for calibrate, conformal, shift…).",
        discussion: """
            --model is an .onnx file (torch.onnx.export) or a .safetensors state_dict with --spec (its taps are layer0, \
            layer1, … after batchnorm folding); --x an .npy of N rows (N×features or N×C×H×W, C order), read \
            in blocks of --block-rows from its memory mapping, or any array file Faultline reads. --out FILE.npz gets \
            `logits` and `probabilities` (N×classes, float32) and one `features_<name>` array per --features NAME (characters other than letters, digits, '.', '-' and '_' become '_'; any \
            tensor of the graph, e.g. the input of the last Gemm for Mahalanobis/KNN/ViM; --list-tensors prints them). \
            A Softmax at the end of the graph is dropped, so `logits` are logits. Exit code 2 on bad input or an \
            unsupported model; the message names the file, node and operator. --normalize MEANS:STDS puts (x − mean)/std \
            in front of the graph (the input tap stays raw; `<input>.normalized` is the normalised one).
            """)

    @Option(help: "The model: .onnx, or a .safetensors state_dict (run as a graph; --spec when the file does not record it).") var model: String
    @Option(help: ArgumentHelp("Architecture of a state_dict (default: the file's faultline_spec metadata).", discussion: ModelOptions.specHelp))
    var spec: String?
    @Option(help: "Inputs: .npy (streamed) or another array file; rows × the model's input size.") var x: String?
    @Option(help: "A tensor to save (repeat the option); saved as features_<name>.") var features: [String] = []
    @Option(help: "Output .npz.") var out: String?
    @Option(help: "Normalise inputs per channel before the model: MEAN[,MEAN…]:STD[,STD…] (see attack --help).") var normalize: String?
    @Option(help: "Rows per forward pass.") var batchSize = 256
    @Option(help: "Rows read from the input file per block.") var blockRows = 8192
    @Flag(help: "Print the graph's tensors (names and per-sample shapes) and exit.") var listTensors = false
    @Flag(help: "No progress bar.") var quiet = false

    func validate() throws {
        guard batchSize > 0, blockRows > 0 else { throw ValidationError("--batch-size and --block-rows must be positive") }
        guard listTensors || (x != nil && out != nil) else { throw ValidationError("--x and --out are required (or --list-tensors)") }
        if let normalize { try OptionCheck.atParse { _ = try OptionCheck.normalization(normalize) } }
    }

    func run() throws {
        try Inputs.guarded("predict") {
            var graph: GraphModel
            if model.lowercased().hasSuffix(".onnx") {
                guard spec == nil else { throw InputError("--spec describes a state_dict; --model \(model) is an ONNX graph, which records its architecture") }
                graph = try ONNXModel.load(path: model)
            } else {
                graph = try GraphModel(sequential: Inputs.model(weights: model, spec: spec, option: "--model"))  // layer taps: layer0, layer1, …
            }
            if let normalize {
                do { graph = try graph.normalizingInput(OptionCheck.normalization(normalize)) } catch let error as ModelError {
                    throw InputError("--normalize does not fit --model \(model): \(error.description.replacingOccurrences(of: "shape mismatch: ", with: ""))")
                }
            }
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
            let arrays = prediction.namedArrays
            try NPZ.write(arrays, to: out)
            printError("faultline predict: \(prediction.logits.rows) rows → \(out) (\(arrays.map(\.name).joined(separator: ", ")))")
        }
    }
}
