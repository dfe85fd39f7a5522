import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// SafeTensors.readRows: any row range of any tensor (every dtype, ranks 1–4, the committed PyTorch and
/// bfloat16 fixtures) equals those rows of the whole read, bit for bit; the first tensor is the default;
/// bad names, ranges and files are typed errors naming the file.
@Suite("safetensors row shards")
struct SafeTensorsShardTests {
    /// A file of one tensor per dtype with deterministic bytes (any bit pattern is a valid value).
    static func mixedFile() throws -> String {
        let path = TestScratch.root.appendingPathComponent("st-shard-\(UUID().uuidString).safetensors").path
        let shapes: [(DType, [Int])] = [(.float32, [7, 3]), (.float64, [5]), (.float16, [4, 2, 2]), (.bfloat16, [3, 5]), (.int64, [6, 1]),
                                        (.uint8, [3, 4]), (.int8, [2, 2, 2, 2]), (.int32, [9, 2]), (.bool, [4, 3]), (.uint16, [0, 4])]
        var state: UInt64 = 0x9E3779B97F4A7C15
        let tensors = shapes.enumerated().map { k, entry -> (name: String, tensor: Tensor) in
            let count = entry.1.reduce(1, *) * entry.0.size
            let bytes = (0..<count).map { _ -> UInt8 in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                // Finite floats (a zero exponent-top bit keeps f16/bf16/f32/f64 away from NaN and ∞), booleans 0/1.
                return entry.0 == .bool ? UInt8(state >> 63) : UInt8(truncatingIfNeeded: state >> 33) & 0x3F
            }
            return ("t\(k)_\(entry.0)", Tensor(shape: entry.1, dtype: entry.0, bytes: bytes))
        }
        try SafeTensors.write(SafeTensors.File(tensors: tensors), to: path)
        return path
    }

    @Test func everyRangeOfEveryTensorMatchesTheWholeRead() throws {
        let mixed = try Self.mixedFile()
        defer { try? FileManager.default.removeItem(atPath: mixed) }
        var checked = 0
        for path in [mixed, Fixtures.path("torch.safetensors"), Fixtures.path("bf16.safetensors"), Fixtures.path("model.safetensors")] {
            let file = try SafeTensors.read(path)
            let info = try SafeTensors.tensorInfo(path)
            #expect(info.map(\.name) == file.tensors.map(\.name) && info.map(\.shape) == file.tensors.map(\.tensor.shape))
            for (name, tensor) in file.tensors where tensor.rank >= 1 {
                let whole = try tensor.matrix(Double.self, name: path)
                for lower in 0...whole.rows {
                    for upper in lower...whole.rows {
                        let shard = try SafeTensors.readRows(path, tensor: name, rows: lower..<upper, as: Double.self)
                        let expected = whole.gatherRows(Array(lower..<upper))
                        #expect(shard.rows == upper - lower && shard.columns == whole.columns, "\(name) \(lower)..<\(upper)")
                        #expect(shard.withUnsafeBufferPointer { $0.map(\.bitPattern) } == expected.withUnsafeBufferPointer { $0.map(\.bitPattern) },
                                "\(path) \(name) \(lower)..<\(upper)")
                        checked += 1
                    }
                }
                #expect(throws: IOError.self) { try SafeTensors.readRows(path, tensor: name, rows: 0..<(whole.rows + 1), as: Float.self) }
            }
            // No name: the first tensor in header order, as ArrayFile reads it.
            if let first = file.tensors.first, first.tensor.rank >= 1 {
                let whole = try ArrayFile.matrix(path, as: Float.self)
                #expect(try SafeTensors.readRows(path, rows: 0..<whole.rows, as: Float.self) == whole)
            }
        }
        #expect(checked > 200, "\(checked)")
    }

    /// Float32 shards of every split of a float32 tensor concatenate to the tensor, bit for bit.
    @Test func evenSplitsConcatenate() throws {
        let path = TestScratch.root.appendingPathComponent("st-split-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var m = Matrix<Float>(rows: 37, columns: 5)
        for i in 0..<37 { for j in 0..<5 { m[i, j] = Float(i) * 0.1 - Float(j) } }
        let other = Tensor(shape: [2], dtype: .float64, bytes: [UInt8](repeating: 0, count: 16))
        try SafeTensors.write(SafeTensors.File(tensors: [("other", other), ("x", Tensor(m))]), to: path)
        for k in 1...5 {
            let parts = try (0..<k).map { try SafeTensors.readRows(path, tensor: "x", rows: Linalg.partition(37, parts: k, part: $0), as: Float.self) }
            #expect(parts.flatMap { p in p.withUnsafeBufferPointer { Array($0) } } == m.withUnsafeBufferPointer { Array($0) })
        }
    }

    @Test func badNamesRangesAndFilesAreTypedErrors() throws {
        let path = try Self.mixedFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        func message(_ body: () throws -> Matrix<Float>) -> String {
            do { _ = try body(); return "" } catch let e as IOError { return "\(e)" } catch { return "untyped \(error)" }
        }
        #expect(message { try SafeTensors.readRows(path, tensor: "nope", rows: 0..<1) }.contains("no tensor 'nope'"))
        #expect(message { try SafeTensors.readRows(path, tensor: "t0_float32", rows: 5..<9) }.contains("outside"))
        #expect(message { try SafeTensors.readRows(path, tensor: "t0_float32", rows: -1..<2) }.contains("outside"))
        #expect(message { try SafeTensors.readRows(path + ".missing", rows: 0..<1) }.contains(".missing"))
        #expect(message { try SafeTensors.readRows(FileManager.default.temporaryDirectory.path, rows: 0..<1) } != "")
        // Every truncation of the file is refused (header or data cut), never read past its end.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = path + ".cut"
        defer { try? FileManager.default.removeItem(atPath: cut) }
        for length in stride(from: 0, to: bytes.count, by: max(bytes.count / 97, 1)) {
            try bytes.prefix(length).write(to: URL(fileURLWithPath: cut))
            #expect(message { try SafeTensors.readRows(cut, tensor: "t0_float32", rows: 0..<1) }.contains(cut), "length \(length)")
        }
    }
}
