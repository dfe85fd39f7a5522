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

    /// Reads a `.npy` file straight into a matrix (rank 2; rank 1 → n×1; higher ranks flattened to
    /// [shape[0], rest]). A little-endian, C-order file of the matrix's own dtype is copied once from
    /// the memory map, the fast path for large inputs.
    public static func readMatrix<T: LinalgScalar>(_ path: String, as _: T.Type = T.self) throws -> Matrix<T> {
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { raw in
            let header = try NPYHeader.parse(raw, file: path)
            try checkDataSize(header, raw.count, name: path)
            let native: DType = T.self == Float.self ? .float32 : .float64
            if header.dtype == native && !header.bigEndian && (!header.fortranOrder || header.shape.count < 2) {
                let (rows, columns) = matrixShape(header.shape)
                var m = Matrix<T>(uninitializedRows: rows, columns: columns)
                m.withUnsafeMutableBufferPointer { dst in
                    UnsafeMutableRawBufferPointer(dst).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw[header.dataOffset..<(header.dataOffset + rows * columns * native.size)]))
                }
                return m
            }
            return try decode(raw, name: path).matrix(T.self, name: path)
        }
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
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        NPYHeader.encode(dtype: tensor.dtype, shape: tensor.shape) + tensor.bytes
    }

    /// Writes a tensor atomically (temporary file, then rename).
    public static func write(_ tensor: Tensor, to path: String) throws {
        try FileAccess.writeAtomically(encode(tensor), to: path)
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
