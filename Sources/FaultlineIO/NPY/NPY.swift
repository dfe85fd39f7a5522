import FaultlineLinalg
import Foundation

/// NumPy `.npy` files: read (format 1.0, 2.0, 3.0; every numeric dtype and bool; either byte order;
/// C or Fortran order, the latter transposed into row-major) and write (little-endian, C order).
///
/// Reading validates everything before touching data: magic, version, header length within the file,
/// the header dict, the dtype (object arrays and pickles are refused), dimensions (non-negative, no
/// overflow) and that the data section has exactly `count × itemsize` bytes.
public enum NPY {
    /// Reads a `.npy` file into a `Tensor`.
    public static func read(_ path: String) throws -> Tensor {
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { try decode($0, name: path) }
    }

    /// The shape and dtype of a `.npy` file without reading its data (`headerOnly` must be true);
    /// still checks that the file holds exactly the data the header declares.
    public static func read(_ path: String, headerOnly: Bool) throws -> (shape: [Int], dtype: DType, count: Int) {
        precondition(headerOnly, "use read(_:) to read the data")
        guard let mapping = MappedFile(path) else {
            let data = try FileAccess.read(path)
            return try data.withUnsafeBytes { raw in
                let h = try NPYHeader.parse(raw, file: path)
                try checkDataSize(h, raw.count, name: path)
                return (h.shape, h.dtype, h.shape.reduce(1, *))
            }
        }
        let h = try NPYHeader.parse(mapping.bytes, file: path)
        try checkDataSize(h, mapping.size, name: path)
        return (h.shape, h.dtype, h.shape.reduce(1, *))
    }

    /// Reads a `.npy` file straight into a matrix (rank 2; rank 1 → n×1; higher ranks flattened to
    /// [shape[0], rest]).
    ///
    /// Fast path: a little-endian, C-order array of the matrix's own dtype whose data starts on a
    /// 64-byte boundary (NumPy's writer pads headers so it does) becomes a matrix over a private memory
    /// mapping of the file: nothing is copied up front, pages are read as they are touched, and writing
    /// to the matrix copies the touched page (the file never changes). Other dtypes, byte orders and
    /// alignments are converted chunk by chunk straight from the mapping into the matrix, each chunk's
    /// pages released once converted, so the peak memory is the matrix plus one 256 KiB window; only
    /// Fortran-order arrays of rank ≥ 2 are decoded whole first.
    public static func readMatrix<T: LinalgScalar>(_ path: String, as _: T.Type = T.self) throws -> Matrix<T> {
        let native: DType = T.self == Float.self ? .float32 : .float64
        if let mapping = MappedFile(path) {
            let header = try NPYHeader.parse(mapping.bytes, file: path)
            try checkDataSize(header, mapping.size, name: path)
            let (rows, columns) = matrixShape(header.shape)
            if header.dtype == native && !header.bigEndian && (!header.fortranOrder || header.shape.count < 2)
                && header.dataOffset % 64 == 0 && rows * columns > 0 {
                let start = (mapping.base + header.dataOffset).assumingMemoryBound(to: T.self)
                let storage = AlignedBuffer(adopting: start, count: rows * columns) { withExtendedLifetime(mapping) {} }
                return Matrix(rows: rows, columns: columns, storage: storage)
            }
            if !header.fortranOrder || header.shape.count < 2 {
                var m = Matrix<T>(uninitializedRows: rows, columns: columns)
                let total = rows * columns, size = header.dtype.size, chunk = 1 << 16
                m.withUnsafeMutableBufferPointer { out in
                    for first in stride(from: 0, to: total, by: chunk) {
                        let n = Swift.min(chunk, total - first), start = header.dataOffset + first * size
                        let raw = UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + n * size)])
                        let values = ElementConversion.convert(raw, header.dtype, n, bigEndian: header.bigEndian, to: T.self)
                        values.withUnsafeBufferPointer { (out.baseAddress! + first).initialize(from: $0.baseAddress!, count: n) }
                        mapping.release(start..<(start + n * size))
                    }
                }
                return m
            }
            return try decode(mapping.bytes, name: path).matrix(T.self, name: path)
        }
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { try decode($0, name: path).matrix(T.self, name: path) }
    }

    /// Streams a `.npy` array of rank ≥ 1 in blocks of `blockRows` rows (the last block may be
    /// shorter), each converted to a `T` matrix of [rows, product of the other dimensions]. The file is
    /// memory-mapped, so data larger than memory can be processed block by block: each block's file
    /// pages are released once copied, so the resident size stays about one block. Fortran-order
    /// arrays of rank ≥ 2 cannot be streamed by rows and throw `.unsupportedFeature`.
    public static func rowBlocks<T: LinalgScalar>(_ path: String, blockRows: Int, as _: T.Type = T.self) throws -> NPYRowBlocks<T> {
        precondition(blockRows > 0, "rowBlocks: blockRows must be positive")
        guard let mapping = MappedFile(path) else {
            _ = try FileAccess.read(path)  // throws the precise not-found/unreadable error
            throw IOError(.unreadable, file: path, "cannot memory-map the file (empty?)")
        }
        let header = try NPYHeader.parse(mapping.bytes, file: path)
        try checkDataSize(header, mapping.size, name: path)
        guard !header.fortranOrder || header.shape.count < 2 else {
            throw IOError(.unsupportedFeature, file: path, "Fortran-order arrays cannot be streamed by rows; save with C order")
        }
        guard !header.shape.isEmpty else { throw IOError(.shapeMismatch, file: path, "a 0-d array has no rows") }
        return NPYRowBlocks(mapping: mapping, header: header, blockRows: blockRows)
    }

    /// Decodes `.npy` bytes; `name` labels errors.
    public static func decode(_ raw: UnsafeRawBufferPointer, name: String) throws -> Tensor {
        let header = try NPYHeader.parse(raw, file: name)
        try checkDataSize(header, raw.count, name: name)
        let size = header.dtype.size
        let count = header.shape.reduce(1, *)
        var bytes = Array(raw[header.dataOffset..<(header.dataOffset + count * size)])
        if header.bigEndian && size > 1 {
            for e in 0..<count { bytes[(e * size)..<(e * size + size)].reverse() }
        }
        if header.fortranOrder && header.shape.count > 1 {
            bytes = fortranToC(bytes, shape: header.shape, size: size)
        }
        return Tensor(shape: header.shape, dtype: header.dtype, bytes: bytes)
    }

    /// The `.npy` encoding of a tensor (little-endian, C order, version 1.0 unless the header needs 2.0).
    public static func encode(_ tensor: Tensor, name: String = "array") throws -> [UInt8] {
        try NPYHeader.encode(dtype: tensor.dtype, shape: tensor.shape, file: name) + tensor.bytes
    }

    /// Writes a tensor atomically (temporary file, then rename).
    public static func write(_ tensor: Tensor, to path: String) throws {
        try FileAccess.writeAtomically(encode(tensor, name: path), to: path)
    }

    /// Writes a matrix as a 2-d float32/float64 array, atomically.
    public static func write<T: LinalgScalar>(_ matrix: Matrix<T>, to path: String) throws {
        try write(Tensor(matrix), to: path)
    }

    static func checkDataSize(_ header: NPYHeader, _ fileSize: Int, name: String) throws {
        let count = header.shape.reduce(1, *)
        let (needed, overflow) = count.multipliedReportingOverflow(by: header.dtype.size)
        let available = fileSize - header.dataOffset
        guard !overflow, needed <= available else {
            throw IOError(.truncated, file: name,
                          "shape \(header.shape) of \(header.dtype) needs \(overflow ? "more than Int.max" : String(needed)) data bytes, "
                              + "the file has \(available)")
        }
        guard needed == available else {
            throw IOError(.shapeMismatch, file: name,
                          "shape \(header.shape) of \(header.dtype) needs \(needed) data bytes, the file has \(available) (\(available - needed) extra)")
        }
    }

    static func matrixShape(_ shape: [Int]) -> (Int, Int) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (shape[0], 1)
        default: return (shape[0], shape.dropFirst().reduce(1, *))
        }
    }

    /// Reorders column-major (first index fastest) element bytes into row-major order.
    static func fortranToC(_ bytes: [UInt8], shape: [Int], size: Int) -> [UInt8] {
        let count = shape.reduce(1, *)
        var out = [UInt8](repeating: 0, count: bytes.count)
        var fortranStrides = [Int](repeating: 1, count: shape.count)
        for d in 1..<shape.count { fortranStrides[d] = fortranStrides[d - 1] * shape[d - 1] }
        var index = [Int](repeating: 0, count: shape.count)  // row-major multi-index, last fastest
        for c in 0..<count {
            var f = 0
            for d in 0..<shape.count { f += index[d] * fortranStrides[d] }
            for b in 0..<size { out[c * size + b] = bytes[f * size + b] }
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }
}

