import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing
import _TestSupport

/// `Sequential.load(weights: SafeTensors.File, …)` is the code the path-based loaders run after
/// reading the file: the same model (parameters, spec, logits) from the committed fixtures' bytes, and
/// for hostile bytes the same typed error, naming the source it is given.
@Suite("model weights from bytes")
struct WeightsFromBytesTests {
    static let root = PyTorchAgreementTests.root

    static func temporaryDirectory() throws -> String {
        let dir = TestScratch.root.appendingPathComponent("faultline-bytes-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func expectSame(_ a: Sequential, _ b: Sequential, rows: Int = 3) throws {
        #expect(a.spec == b.spec)
        #expect(a.namedParameters.map(\.name) == b.namedParameters.map(\.name))
        #expect(a.namedParameters.map(\.value.elements) == b.namedParameters.map(\.value.elements))
        var rng = Philox(seed: 7)
        let x = rng.matrix(rows: rows, columns: a.inputFeatures, as: Float.self)
        #expect(try a.logits(x).elements == b.logits(x).elements)
    }

    /// Both routes, given the same name: equal models, or errors of the same type and text.
    static func expectAgree(bytes: [UInt8], path: String, spec: String?) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fromFile = Result { try spec.map { try Sequential.load(weights: path, spec: $0) } ?? Sequential.load(weights: path) }
        let fromBytes = Result {
            let file = try SafeTensors.decode(bytes, name: path)
            return try spec.map { try Sequential.load(weights: file, spec: $0, name: path) } ?? Sequential.load(weights: file, name: path)
        }
        switch (fromFile, fromBytes) {
        case (.success(let a), .success(let b)): try expectSame(a, b)
        case (.failure(let a), .failure(let b)):
            #expect((a is IOError || a is ModelError) && type(of: a) == type(of: b) && "\(a)" == "\(b)")
        default: Issue.record("\(path): the file gives \(fromFile), its bytes \(fromBytes)")
        }
    }

    @Test(arguments: PyTorchAgreementTests.models)
    func fixtureBytesLoadAsTheFile(_ name: String, _ spec: String) throws {
        let path = Self.root + "/\(name).safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let fromFile = try Sequential.load(weights: path, spec: spec)
        for batch in [1, 2, 5] {
            try Self.expectSame(fromFile, try Sequential.load(weights: SafeTensors.decode(data, name: "upload"), spec: spec, name: "upload"), rows: batch)
        }
        // Saved with its spec in the metadata, the spec-less loaders agree too.
        let dir = try Self.temporaryDirectory()
        try fromFile.save(weights: dir + "/m.safetensors")
        let saved = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/m.safetensors")))
        try Self.expectSame(try Sequential.load(weights: dir + "/m.safetensors"), try Sequential.load(weights: SafeTensors.decode(saved)))
    }

    @Test(arguments: PyTorchAgreementTests.models)
    func hostileBytesGiveTheFilesTypedError(_ name: String, _ spec: String) throws {
        let dir = try Self.temporaryDirectory()
        var model = try Sequential.load(weights: Self.root + "/\(name).safetensors", spec: spec)
        try model.save(weights: dir + "/good.safetensors")
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/good.safetensors")))
        // Every truncation (header length, header, data), with and without the spec given.
        for length in Set(Array(0..<min(good.count, 80)) + Array(stride(from: 80, to: good.count, by: 97)) + [good.count - 1]) {
            let cut = Array(good.prefix(length))
            #expect(throws: IOError.self) { try SafeTensors.decode(cut, name: "cut") }
            try Self.expectAgree(bytes: cut, path: dir + "/cut.safetensors", spec: nil)
            try Self.expectAgree(bytes: cut, path: dir + "/cut.safetensors", spec: spec)
        }
        // Decodable files that are not this model: hostile specs, NaN weights, integer weights, extra tensors.
        let file = try SafeTensors.decode(good, name: "good")
        func variant(_ change: (inout SafeTensors.File) -> Void) throws -> [UInt8] {
            var f = file
            change(&f)
            return try SafeTensors.encode(f)
        }
        var poisoned = model.namedParameters.map(\.value)
        poisoned[0][0, 0] = .nan
        model.setParameters(poisoned)
        try model.save(weights: dir + "/nan.safetensors")
        let variants = [
            try variant { $0.metadata["faultline_spec"] = "linear:100000000-100000000" },
            try variant { $0.metadata["faultline_spec"] = "linear:9223372036854775807-2" },
            try variant { $0.metadata["faultline_spec"] = nil },
            try variant { $0.tensors[0].tensor = Tensor(shape: $0.tensors[0].tensor.shape, dtype: .int32, bytes: $0.tensors[0].tensor.bytes) },
            try variant { $0.tensors.append(("extra", Tensor(shape: [1], values: [Float(1)]))) },
            // A missing weight (a missing bias is PyTorch's bias=False: zeros).
            try variant { f in f.tensors.remove(at: f.tensors.firstIndex { $0.name.hasSuffix(".weight") }!) },
            try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/nan.safetensors"))),
        ]
        for (k, bytes) in variants.enumerated() {
            try Self.expectAgree(bytes: bytes, path: dir + "/v\(k).safetensors", spec: nil)
            let error = try #require(throws: ModelError.self, "variant \(k)") {
                try Sequential.load(weights: SafeTensors.decode(bytes), name: "variant-\(k)")
            }
            // Every error names the source; a spec refused on its own (sizes, syntax) is a fault of the
            // file's metadata and says so, quoting the spec.
            #expect(error.description.contains("variant-\(k)"), "\(error)")
            if k < 2 {
                guard case .weights(let message) = error else { Issue.record("variant \(k): \(error)"); continue }
                #expect(message.contains("faultline_spec 'linear:"), "\(message)")
            }
        }
    }
}
