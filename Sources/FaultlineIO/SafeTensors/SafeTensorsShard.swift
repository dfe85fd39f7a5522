import FaultlineLinalg

extension SafeTensors {
    /// One tensor's name, dtype and shape, from a file's header.
    public struct TensorInfo: Sendable, Equatable {
        /// The tensor's name in the header.
        public var name: String
        /// Its element type.
        public var dtype: DType
        /// Its shape.
        public var shape: [Int]
        /// Rows and columns when viewed as a matrix (rank 0: 1 × 1, rank 1: n × 1, higher ranks
        /// [shape[0], the product of the rest]), as `ArrayFile.matrix` views it.
        public var matrixShape: (rows: Int, columns: Int) { NPY.matrixShape(shape) }

        public static func == (a: TensorInfo, b: TensorInfo) -> Bool { a.name == b.name && a.dtype == b.dtype && a.shape == b.shape }
    }

    /// The tensors of the file at `path` in header order, from its header alone (the file is
    /// memory-mapped; no tensor data is read). The whole header is validated as `read` validates it.
    /// - Throws: `IOError` as `read`.
    public static func tensorInfo(_ path: String) throws -> [TensorInfo] {
        try withLayout(path) { layout, _ in layout.tensors.map { TensorInfo(name: $0.name, dtype: $0.dtype, shape: $0.shape) } }
    }

    /// Rows `rows` of one tensor viewed as a matrix (`TensorInfo.matrixShape`): the shard one rank of a
    /// distributed job reads. `tensor` names it; nil takes the first tensor in header order (as
    /// `ArrayFile` does). Only those rows' bytes are touched (the file is memory-mapped, the range
    /// converted into a new matrix and its pages released after), so K ranks reading K disjoint ranges
    /// read the file once in total. Any dtype `read` takes, converted as `Tensor.matrix` converts it.
    /// - Throws: `IOError` as `read`; `.invalidValue` naming the tensors when `tensor` is not one of them;
    ///   `.shapeMismatch` when `rows` is not within 0 ... rows of the tensor.
    public static func readRows<T: LinalgScalar>(_ path: String, tensor: String? = nil, rows: Range<Int>,
                                                 as _: T.Type = T.self) throws -> Matrix<T> {
        try withLayout(path) { layout, mapping in
            guard let t = tensor.map({ name in layout.tensors.first { $0.name == name } }) ?? layout.tensors.first else {
                throw IOError(.invalidValue, file: path, tensor.map { name in
                    "no tensor '\(name)' (tensors: \(layout.tensors.map(\.name).joined(separator: ", ")))" } ?? "the file holds no tensor")
            }
            let (total, columns) = NPY.matrixShape(t.shape)
            guard rows.lowerBound >= 0, rows.upperBound <= total else {
                throw IOError(.shapeMismatch, file: path, "rows \(rows.lowerBound)..<\(rows.upperBound) are outside tensor '\(t.name)''s \(total) rows")
            }
            let size = t.dtype.size, count = rows.count * columns
            var m = Matrix<T>(uninitializedRows: rows.count, columns: columns)
            guard count > 0 else { return m }
            let start = layout.dataStart + t.begin + rows.lowerBound * columns * size
            let raw = UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + count * size)])
            m.withUnsafeMutableBufferPointer { out in
                if t.dtype == (T.self == Float.self ? .float32 : .float64) {
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                } else {
                    _ = out.initialize(from: ElementConversion.convert(raw, t.dtype, count, to: T.self))
                }
            }
            mapping.release(start..<(start + count * size))
            return m
        }
    }

    /// Runs `body` on the validated header of the memory-mapped file. An empty or unmappable file is
    /// read through `FileAccess.read`, which names the problem (missing, a directory, unreadable), and
    /// decoded from memory.
    private static func withLayout<R>(_ path: String, _ body: (Layout, MappedFile) throws -> R) throws -> R {
        try FileAccess.checkRegularFile(path)
        guard let mapping = MappedFile(path) else {
            let data = try FileAccess.read(path)
            _ = try data.withUnsafeBytes { try Layout($0, file: path) }  // throws the precise error (an empty file is truncated)
            throw IOError(.truncated, file: path, "the file could not be memory-mapped")
        }
        return try body(try Layout(mapping.bytes, file: path), mapping)
    }
}
