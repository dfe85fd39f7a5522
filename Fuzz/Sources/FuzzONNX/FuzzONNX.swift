import FaultlineLinalg
import FaultlineNN
import FaultlineONNX
import Foundation

/// libFuzzer entry point for the ONNX reader: the input is decoded as an `.onnx` file (protobuf, opset,
/// initializers, lowering to a GraphModel). Every outcome is a model or an `ONNXError`: never a trap, a
/// hang or an allocation sized by the input alone. A model that loads and is small (≤ 2¹⁶ stored
/// values per row) runs a forward pass and an input gradient on two rows, which must be finite or
/// propagate the non-finite weights of the file (no crash is the check).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Data(UnsafeRawBufferPointer(start: data, count: size))
    var options = ONNXModel.Options()
    options.maximumTensorBytes = 1 << 24
    guard let model = try? ONNXModel.load(bytes: bytes, name: "fuzz.onnx", options: options) else { return 0 }
    guard model.inputFeatures <= 1 << 16, model.tensorNames.compactMap({ model.shape(of: $0)?.reduce(1, *) }).reduce(0, +) <= 1 << 16 else { return 0 }
    var rng = Philox(seed: 1)
    let x: Matrix<Float> = rng.matrix(rows: 2, columns: model.inputFeatures, .uniform(-1, 1))
    let workspace = model.makeWorkspace(capacity: 2)
    var gradient = [Float](repeating: 0, count: 2 * model.inputFeatures)
    var losses: [Float] = [0, 0]
    let labels = [0, model.outputFeatures - 1]
    x.withUnsafeBufferPointer { px in
        gradient.withUnsafeMutableBufferPointer { pg in
            model.inputGradient(MatrixPointer(px.baseAddress!, rows: 2, columns: model.inputFeatures), labels: labels, targets: nil,
                                loss: .crossEntropy, losses: &losses,
                                into: MutableMatrixPointer(pg.baseAddress!, rows: 2, columns: model.inputFeatures), workspace: workspace, context: .inference)
        }
    }
    return 0
}
