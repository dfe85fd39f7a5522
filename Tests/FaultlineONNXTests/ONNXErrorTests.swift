import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import Foundation
import SwiftProtobuf
import Testing

/// Malformed and unsupported ONNX files give typed errors naming the node; initializers of every
/// supported element type and storage decode to the same Float values.
@Suite("ONNX errors and tensors")
struct ONNXErrorTests {
    static let root = ONNXFixtureTests.root

    func loadError(_ file: String) -> ONNXError? {
        do {
            _ = try ONNXModel.load(path: "\(Self.root)/\(file)")
            return nil
        } catch let e as ONNXError { return e } catch { return nil }
    }

    @Test func fixtureErrorsNameTheNode() throws {
        let unsupported = try #require(loadError("unsupported_op.onnx"))
        #expect(unsupported.kind == .unsupportedOperator && unsupported.node == "the_hardmax" && unsupported.opType == "Hardmax")
        #expect(unsupported.description.contains("opset 17") && unsupported.description.contains("the_hardmax"))
        let missing = try #require(loadError("missing_initializer.onnx"))
        #expect(missing.kind == .missingTensor && missing.node == "/classifier_head/Gemm", "\(missing)")
        #expect(missing.description.contains("classifier_head.weight"))
        let cycle = try #require(loadError("cycle.onnx"))
        #expect(cycle.kind == .cycle && cycle.node == "cycle_add", "\(cycle)")
        let truncated = try #require(loadError("truncated.onnx"))
        #expect(truncated.kind == .malformed, "\(truncated)")
        let absent = try #require(loadError("no_such_file.onnx"))
        #expect(absent.kind == .malformed && absent.description.contains("no such file"))
    }

