import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation

/// Fine-tuned ONNX graphs: the trained parameters of a `GraphModel` saved beside the ONNX file they
/// apply to, like an adapter over a base model.
///
/// The file is a `.safetensors` with one `NODE.weight` and one `NODE.bias` tensor per trainable node
/// (`GraphModel.namedParameters`: dense weights out × in, convolution weights out × in/groups·kH·kW,
/// a batch-normalisation folded at import trained as part of its convolution) and the metadata
/// `faultline_graph` = the base ONNX file (absolute, or relative to the parameter file's folder),
/// `faultline_graph_nodes` = the number of trainable nodes. Loading imports the base graph with every
/// check of `ONNXModel.load`, then replaces its parameters: a node missing from the file, an extra
/// tensor, a shape that differs or a value that is not finite is an `ONNXError(.badTensor)` naming
/// the file and the node, so a parameter file never runs on a graph it was not trained from.
extension ONNXModel {
    /// The metadata key naming the base ONNX file of a parameter file.
    public static let baseGraphKey = "faultline_graph"

    /// Writes `model`'s trainable parameters to `path` (.safetensors) with `base` (the ONNX file the
    /// model was imported from) recorded as an absolute path. Throws `IOError` when the file cannot be
    /// written (the write is atomic: a temporary file renamed over `path`).
    public static func saveParameters(_ model: GraphModel, base: String, to path: String) throws {
        let tensors = model.parameters.flatMap { p -> [(name: String, tensor: Tensor)] in
            [(p.node + ".weight", Tensor(shape: [p.weight.rows, p.weight.columns], values: p.weight.elements)),
             (p.node + ".bias", Tensor(shape: [p.bias.count], values: p.bias))]
        }
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: [baseGraphKey: URL(fileURLWithPath: base).standardized.path,
                                                                        "faultline_graph_nodes": String(model.parameters.count)]),
                              to: path)
    }

    /// The base ONNX file a parameter file names, or nil when `file` is not a graph parameter file.
    public static func baseGraph(of file: SafeTensors.File, path: String) -> String? {
        guard let base = file.metadata[baseGraphKey], !base.isEmpty else { return nil }
        if base.hasPrefix("/") { return base }
        return URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(base).path
    }

    /// Imports the base graph a parameter file names and gives it the file's parameters. Throws
    /// `IOError` for an unreadable file, `ONNXError` for the base graph's import or parameters that do
    /// not fit it (naming the node).
    public static func load(parameters path: String, options: Options = Options()) throws -> GraphModel {
        let file = try SafeTensors.read(path)
        guard let base = baseGraph(of: file, path: path) else {
            throw ONNXError(.badTensor, file: path, "no '\(baseGraphKey)' metadata: not the parameters of a fine-tuned ONNX graph")
        }
        guard FileManager.default.fileExists(atPath: base) else {
            throw ONNXError(.badTensor, file: path, "the base graph \(base) these parameters were trained from is missing; "
                            + "keep the .onnx file at that path (or edit the '\(baseGraphKey)' metadata)")
        }
        var model = try load(path: base, options: options)
        let byName = Dictionary(file.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        var values: [GraphModel.Parameters] = []
        for p in model.parameters {
            guard let w = byName[p.node + ".weight"], let b = byName[p.node + ".bias"] else {
                throw ONNXError(.badTensor, file: path, node: p.node, "no '\(p.node).weight'/'\(p.node).bias' tensors for this node of \(base)")
            }
            guard w.count == p.weight.count, w.shape == [p.weight.rows, p.weight.columns], b.count == p.bias.count else {
                throw ONNXError(.badTensor, file: path, node: p.node, "tensors of shape \(w.shape) and \(b.shape) do not fit the node's "
                                + "\(p.weight.rows)×\(p.weight.columns) weight and \(p.bias.count) biases in \(base)")
            }
            values.append(GraphModel.Parameters(node: p.node, weight: try Matrix(rows: p.weight.rows, columns: p.weight.columns,
                                                                                 elements: w.values(as: Float.self)),
                                                bias: b.values(as: Float.self)))
        }
        guard file.tensors.count == 2 * values.count else {
            throw ONNXError(.badTensor, file: path, "\(file.tensors.count) tensors for the \(values.count) trainable nodes of \(base) "
                            + "(a weight and a bias each): the file belongs to another graph")
        }
        do {
            try model.setParameters(values)
        } catch let error as GraphError {
            throw ONNXError(.badTensor, file: path, node: error.node, error.detail)
        }
        return model
    }
}
