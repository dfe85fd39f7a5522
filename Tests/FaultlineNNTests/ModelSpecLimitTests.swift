import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing
import _TestSupport

/// A spec is a few bytes of untrusted text: its sizes are checked (overflow, documented limits)
/// before anything is allocated, and a weight file's spec is checked against its tensors first.
@Suite("model spec limits")
struct ModelSpecLimitTests {
    @Test func planCountsParametersWithoutAllocating() throws {
        let plan = try ModelSpec.plan("input:1x8x8,conv2d:1-4-3-1-1,relu,maxpool:2,flatten,linear:64-10")
        #expect(plan.parameters.map(\.name) == ["0.weight", "0.bias", "4.weight", "4.bias"])
        #expect(plan.parameters.map(\.shape) == [[4, 1, 3, 3], [4], [10, 64], [10]])
        #expect(plan.parameterCount == 4 * 9 + 4 + 640 + 10)
        #expect(plan.outputFeatures == 10 && plan.inputFeatures == 64)
        #expect(try ModelSpec.plan("linear:5-3,relu,linear:3-2").inputFeatures == 5)
        let model = try plan.build(seed: 3)
        #expect(model.parameterCount == plan.parameterCount && model.stateShapes == plan.parameters.map(\.shape))
        #expect(model.spec == (try ModelSpec.build("input:1x8x8,conv2d:1-4-3-1-1,relu,maxpool:2,flatten,linear:64-10", seed: 3)).spec)
    }

    @Test(arguments: [
        "linear:9223372036854775807-2",  // Int.max inputs
        "linear:100000000-100000000",  // 10¹⁶ parameters
        "linear:64-100000000,linear:100000000-10",  // over maxParameters in total
        "input:4294967296x4294967296x4,conv2d:4294967296-1-1",  // C·H·W overflows
        "input:1x65536x65536,conv2d:1-1-1",  // 2³² features per sample
        "input:1x8x8,conv2d:1-1-1-1-4611686018427387904",  // padding overflows 2·p
        "linear:64-10,leakyrelu:nan",
        "linear:64-10,leakyrelu:inf",
        "linear:64-10,dropout:nan",
        "linear:64--10",
        "linear:64-10-3",
    ])
    func hostileSpecsThrow(_ spec: String) {
        #expect(throws: ModelError.self) { _ = try ModelSpec.plan(spec) }
        #expect(throws: ModelError.self) { _ = try ModelSpec.build(spec) }
    }

    @Test func weightFileSpecIsCheckedAgainstItsTensorsFirst() throws {
        let dir = TestScratch.root.appendingPathComponent("faultline-spec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A 1 KB file whose metadata asks for 4·10¹⁶ bytes of parameters: refused by the tensor check.
        let path = dir + "/huge.safetensors"
        let tensors: [(name: String, tensor: Tensor)] = [("0.weight", Tensor(shape: [2, 2], values: [Float](repeating: 0, count: 4))),
                                                         ("0.bias", Tensor(shape: [2], values: [Float](repeating: 0, count: 2)))]
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: ["faultline_spec": "linear:100000000-2"]), to: path)
        let start = Date()
        let error = try #require(throws: ModelError.self) { _ = try Sequential.load(weights: path) }
        #expect(error.description.contains("0.weight") && error.description.contains("[2, 100000000]"))
        #expect(Date().timeIntervalSince(start) < 5)
        // The same tensors under their own spec load.
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: ["faultline_spec": "linear:2-2"]), to: path)
        #expect(try Sequential.load(weights: path).spec == "linear:2-2")
    }
}