    /// Every prefix of a valid file and random byte flips: an error or a model, never a crash.
    @Test func truncationsAndCorruptionsNeverCrash() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.root)/depthwise.onnx")))
        var errors = 0
        for cut in stride(from: 0, to: bytes.count, by: 97) {
            do { _ = try ONNXModel.load(bytes: Data(bytes[..<cut])) } catch is ONNXError { errors += 1 }
        }
        #expect(errors > 0)
        var rng = Philox(seed: 14)
        for _ in 0..<200 {
            var mutated = bytes
            for _ in 0..<4 { mutated[Int(rng.next()) % bytes.count] = UInt8(truncatingIfNeeded: rng.next()) }
            do { _ = try ONNXModel.load(bytes: Data(mutated)) } catch is ONNXError {}
        }
    }

    // MARK: hand-built models

    static func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.floatData = values
        return t
    }

    static func model(_ nodes: [Onnx_NodeProto], initializers: [Onnx_TensorProto], input: [Int64] = [2, 4], elemType: Int32 = 1, opset: Int64 = 17) -> Data {
        var m = Onnx_ModelProto()
        m.irVersion = 8
        var op = Onnx_OperatorSetIdProto()
        op.version = opset
        m.opsetImport = [op]
        var g = Onnx_GraphProto()
        g.name = "handmade"
        var x = Onnx_ValueInfoProto()
        x.name = "input"
        var type = Onnx_TypeProto()
        var tt = Onnx_TypeProto.Tensor()
        tt.elemType = elemType
        var shape = Onnx_TensorShapeProto()
        shape.dim = input.map { var d = Onnx_TensorShapeProto.Dimension(); d.dimValue = $0; return d }
        tt.shape = shape
        type.tensorType = tt
        x.type = type
        g.input = [x]
        var y = Onnx_ValueInfoProto()
        y.name = "logits"
        g.output = [y]
        g.node = nodes
        g.initializer = initializers
        m.graph = g
        return try! m.serializedBytes()
    }

    static func node(_ op: String, _ inputs: [String], _ output: String, name: String, attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = [output]
        n.name = name
        n.attribute = attributes
        return n
    }

    static func intAttribute(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    @Test func shapeMismatchNamesTheNode() throws {
        let gemm = Self.node("Gemm", ["input", "w", "b"], "logits", name: "too_wide", attributes: [Self.intAttribute("transB", 1)])
        let data = Self.model([gemm], initializers: [Self.tensor("w", [3, 5], .init(repeating: 0.5, count: 15)), Self.tensor("b", [3], [0, 1, 2])])
        let e = try #require(throws: ONNXError.self) { try ONNXModel.load(bytes: data) }
        #expect(e.kind == .shapeMismatch && e.node == "too_wide" && e.opType == "Gemm", "\(e)")
        // The same Gemm with a fitting weight runs: y = x·Wᵀ + b.
        let ok = Self.model([gemm], initializers: [Self.tensor("w", [3, 4], .init(repeating: 0.5, count: 12)), Self.tensor("b", [3], [0, 1, 2])])
        let model = try ONNXModel.load(bytes: ok)
        #expect(try model.logits(Matrix(rows: 1, columns: 4, elements: [1, 2, 3, 4])).elements == [5, 6, 7])
    }

    @Test func wrongTypesAndOpsets() throws {
        let relu = Self.node("Relu", ["input"], "logits", name: "r")
        let intInput = try #require(throws: ONNXError.self) { try ONNXModel.load(bytes: Self.model([relu], initializers: [], elemType: 7)) }
        #expect(intInput.kind == .unsupportedFeature && intInput.node == "input")
        for opset: Int64 in [12, 21] {
            let e = try #require(throws: ONNXError.self) { try ONNXModel.load(bytes: Self.model([relu], initializers: [], opset: opset)) }
            #expect(e.kind == .unsupportedOpset && e.description.contains("\(opset)"))
        }
        for opset: Int64 in [13, 17, 20] { #expect(throws: Never.self) { try ONNXModel.load(bytes: Self.model([relu], initializers: [], opset: opset)) } }
        // A weight of a type that is not a number.
        var w = Self.tensor("w", [4, 4], [])
        w.dataType = Int32(Onnx_TensorProto.DataType.string.rawValue)
        let gemm = Self.node("Gemm", ["input", "w"], "logits", name: "g")
        let e = try #require(throws: ONNXError.self) { try ONNXModel.load(bytes: Self.model([gemm], initializers: [w])) }
        #expect(e.kind == .badTensor && e.node == "w")
        // raw_data of the wrong length, a typed field of the wrong count.
        var raw = Self.tensor("w", [4, 4], [])
        raw.rawData = Data(count: 60)
        #expect(throws: ONNXError.self) { try ONNXModel.load(bytes: Self.model([gemm], initializers: [raw])) }
        #expect(throws: ONNXError.self) { try ONNXModel.load(bytes: Self.model([gemm], initializers: [Self.tensor("w", [4, 4], [1, 2])])) }
        // External data without a model directory, and escaping it.
        var ext = Self.tensor("w", [4, 4], [])
        ext.dataLocation = .external
        var location = Onnx_StringStringEntryProto()
        location.key = "location"
        location.value = "../secret.bin"
        ext.externalData = [location]
        let escape = try #require(throws: ONNXError.self) { try ONNXModel.load(bytes: Self.model([gemm], initializers: [ext]), directory: "/tmp") }
        #expect(escape.kind == .badTensor && escape.description.contains("relative path"))
    }

    /// float32/float16/bfloat16/float64 in raw_data and in the typed fields decode to the same values.
    @Test func initializerElementTypes() throws {
        let values: [Float] = [0, 1, -2.5, 0.125, 1024, -0.0009765625]  // exact in every type
        let decoder = TensorDecoder(file: "t", directory: nil, maximumBytes: 1 << 20)
        func check(_ t: Onnx_TensorProto) throws {
            guard case .floats(let f) = try decoder.decode(t).values else { Issue.record("not floats"); return }
            #expect(f == values, "\(t.dataType)")
        }
        for dtype in [DType.float32, .float16, .bfloat16, .float64] {
            var t = Onnx_TensorProto()
            t.dims = [2, 3]
            t.dataType = Int32(["float32": 1, "float16": 10, "bfloat16": 16, "float64": 11][dtype.rawValue]!)
            let bytes: [UInt8]
            switch dtype {
            case .float16: bytes = values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
            case .bfloat16: bytes = values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) }
            case .float64: bytes = values.flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) }
            default: bytes = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
            }
            t.rawData = Data(bytes)
            try check(t)
            var typed = t
            typed.clearRawData()
            switch dtype {
            case .float32: typed.floatData = values
            case .float64: typed.doubleData = values.map { Double($0) }
            case .float16: typed.int32Data = values.map { Int32(Float16($0).bitPattern) }
            default: typed.int32Data = values.map { Int32($0.bitPattern >> 16) }
            }
            try check(typed)
        }
        // Sizes are checked before allocating: a huge declared shape is refused.
        var huge = Onnx_TensorProto()
        huge.dims = [1 << 30, 1 << 30]
        huge.dataType = 1
        #expect(throws: ONNXError.self) { try decoder.decode(huge) }
    }

    /// Integer initializers in raw_data decode exactly, through no Double: INT64_MAX (what exporters
    /// write for an open Slice end) used to round past Int.max and trap. A Reshape to such a shape is an
    /// ONNXError naming the node, never a trap.
    @Test func integerInitializersDecodeExactly() throws {
        let decoder = TensorDecoder(file: "t", directory: nil, maximumBytes: 1 << 20)
        func raw<T: FixedWidthInteger>(_ values: [T], type: Int32) -> Onnx_TensorProto {
            var t = Onnx_TensorProto()
            t.dims = [Int64(values.count)]
            t.dataType = type
            t.rawData = Data(values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
            return t
        }
        let cases: [(Onnx_TensorProto, [Int])] = [
            (raw([Int64.max, Int64.min, -1, 7, 1 << 53 + 1], type: 7), [Int.max, Int.min, -1, 7, 1 << 53 + 1]),
            (raw([Int32.max, Int32.min, -3], type: 6), [Int(Int32.max), Int(Int32.min), -3]),
            (raw([Int8(-128), 127, -1], type: 3), [-128, 127, -1]),
            (raw([UInt8(255), 0], type: 2), [255, 0]),
        ]
        for (t, expected) in cases {
            guard case .ints(let v) = try decoder.decode(t).values else { Issue.record("not integers: \(t.dataType)"); continue }
            #expect(v == expected, "data type \(t.dataType)")
        }
        var shape = raw([Int64.max, 4], type: 7)
        shape.name = "shape"
        let bytes = Self.model([Self.node("Reshape", ["input", "shape"], "logits", name: "huge_reshape")], initializers: [shape])
        #expect(throws: ONNXError.self) { try ONNXModel.load(bytes: bytes) }
    }

    /// GraphModel itself refuses cycles, missing tensors and shape mismatches, naming the node.
    @Test func graphErrors() throws {
        let w = Matrix<Float>(rows: 2, columns: 3, repeating: 1)
        let dense = GraphOperation.dense(weight: w, bias: [0, 0])
        #expect(throws: GraphError(.shapeMismatch, node: "d", "dense: weight is 2×3 and bias has 2 but the input [4] has 4 features")) {
            try GraphModel(inputName: "x", inputShape: [4], nodes: [.init(name: "d", operation: dense, inputs: ["x"], output: "y")], outputName: "y")
        }
        #expect(throws: GraphError.self) {
            try GraphModel(inputName: "x", inputShape: [3], nodes: [.init(name: "a", operation: .binary(.add), inputs: ["x", "b"], output: "a"),
                                                                    .init(name: "b", operation: .unary(.relu), inputs: ["a"], output: "b")], outputName: "b")
        }
        do {
            _ = try GraphModel(inputName: "x", inputShape: [3], nodes: [.init(name: "a", operation: .unary(.relu), inputs: ["q"], output: "y")], outputName: "y")
            Issue.record("no error")
        } catch let e as GraphError { #expect(e.kind == .missingInput && e.node == "a") }
    }
}
