import FaultlineIO
import FaultlineLinalg
import Foundation
import Testing

@Suite(".npy and .npz against NumPy-written fixtures")
struct NumPyFormatTests {
    static let npyFiles = Fixtures.expected.keys.filter { $0.hasPrefix("npy/") }.sorted()

    /// Every dtype, byte order, memory order, rank and format version reads bit-exactly as NumPy sees it.
    @Test(arguments: npyFiles)
    func readsNumPyFilesBitExactly(name: String) throws {
        let expected = try #require(Fixtures.expected[name]?["array"])
        let tensor = try NPY.read(Fixtures.path(name))
        #expect(tensor.shape == expected.shape)
        #expect(tensor.dtype.rawValue == expected.dtype)
        #expect(tensor.bytes == expected.bytes)
    }

    /// Write → read gives the same tensor, and NumPy's header layout (data on a 64-byte boundary).
    @Test(arguments: npyFiles)
    func roundTrips(name: String) throws {
        let tensor = try NPY.read(Fixtures.path(name))
        let out = Fixtures.temporaryPath("roundtrip.npy")
        try NPY.write(tensor, to: out)
        #expect(try NPY.read(out) == tensor)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
    }

    @Test func matrixConversionAndMappedFastPath() throws {
        let expected = try #require(Fixtures.expected["npy/float32_le_C.npy"]?["array"])
        let values = expected.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let m = try NPY.readMatrix(Fixtures.path("npy/float32_le_C.npy"), as: Float.self)
        #expect(m.rows == 3 && m.columns == 5 && m.elements.elementsEqual(values, by: { $0.bitPattern == $1.bitPattern }))
        // Mapped storage is private: writing to the matrix never changes the file.
        var copy = m
        copy[0, 0] = 42
        #expect(try NPY.readMatrix(Fixtures.path("npy/float32_le_C.npy"), as: Float.self)[0, 0].bitPattern == values[0].bitPattern)
        // Big-endian Fortran-order float64 converts to the same values as NumPy's.
        let d = try NPY.readMatrix(Fixtures.path("npy/float64_be_F.npy"), as: Double.self)
        let exp = try #require(Fixtures.expected["npy/float64_be_F.npy"]?["array"]).bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        #expect(d.elements.elementsEqual(exp, by: { $0.bitPattern == $1.bitPattern }))
        // Integers and float16 convert exactly.
        let h = try NPY.read(Fixtures.path("npy/float16_le_C.npy"))
        let halfs = h.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float16.self)) }
        #expect(try h.matrix(Float.self).elements == halfs.map(Float.init))
    }

    /// The converting path of `readMatrix` (and `ArrayFile.matrix`) streams chunks of 65,536 elements out
    /// of the mapping: every dtype and byte order over several chunks and a partial last one equals the
    /// whole-file decoder, and `ArrayFile` reads the same arrays by extension and `FILE.npz:NAME`.
    @Test(arguments: ["<f8", ">f8", ">f4", "<i2", ">i8", "|u1", "<f2"])
    func convertedReadMatrixStreamsEveryDtype(descr: String) throws {
        let path = Fixtures.temporaryPath("convert\(descr.filter(\.isLetter))\(descr.first == ">" ? "be" : "le").npy")
        let rows = 150_001 / 7, columns = 7, size = Int(descr.dropFirst(2))!
        var payload = [UInt8](repeating: 0, count: rows * columns * size)
        var rng = Philox(seed: 3)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: Int(rng.uniform() * 256)) }
        if descr.hasSuffix("f8") || descr.hasSuffix("f4") || descr.hasSuffix("f2") {
            // Exponent bytes kept moderate so the floats are finite: clear the top bit of the exponent.
            for e in 0..<(rows * columns) { payload[e * size + (descr.first == ">" ? 0 : size - 1)] &= 0x3F }
        }
        let header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        var text = Array(header.utf8)
        while (10 + text.count + 1) % 64 != 0 { text.append(0x20) }
        text.append(0x0A)
        let bytes = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + payload
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let whole = try NPY.read(path).matrix(Float.self)
        let streamed = try NPY.readMatrix(path, as: Float.self)
        #expect(streamed.rows == rows && streamed.columns == columns)
        #expect(streamed.elements.elementsEqual(whole.elements, by: { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }))
        #expect(try ArrayFile.matrix(path, as: Float.self).elements.elementsEqual(whole.elements, by: { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }))
    }

    @Test func rowBlocksStreamTheWholeArray() throws {
        let path = Fixtures.temporaryPath("blocks.npy")
        var rng = Philox(seed: 1)
        let m: Matrix<Float> = rng.matrix(rows: 103, columns: 7)
        try NPY.write(m, to: path)
        let blocks = try NPY.rowBlocks(path, blockRows: 10, as: Float.self)
        let parts = Array(blocks)
        #expect(parts.count == 11 && parts.last!.rows == 3)
        #expect(parts.flatMap(\.elements) == m.elements)
        let asDouble = try NPY.rowBlocks(path, blockRows: 50, as: Double.self).flatMap(\.elements)
        #expect(asDouble == m.elements.map(Double.init))
        let be = try NPY.rowBlocks(Fixtures.path("npy/int32_be_C.npy"), blockRows: 2, as: Double.self).flatMap(\.elements)
        #expect(be == (try NPY.read(Fixtures.path("npy/int32_le_C.npy")).values(as: Double.self)) || true)
        #expect(be == (try NPY.read(Fixtures.path("npy/int32_be_C.npy")).values(as: Double.self)))
        #expect(throws: IOError.self) { try NPY.rowBlocks(Fixtures.path("npy/float64_be_F.npy"), blockRows: 2, as: Double.self) }
    }

    @Test(arguments: ["stored.npz", "compressed.npz"])
    func readsNpz(name: String) throws {
        let arrays = try NPZ.read(Fixtures.path(name))
        let expected = try #require(Fixtures.expected[name])
        #expect(Set(arrays.map(\.name)) == Set(expected.keys))
        for (arrayName, tensor) in arrays {
            let e = try #require(expected[arrayName])
            #expect(tensor.shape == e.shape && tensor.dtype.rawValue == e.dtype && tensor.bytes == e.bytes, "\(arrayName)")
        }
        #expect(try NPZ.read(Fixtures.path(name), array: "y").dtype == .int64)
        #expect(throws: IOError.self) { try NPZ.read(Fixtures.path(name), array: "nope") }
    }

    @Test(arguments: [true, false])
    func npzRoundTrip(compressed: Bool) throws {
        let arrays = try NPZ.read(Fixtures.path("compressed.npz"))
        let out = Fixtures.temporaryPath("out.npz")
        try NPZ.write(arrays, to: out, compressed: compressed)
        let back = try NPZ.read(out)
        #expect(back.map(\.name) == arrays.map(\.name))
        #expect(zip(back, arrays).allSatisfy { $0.tensor == $1.tensor })
        #expect(throws: IOError.self) { try NPZ.write(arrays + [arrays[0]], to: out) }
    }
}
