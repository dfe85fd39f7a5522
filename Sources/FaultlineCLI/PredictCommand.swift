import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineInputs
import FaultlineNN
import FaultlineONNX
import FaultlineReport

/// `faultline predict`: logits, probabilities and feature taps of an ONNX model for an input file.
struct PredictCommand: ParsableCommand, DistributedCommand {
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
            in front of the graph (the input tap stays raw; `<input>.normalized` is the normalised one). \
            Under mpirun each rank reads and runs its own rows; rank 0 writes --out (docs/SCALING.md), or with \
            --per-rank each rank writes its own rows to OUT.rankR-of-K.npz, joined later by `faultline data concat`.
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
    @Flag(help: "Each rank writes its rows to OUT.rankR-of-K.npz instead of gathering them on rank 0.") var perRank = false
    @Flag(help: "No progress bar.") var quiet = false

    func validate() throws {
        guard batchSize > 0, blockRows > 0 else { throw ValidationError("--batch-size and --block-rows must be positive") }
        guard listTensors || (x != nil && out != nil) else { throw ValidationError("--x and --out are required (or --list-tensors)") }
        if let normalize { try OptionCheck.atParse { _ = try OptionCheck.normalization(normalize) } }
    }

    func run() throws {
        try Inputs.guarded("predict") {
            let world = Job.world
            let graph = try world.agree { try loadGraph() }
            if listTensors {
                if !Job.quiet { for name in graph.tensorNames { print("\(name)\t\(graph.shape(of: name)!)") } }
                return
            }
            guard let x, let out else { return }
            guard world.size > 1 || perRank else { return try predictOneProcess(graph, x: x, out: out) }
            // Several ranks: rank r runs rows RowSplit.even(N) read from its own part of the file, rank 0 gathers and writes.
            let (prediction, rows, total) = try world.agree { () -> (GraphModel.Prediction, Range<Int>, Int) in
                if x.lowercased().hasSuffix(".npy") {
                    let total = try Inputs.naming("--x") { try NPY.rowCount(x) }
                    let blocks = RowRangeBlocks(path: x, rows: Job.evenRows(total), blockRows: blockRows)
                    let bar = ProgressBar("predict (rank 0 of \(world.size))", total: blocks.rows.count, quiet: quiet)
                    let p = try graph.predict(blocks, rows: blocks.rows.count, taps: features, batchSize: batchSize) { bar.update($0) }
                    if let error = blocks.error.value { throw error }
                    return (p, blocks.rows, total)
                }
                let matrix = try Inputs.features(x, option: "--x")
                let rows = Job.evenRows(matrix.rows), shard = matrix.gatherRows(Array(rows))
                return (try graph.predict(CollectionOfOne(shard), rows: shard.rows, taps: features, batchSize: batchSize), rows, matrix.rows)
            }
            if perRank {  // every rank writes its own part; nothing is gathered
                let part = RowParts.partPath(out, rank: world.rank, size: world.size)
                try world.agree { try Inputs.naming("--out") { try RowParts.write(prediction.namedArrays, rows: rows, total: total, to: part) } }
                if !Job.quiet {
                    printError("faultline predict: \(total) rows from \(world.size) ranks → \(RowParts.partPath(out, rank: 0, size: world.size)) … "
                               + "\(RowParts.partPath(out, rank: world.size - 1, size: world.size)); join with faultline data concat --out \(out) PARTS")
                }
                return
            }
            var gathered = prediction
            let logits = try world.gatherRows(prediction.logits), probabilities = try world.gatherRows(prediction.probabilities)
            let taps = try prediction.taps.map { try world.gatherRows($0.values) }
            try world.agree {
                guard let logits, let probabilities else { return }  // ranks other than 0 write nothing
                (gathered.logits, gathered.probabilities) = (logits, probabilities)
                for i in gathered.taps.indices { gathered.taps[i].values = taps[i]! }
                let arrays = gathered.namedArrays
                try NPZ.write(arrays, to: out)
                printError("faultline predict: \(logits.rows) rows from \(world.size) ranks → \(out) (\(arrays.map(\.name).joined(separator: ", ")))")
            }
        }
    }

    /// The model of --model (and --spec, --normalize).
    func loadGraph() throws -> GraphModel {
        var graph: GraphModel
        if model.lowercased().hasSuffix(".onnx") {
            guard spec == nil else { throw InputError("--spec describes a state_dict; --model \(model) is an ONNX graph, which records its architecture") }
            graph = try ONNXModel.load(path: model)
        } else if spec == nil, Inputs.isGraphParameters(model) {  // a graph fine-tuned by `faultline train --model`
            graph = try ONNXModel.load(parameters: model)
        } else {
            graph = try GraphModel(sequential: Inputs.model(weights: model, spec: spec, option: "--model"))  // layer taps: layer0, layer1, …
        }
        if let normalize {
            do { graph = try graph.normalizingInput(OptionCheck.normalization(normalize)) } catch let error as ModelError {
                throw InputError("--normalize does not fit --model \(model): \(error.description.replacingOccurrences(of: "shape mismatch: ", with: ""))")
            }
        }
        return graph
    }

    /// One process (not launched by mpirun): the whole input, streamed in blocks.
    func predictOneProcess(_ graph: GraphModel, x: String, out: String) throws {
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

/// Rows `rows` of a .npy file in blocks of `blockRows`, each read from the file's mapping (`NPY.readRows`):
/// one rank's part of the input. A read error ends the sequence and is kept in `error`.
final class RowRangeBlocks: Sequence, @unchecked Sendable {
    let path: String, rows: Range<Int>, blockRows: Int
    let error = ErrorBox()
    init(path: String, rows: Range<Int>, blockRows: Int) { (self.path, self.rows, self.blockRows) = (path, rows, blockRows) }

    final class ErrorBox: @unchecked Sendable { var value: Error? }

    func makeIterator() -> AnyIterator<Matrix<Float>> {
        var next = rows.lowerBound
        return AnyIterator { [self] in
            guard next < rows.upperBound, error.value == nil else { return nil }
            let range = next..<Swift.min(next + blockRows, rows.upperBound)
            next = range.upperBound
            do { return try Inputs.naming("--x") { try NPY.readRows(path, rows: range, as: Float.self) } } catch {
                self.error.value = error
                return nil
            }
        }
    }
}
