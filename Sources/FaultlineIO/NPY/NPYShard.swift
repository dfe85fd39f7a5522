import FaultlineLinalg

extension NPY {
    /// The row count of a `.npy` array viewed as a matrix (rank 1 → n×1; higher ranks [shape[0], rest]),
    /// from its header alone; the file must hold exactly the data its header declares.
    public static func rowCount(_ path: String) throws -> Int {
        matrixShape(try read(path, headerOnly: true).shape).0
    }

    /// Rows `rows` of a `.npy` array viewed as a matrix: the shard one rank of a distributed job reads.
    /// Only those rows' bytes are touched (the file is memory-mapped), so K ranks reading K disjoint
    /// ranges of one file read it once in total, with no scatter. When the file already holds `T` in
    /// little-endian C order and the range starts 64-byte aligned (always for float32 rows of a multiple
    /// of 16 values in a file `NPY.write` or NumPy wrote), the matrix adopts that part of the private
    /// mapping — no copy and no new memory, as `readMatrix` does for a whole file; otherwise the range is
    /// converted into a new matrix and its pages released after. Any dtype and byte order `readMatrix`
    /// takes; Fortran-order arrays of rank ≥ 2 cannot be split by rows.
    /// - Throws: `IOError` as `readMatrix` (missing, truncated, bad header), `.shapeMismatch` when `rows`
    ///   is not within 0 ... rowCount, `.unsupportedFeature` for Fortran order.
    public static func readRows<T: LinalgScalar>(_ path: String, rows: Range<Int>, as _: T.Type = T.self) throws -> Matrix<T> {
        guard let mapping = MappedFile(path) else {
            let data = try FileAccess.read(path)  // throws the precise not-found/unreadable error, or decodes a tiny/empty file
            let m = try data.withUnsafeBytes { try decode($0, name: path).matrix(T.self, name: path) }
            guard rows.lowerBound >= 0, rows.upperBound <= m.rows else {
                throw IOError(.shapeMismatch, file: path, "rows \(rows.lowerBound)..<\(rows.upperBound) are outside the file's \(m.rows) rows")
            }
            return m.gatherRows(Array(rows))
        }
        let header = try NPYHeader.parse(mapping.bytes, file: path)
        try checkDataSize(header, mapping.size, name: path)
        guard !header.fortranOrder || header.shape.count < 2 else {
            throw IOError(.unsupportedFeature, file: path, "Fortran-order arrays cannot be split by rows; save with C order")
        }
        let (total, columns) = matrixShape(header.shape)
        guard rows.lowerBound >= 0, rows.upperBound <= total else {
            throw IOError(.shapeMismatch, file: path, "rows \(rows.lowerBound)..<\(rows.upperBound) are outside the file's \(total) rows")
        }
        let size = header.dtype.size, count = rows.count * columns
        let start = header.dataOffset + rows.lowerBound * columns * size
        if count > 0 && header.dtype == (T.self == Float.self ? .float32 : .float64) && !header.bigEndian
            && start % AlignedBuffer<T>.alignment == 0 {
            // The rows as the file holds them: the matrix adopts that part of the private mapping (no copy,
            // no new memory; pages are read from the file when first touched, writes stay private).
            let storage = AlignedBuffer(adopting: (mapping.base + start).assumingMemoryBound(to: T.self), count: count) { withExtendedLifetime(mapping) {} }
            return Matrix(rows: rows.count, columns: columns, storage: storage)
        }
        var m = Matrix<T>(uninitializedRows: rows.count, columns: columns)
        guard count > 0 else { return m }
        let raw = UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<(start + count * size)])
        m.withUnsafeMutableBufferPointer { out in
            if header.dtype == (T.self == Float.self ? .float32 : .float64) && !header.bigEndian {
                UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
            } else {
                _ = out.initialize(from: ElementConversion.convert(raw, header.dtype, count, bigEndian: header.bigEndian, to: T.self))
            }
        }
        mapping.release(start..<(start + count * size))
        return m
    }
}
