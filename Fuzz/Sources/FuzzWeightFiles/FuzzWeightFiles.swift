import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation

/// libFuzzer entry point past the decoders: the input is written as a `.safetensors` file and loaded
/// the way the CLI loads user files — as a model (spec from the metadata, checked against the tensors
/// before anything is built), as a detector file, and, for every tensor, converted to a matrix and to
/// labels. A model or detector that loads must then run on a small batch. Every outcome is a value
/// or a typed Faultline error: never a trap, a hang or an allocation sized by the input alone.
let path = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-weights-\(getpid()).safetensors").path

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Data(UnsafeRawBufferPointer(start: data, count: size))
    guard (try? bytes.write(to: URL(fileURLWithPath: path))) != nil else { return 0 }
    expectTyped {
        let model = try Sequential.load(weights: path)
        if model.inputFeatures <= 1 << 16 && model.namedParameters.reduce(0, { $0 + $1.1.count }) <= 1 << 20 {
            _ = try model.logits(Matrix(rows: 2, columns: model.inputFeatures))
        }
    }
    expectTyped {
        let detector = try DetectorFile.load(path)
        var dimension = 0
        switch detector {
        case .mahalanobis(let d): dimension = d.dimension
        case .perClassMahalanobis(let d): dimension = d.dimension
        case .relativeMahalanobis(let d): dimension = d.classes.dimension
        case .knn(let d): dimension = d.dimension
        case .vim(let d): dimension = d.weight.columns
        }
        if dimension <= 1 << 16 { _ = try detector.score(Matrix(rows: 3, columns: dimension)) }
    }
    expectTyped {
        for (_, tensor) in try SafeTensors.read(path).tensors {
            _ = try tensor.matrix(Float.self)
            _ = tensor.values(as: Double.self).map { Int(exactly: $0) }
        }
    }
    return 0
}

/// Runs `body`; a Faultline error is an expected outcome, anything else stops the fuzzer.
func expectTyped(_ body: () throws -> Void) {
    do {
        try body()
    } catch is IOError {} catch is ModelError {} catch is ShiftError {} catch is LinalgError {} catch {
        fatalError("unexpected error type: \(type(of: error)): \(error)")
    }
}
