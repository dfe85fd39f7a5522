import Foundation
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import SwiftProtobuf

/// Reads `.onnx` files (as written by `torch.onnx.export`) into a `GraphModel`.
///
/// Supported: the default domain at opsets 13–20; one float input [batch, …] (the first dimension is the
/// batch, any size runs); operators Gemm, MatMul (constant weight), Add/Sub/Mul/Div (tensor∘tensor with
/// broadcasting, tensor∘constant, e.g. input normalisation), Conv (stride, pads, dilation, groups
/// including depthwise; 2-d), BatchNormalization (inference; folded into the preceding Conv/Gemm when
/// that output has no other reader, else a per-channel affine), Relu, LeakyRelu, Sigmoid, Tanh, Erf,
/// Gelu, Softplus, Clip, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Squeeze/Unsqueeze,
/// Transpose when it does not move data, Concat, Identity, Dropout, Softmax/LogSoftmax, Constant, Cast,
/// and Shape/Gather/Unsqueeze/Concat on shapes (evaluated at load with a symbolic batch size).
/// A Softmax producing the graph output is dropped by default (attacks need logits), see `Options`.
///
/// Errors (`ONNXError`, all naming the file; node errors name the node, its op type and the opset):
/// malformed protobuf (truncated, wrong wire types), unsupported operators/attributes/opsets, missing
/// tensors, cycles, shape mismatches, bad initializers (sizes, types, external-data locations) and
/// files over the size limit (checked before reading).
public enum ONNXModel {
    /// How a file is imported, and its size limits.
    public struct Options: Sendable {
        /// Drop a Softmax that produces the graph output, so the model returns logits.
        public var dropOutputSoftmax = true
        /// The largest `.onnx` file read (protobuf itself is limited to 2 GiB).
        public var maximumFileBytes = Int(Int32.max)
        /// The largest tensor (initializer, external data) decoded.
        public var maximumTensorBytes = IOLimits.decompressedBytes
        /// The defaults: output softmax dropped, files up to 2 GiB, tensors up to `IOLimits.decompressedBytes`.
        public init() {}
    }

    /// Reads the model at `path`; external-data files are looked up in its directory.
    public static func load(path: String, options: Options = Options()) throws -> GraphModel {
        do { try FileAccess.checkRegularFile(path) } catch let error as IOError {
            throw ONNXError(.malformed, file: path, error.detail)
        }
        do { try PyTorchPickle.refuse(path) } catch let error as IOError {
            throw ONNXError(.malformed, file: path, error.detail)  // a torch.save file named .onnx: the fix, not a protobuf error
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= options.maximumFileBytes else {
            throw ONNXError(.malformed, file: path, "the file has \(size) bytes, more than the limit \(options.maximumFileBytes)")
        }
        let data = try FileAccess.read(path)
        let directory = (path as NSString).deletingLastPathComponent
        return try load(bytes: data, name: path, directory: directory, options: options)
    }

    /// Reads a model from its bytes. `name` is used in messages; `directory` is where external-data
    /// files are (nil: external data is refused).
    public static func load(bytes: Data, name: String = "onnx", directory: String? = nil, options: Options = Options()) throws -> GraphModel {
        guard bytes.count <= options.maximumFileBytes else {
            throw ONNXError(.malformed, file: name, "\(bytes.count) bytes, more than the limit \(options.maximumFileBytes)")
        }
        let proto: Onnx_ModelProto
        do {
            var decoding = BinaryDecodingOptions()
            decoding.messageDepthLimit = 64
            proto = try Onnx_ModelProto(serializedBytes: bytes, options: decoding)
        } catch {
            throw ONNXError(.malformed, file: name, "not a readable ONNX model (truncated or not protobuf): \(error)")
        }
        var importer = try Importer(proto, file: name, decoder: TensorDecoder(file: name, directory: directory,
                                                                                maximumBytes: options.maximumTensorBytes))
        return try importer.run(options)
    }
}

/// A tensor known while importing: a runtime float tensor (per-sample shape), a float constant or an
/// integer constant (shape arithmetic; nil entries are the batch size).
enum Entry {
    case tensor([Int])
    case constant(shape: [Int], values: [Float])
    case ints(shape: [Int], values: [Int?])
}

struct Importer {
    let file: String
    let graph: Onnx_GraphProto
    let opset: Int
    let decoder: TensorDecoder
    var entries: [String: Entry] = [:]
    /// Outputs of `Greater(x, threshold)` nodes: (x, threshold), for the Softplus/Where pattern.
    var masks: [String: (String, Float)] = [:]
    var nodes: [GraphModel.Node] = []
    /// Number of nodes (and graph outputs) reading each tensor.
    var readers: [String: Int] = [:]
    var inputName = ""
    var inputShape: [Int] = []
    /// The batch dimension as declared (a number when exported with a fixed batch), for Reshape.
    var declaredBatch: Int?

