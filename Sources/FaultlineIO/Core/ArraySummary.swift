/// What is in a data file: for each array its shape, dtype, element count, minimum, maximum and mean of
/// the finite values, and how many values are NaN or ±∞ (`faultline inspect`).
public struct ArraySummary: Codable, Equatable, Sendable {
    /// The file the array came from.
    public var file: String
    /// The array's name: the member of an `.npz` or `.safetensors`, else "array" (or "table" for CSV).
    public var name: String
    /// The array's shape.
    public var shape: [Int]
    /// The element type's name (`float32`, `int64`, …).
    public var dtype: String
    /// The number of elements.
    public var count: Int
    /// Over the finite values; nil when there are none.
    public var min: Double?
    /// Over the finite values; nil when there are none.
    public var max: Double?
    /// Over the finite values, summed in Double; nil when there are none.
    public var mean: Double?
    /// How many values are NaN.
    public var nan: Int
    /// How many values are +∞ or −∞.
    public var infinite: Int

    /// One summary per array of `file`, chosen by its extension (.npy, .npz, .safetensors, .csv, .tsv,
    /// IDX). A C-order `.npy` of rank ≥ 1 is summarised in row blocks straight from its memory mapping (a
    /// file larger than memory works; the peak is one block beside the mapped pages); other files are
    /// read whole. Values are summed in Double in file order.
    /// - Throws: `IOError` naming the file: not a regular file, unknown extension, malformed content.
    public static func summaries(of file: String) throws -> [ArraySummary] {
        if let streamed = try streamedSummary(of: file) { return [streamed] }
        return try arrays(in: file).map { name, t in
            var stats = Accumulator()
            for i in 0..<t.count { stats.add(t.double(at: i)) }
            return stats.summary(file: file, name: name, shape: t.shape, dtype: t.dtype.rawValue, count: t.count)
        }
    }

    private static func arrays(in file: String) throws -> [(String, Tensor)] {
        try FileAccess.checkRegularFile(file)  // a directory, FIFO or empty path says so, not "unknown extension"
        let lower = file.lowercased()
        if lower.hasSuffix(".npy") { return [("array", try NPY.read(file))] }
        if lower.hasSuffix(".npz") { return try NPZ.read(file).map { ($0.name, $0.tensor) } }
        if lower.hasSuffix(".safetensors") { return try SafeTensors.read(file).tensors.map { ($0.name, $0.tensor) } }
        if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") {
            let table = try CSV.read(file, options: .init(delimiter: lower.hasSuffix(".tsv") ? "\t" : ","))
            return [("table", Tensor(table.features))]
        }
        if lower.contains("idx") || lower.hasSuffix(".gz") { return [("array", try IDX.read(file))] }
        throw IOError(.unsupportedFeature, file: file, "unknown extension (expected .npy, .npz, .safetensors, .csv, .tsv, IDX)")
    }

    /// A `.npy` of rank ≥ 1 in C order, in row blocks of about 2²⁰ values; nil for anything else.
    private static func streamedSummary(of file: String) throws -> ArraySummary? {
        guard file.lowercased().hasSuffix(".npy") else { return nil }
        try FileAccess.checkRegularFile(file)
        let header = try NPY.read(file, headerOnly: true)
        guard !header.shape.isEmpty, header.count > 0 else { return nil }
        let columns = Swift.max(1, header.count / Swift.max(header.shape[0], 1))
        let blocks: NPYRowBlocks<Double>
        do {
            blocks = try NPY.rowBlocks(file, blockRows: Swift.max(1, (1 << 20) / columns), as: Double.self)
        } catch let error as IOError where error.kind == .unsupportedFeature {
            return nil  // Fortran order: read whole
        }
        var stats = Accumulator()
        for block in blocks { block.withUnsafeBufferPointer { for x in $0 { stats.add(x) } } }
        return stats.summary(file: file, name: "array", shape: header.shape, dtype: header.dtype.rawValue, count: header.count)
    }

    /// Minimum, maximum and sum of the finite values, and the NaN and ±∞ counts.
    private struct Accumulator {
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, nan = 0, inf = 0, finite = 0
        mutating func add(_ x: Double) {
            if x.isNaN { nan += 1; return }
            if x.isInfinite { inf += 1; return }
            lo = Swift.min(lo, x)
            hi = Swift.max(hi, x)
            sum += x
            finite += 1
        }
        func summary(file: String, name: String, shape: [Int], dtype: String, count: Int) -> ArraySummary {
            let any = finite > 0
            return ArraySummary(file: file, name: name, shape: shape, dtype: dtype, count: count, min: any ? lo : nil, max: any ? hi : nil,
                                mean: any ? sum / Double(finite) : nil, nan: nan, infinite: inf)
        }
    }
}