/// The blocks of rows of a memory-mapped `.npy` array (see `NPY.rowBlocks`).
public struct NPYRowBlocks<T: LinalgScalar>: Sequence {
    let mapping: MappedFile
    let header: NPYHeader
    /// Rows per block (the last block may have fewer).
    public let blockRows: Int

    /// Total rows and columns of the array viewed as a matrix.
    public var shape: (rows: Int, columns: Int) { NPY.matrixShape(header.shape) }

    public func makeIterator() -> Iterator { Iterator(blocks: self, row: 0) }

    public struct Iterator: IteratorProtocol {
        let blocks: NPYRowBlocks
        var row: Int
        /// The file's pages below this page-aligned offset have been released.
        var released = 0

        public mutating func next() -> Matrix<T>? {
            let (rows, columns) = blocks.shape
            guard row < rows else { return nil }
            let count = Swift.min(blocks.blockRows, rows - row)
            defer { row += count }
            let dtype = blocks.header.dtype
            let start = blocks.header.dataOffset + row * columns * dtype.size
            let raw = UnsafeRawBufferPointer(rebasing: blocks.mapping.bytes[start..<(start + count * columns * dtype.size)])
            var block = Matrix<T>(uninitializedRows: count, columns: columns)
            block.withUnsafeMutableBufferPointer { out in
                if dtype == (T.self == Float.self ? .float32 : .float64) && !blocks.header.bigEndian {
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                } else {
                    _ = out.initialize(from: ElementConversion.convert(raw, dtype, count * columns, bigEndian: blocks.header.bigEndian, to: T.self))
                }
            }
            // The block is a copy: drop the file's pages up to its end (from where the last release
            // stopped, so the page a block boundary splits goes too) and the resident size stays one block.
            let end = start + count * columns * dtype.size, page = Int(sysconf(Int32(_SC_PAGESIZE)))
            blocks.mapping.release(released..<end)
            released = Swift.max(released, end / page * page)
            return block
        }
    }
}
