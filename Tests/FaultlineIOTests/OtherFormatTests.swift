import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing

@Suite(".safetensors, IDX, CSV, bundled digits")
struct OtherFormatTests {
    @Test func readsSafetensorsFromTheReferenceWriter() throws {
        let file = try SafeTensors.read(Fixtures.path("model.safetensors"))
        let expected = try #require(Fixtures.expected["model.safetensors"])
        #expect(file.metadata == ["format": "pt", "note": "faultline fixture"])
        #expect(Set(file.tensors.map(\.name)) == Set(expected.keys))
        for (name, tensor) in file.tensors {
            let e = try #require(expected[name])
            #expect(tensor.shape == e.shape && tensor.dtype.rawValue == e.dtype && tensor.bytes == e.bytes, "\(name)")
        }
    }

    @Test func bfloat16ConvertsExactly() throws {
        let file = try SafeTensors.read(Fixtures.path("bf16.safetensors"))
        let w = try #require(file["w"])
        let e = try #require(Fixtures.expected["bf16.safetensors"]?["w"])
        #expect(w.dtype == .bfloat16 && w.shape == [2, 3] && w.bytes == e.bytes)
        #expect(w.values(as: Float.self).map(\.bitPattern) == e.float32_bits)
    }

    /// A state_dict saved by PyTorch (bf16, f16, f32, int64): bytes as torch wrote them, and the float
    /// conversion equal to torch's `.float()` bit for bit.
    @Test func readsAPyTorchCheckpoint() throws {
        let file = try SafeTensors.read(Fixtures.path("torch.safetensors"))
        let expected = try #require(Fixtures.expected["torch.safetensors"])
        #expect(Set(file.tensors.map(\.name)) == Set(expected.keys))
        for (name, tensor) in file.tensors {
            let e = try #require(expected[name])
            #expect(tensor.shape == e.shape && tensor.dtype.rawValue == e.dtype && tensor.bytes == e.bytes, "\(name)")
            if let bits = e.float32_bits { #expect(tensor.values(as: Float.self).map(\.bitPattern) == bits, "\(name)") }
        }
        #expect(file.metadata["format"] == "pt")
    }

    @Test func safetensorsRoundTrip() throws {
        let file = try SafeTensors.read(Fixtures.path("model.safetensors"))
        let out = Fixtures.temporaryPath("m.safetensors")
        try SafeTensors.write(file, to: out)
        #expect(try SafeTensors.read(out) == file)
        let raw = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } % 8 == 0)
    }

    @Test(arguments: ["images.idx3-ubyte", "images.idx3-ubyte.gz", "labels.idx1-ubyte.gz", "floats.idx"])
    func readsIdx(name: String) throws {
        let t = try IDX.read(Fixtures.path(name))
        let e = try #require(Fixtures.expected[name]?["array"])
        #expect(t.shape == e.shape && t.dtype.rawValue == e.dtype && t.bytes == e.bytes)
    }

    @Test func readsCsvWithHeaderAndLabelColumn() throws {
        let byName = try CSV.read(Fixtures.path("table.csv"), options: .init(labelColumn: .name("label")))
        let byIndex = try CSV.read(Fixtures.path("table.csv"), options: .init(labelColumn: .index(2)))
        let e = try #require(Fixtures.expected["table.csv"])
        let features = e["features"]!.bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        let labels = e["labels"]!.bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }.map { Int($0) }
        for t in [byName, byIndex] {
            #expect(t.features.rows == 6 && t.features.columns == 3)
            #expect(t.features.elements == features)
            #expect(t.labels == labels)
            #expect(t.columnNames == ["a", "b", "c"])
        }
        let semicolons = Data("x;y\n1;\"2.5\"\r\n3;4\n".utf8)
        let t = try semicolons.withUnsafeBytes { try CSV.decode($0, name: "s", options: .init(delimiter: ";")) }
        #expect(t.features.elements == [1, 2.5, 3, 4] && t.columnNames == ["x", "y"])
        #expect(throws: IOError.self) { try CSV.read(Fixtures.path("table.csv"), options: .init(labelColumn: .name("nope"))) }
    }

    @Test func csvErrorsNameLineAndColumn() throws {
        let error = try #require(throws: IOError.self) { try CSV.read(Fixtures.path("bad/csv_non_numeric.csv")) }
        #expect(error.description.contains("line 2, column 2"))
        #expect(error.description.contains("five"))
    }

    @Test func bundledDigits() throws {
        let digits = try BundledDatasets.digits()
        #expect(digits.count == 1797 && digits.features.columns == 64 && digits.classCount == 10)
        #expect(digits.classCounts == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        #expect(digits.features.elements.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(digits.features.row(0).prefix(8).map { $0 * 16 } == [0, 0, 5, 13, 9, 1, 0, 0])
        let split = digits.stratifiedSplit(seed: 0)
        #expect(split.train.count + split.calibration.count + split.test.count == 1797)
        for part in [split.train, split.calibration, split.test] {
            for (c, n) in part.classCounts.enumerated() {
                let share = Double(n) / Double(part.count), overall = Double(digits.classCounts[c]) / 1797
                #expect(abs(share - overall) < 0.01)
            }
        }
        let again = digits.stratifiedSplit(seed: 0)
        #expect(again.test.labels == split.test.labels && again.test.features == split.test.features)
        #expect(digits.stratifiedSplit(seed: 1).test.features != split.test.features)
    }
}