    init(_ model: Onnx_ModelProto, file: String, decoder: TensorDecoder) throws {
        self.file = file
        self.decoder = decoder
        graph = model.graph
        let defaults = model.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard let version = defaults.first?.version else {
            throw ONNXError(.unsupportedOpset, file: file, "the model imports no opset of the default ONNX domain")
        }
        guard (13...20).contains(version) else {
            throw ONNXError(.unsupportedOpset, file: file, "opset \(version) of the default domain; supported are 13–20 "
                            + "(re-export with torch.onnx.export(..., opset_version=17))")
        }
        opset = Int(version)
    }

    func nodeName(_ n: Onnx_NodeProto) -> String { n.name.isEmpty ? (n.output.first ?? "?") : n.name }

    func error(_ kind: ONNXError.Kind, _ n: Onnx_NodeProto, _ detail: String) -> ONNXError {
        ONNXError(kind, file: file, node: nodeName(n), opType: n.opType, detail)
    }

    mutating func run(_ options: ONNXModel.Options) throws -> GraphModel {
        // Initializers (decoded lazily would save nothing: every one is used).
        var initialized = Set<String>()
        for t in graph.initializer {
            let (shape, values) = try decoder.decode(t)
            switch values {
            case .floats(let f): entries[t.name] = .constant(shape: shape, values: f)
            case .ints(let i): entries[t.name] = .ints(shape: shape, values: i)
            }
            initialized.insert(t.name)
        }
        // The single runtime input.
        let inputs = graph.input.filter { !initialized.contains($0.name) }
        guard inputs.count == 1, let input = inputs.first else {
            throw ONNXError(.unsupportedFeature, file: file, "the graph has \(inputs.count) inputs (\(inputs.map(\.name))); one is supported")
        }
        let type = input.type.tensorType
        guard type.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw ONNXError(.unsupportedFeature, file: file, node: input.name, opType: "input", "the input must be float32 (element type \(type.elemType))")
        }
        let dims = type.shape.dim
        guard dims.count >= 2, dims.dropFirst().allSatisfy({ $0.dimValue > 0 && $0.dimValue <= Int64(Int32.max) }) else {
            throw ONNXError(.unsupportedFeature, file: file, node: input.name, opType: "input",
                            "the input needs a shape [batch, sizes…] with fixed sizes after the batch, got \(dims.map { $0.dimParam.isEmpty ? "\($0.dimValue)" : $0.dimParam })")
        }
        inputName = input.name
        inputShape = dims.dropFirst().map { Int($0.dimValue) }
        guard let count = Tensor.elementCount(inputShape), count <= GraphModel.maximumTensorElements else {
            throw ONNXError(.unsupportedFeature, file: file, node: input.name, opType: "input",
                            "the input shape \(inputShape) has more than \(GraphModel.maximumTensorElements) elements per sample")
        }
        if case .dimValue(let v)? = dims[0].value, v > 0 { declaredBatch = Int(v) }
        entries[inputName] = .tensor(inputShape)

        guard let output = graph.output.first?.name else { throw ONNXError(.malformed, file: file, "the graph has no output") }
        for n in graph.node { for i in n.input where !i.isEmpty { readers[i, default: 0] += 1 } }
        for o in graph.output { readers[o.name, default: 0] += 1 }

        for n in try schedule() { try lower(n) }

        var outputName = output
        guard case .tensor? = entries[outputName] else {
            throw ONNXError(.unsupportedFeature, file: file, node: output, opType: "output", "the graph output is not computed from the input")
        }
        if options.dropOutputSoftmax, let last = nodes.last, last.output == outputName, case .softmax(_, false) = last.operation {
            nodes.removeLast()
            outputName = last.inputs[0]
        }
        do {
            return try GraphModel(name: graph.name.isEmpty ? (file as NSString).lastPathComponent : graph.name,
                                  inputName: inputName, inputShape: inputShape, nodes: nodes, outputName: outputName)
        } catch let e as GraphError {
            throw ONNXError(e.kind == .cycle ? .cycle : e.kind == .missingInput ? .missingTensor : .shapeMismatch, file: file, node: e.node, e.detail)
        }
    }

    /// Nodes in a topological order (file order where possible). Throws for cycles and tensors no one
    /// produces, naming the node.
    func schedule() throws -> [Onnx_NodeProto] {
        let nodes = graph.node
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for o in n.output where !o.isEmpty {
                guard producer[o] == nil, entries[o] == nil else { throw error(.malformed, n, "tensor '\(o)' is produced twice") }
                producer[o] = i
            }
        }
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for input in n.input where !input.isEmpty && entries[input] == nil {
                guard let p = producer[input] else {
                    throw error(.missingTensor, n, "reads '\(input)', which is neither the input, an initializer nor a node output")
                }
                pending[i] += 1
                consumers[p].append(i)
            }
        }
        var ready = nodes.indices.filter { pending[$0] == 0 }
        var head = 0
        while head < ready.count {
            for c in consumers[ready[head]] {
                pending[c] -= 1
                if pending[c] == 0 { ready.append(c) }
            }
            head += 1
        }
        if ready.count < nodes.count {
            let n = nodes[nodes.indices.first { pending[$0] > 0 }!]
            throw error(.cycle, n, "is on a cycle: one of its inputs depends on its own output")
        }
        return ready.map { nodes[$0] }
    }
}
