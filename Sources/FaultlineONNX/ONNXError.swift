import FaultlineNN
import Foundation

/// Errors importing an ONNX file. Every error names the file and, where there is one, the node (its
/// name, op type and the opset in force), so the message alone tells a user what to change.
public struct ONNXError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// What went wrong.
    public enum Kind: String, Sendable {
        /// Not a readable protobuf ModelProto (truncated, wrong wire types, not ONNX at all).
        case malformed
        /// An operator (op type in a domain at an opset) this importer does not run.
        case unsupportedOperator
        /// The model imports an opset outside 13–20 of the default domain.
        case unsupportedOpset
        /// An attribute or input the importer cannot use (e.g. a non-constant weight).
        case unsupportedFeature
        /// A tensor a node reads is neither an input, an initializer nor a node output.
        case missingTensor
        /// Shapes that do not fit (a weight against its input, a broadcast, a reshape).
        case shapeMismatch
        /// The nodes form a cycle.
        case cycle
        /// An initializer or external-data file is bad (size, type, location, limits).
        case badTensor
    }

    /// What went wrong.
    public var kind: Kind
    /// The file (or input name).
    public var file: String
    /// The node's name (or its output's name when unnamed), nil for file-level errors.
    public var node: String?
    /// The node's op type, when known.
    public var opType: String?
    /// What is wrong and what was expected.
    public var detail: String

    /// An error about `file` (and `node` of type `opType`, when there is one).
    public init(_ kind: Kind, file: String, node: String? = nil, opType: String? = nil, _ detail: String) {
        self.kind = kind
        self.file = file
        self.node = node
        self.opType = opType
        self.detail = detail
    }

    public var description: String {
        var where_ = file
        if let node { where_ += ": node '\(node)'" + (opType.map { " (\($0))" } ?? "") }
        return "\(where_): \(detail)"
    }

    /// The description, so command-line tools that print `LocalizedError`s show the whole message.
    public var errorDescription: String? { description }
}
