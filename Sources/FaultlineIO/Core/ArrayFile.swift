import FaultlineLinalg

/// One array from a file chosen by its extension: `.npy`, `.npz` (the first array, or a named one),
/// `.safetensors` (likewise), `.csv`/`.tsv` (numeric, header detected) and IDX (anything else, plain
/// or gzip). `FILE.npz:NAME` and `FILE.safetensors:NAME` name an array inside an archive.
///
/// `matrix` reads `.npy` through `NPY.readMatrix`: a little-endian C-order array of the requested
/// float type is memory-mapped without a copy, anything else is converted straight from the mapping,
/// so a large `.npy` costs at most its own size in memory (the other formats are decoded whole).
/// Errors are `IOError`s naming the file.
public enum ArrayFile {
    /// The file and the array name of `path` (`FILE.npz:NAME` → ("FILE.npz", "NAME")), or `array`.
    public static func split(_ path: String, array: String? = nil) -> (file: String, array: String?) {
        if array == nil, let range = path.range(of: ".npz:") ?? path.range(of: ".safetensors:") {
            return (String(path[..<range.upperBound].dropLast()), String(path[range.upperBound...]))
        }
        return (path, array)
    }

    /// The array as a `Tensor` (any dtype, its own shape).
    public static func tensor(_ path: String, array: String? = nil) throws -> Tensor {
        let (file, name) = split(path, array: array)
        let lower = file.lowercased()
        if lower.hasSuffix(".npy") {
            if let name { throw IOError(.invalidValue, file: file, "a .npy file holds one array; drop ':\(name)'") }
            return try NPY.read(file)
        }
        if lower.hasSuffix(".npz") { return try NPZ.read(file, array: name) }  // only that member (or the first) is inflated
        if lower.hasSuffix(".safetensors") {
            let contents = try SafeTensors.read(file)
            guard let t = name.flatMap({ contents[$0] }) ?? (name == nil ? contents.tensors.first?.tensor : nil) else {
                throw IOError(.invalidValue, file: file, "no tensor '\(name ?? "")' (tensors: \(contents.tensors.map(\.name).joined(separator: ", ")))")
            }
            return t
        }
        if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") {
            return Tensor(try CSV.read(file, options: .init(delimiter: lower.hasSuffix(".tsv") ? "\t" : ",")).features)
        }
        return try IDX.read(file)
    }

    /// The array as an N × D matrix (rank 0: 1 × 1, rank 1: N × 1, higher ranks flattened per row).
    public static func matrix<T: LinalgScalar>(_ path: String, array: String? = nil, as _: T.Type = T.self) throws -> Matrix<T> {
        let (file, name) = split(path, array: array)
        if file.lowercased().hasSuffix(".npy") && name == nil { return try NPY.readMatrix(file, as: T.self) }
        return try tensor(file, array: name).matrix(T.self, name: file)
    }
}
