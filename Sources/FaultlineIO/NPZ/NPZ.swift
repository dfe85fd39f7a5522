import Foundation

/// NumPy `.npz` archives: what `np.savez` (stored) and `np.savez_compressed` (deflate) write. Each
/// member `name.npy` is a `.npy` file; arrays are returned by name without the `.npy` suffix, in
/// archive order.
public enum NPZ {
    /// Reads every array. Throws `IOError` naming the file and member for any malformed part.
    public static func read(_ path: String) throws -> [(name: String, tensor: Tensor)] {
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { try decode($0, name: path) }
    }

    /// Reads one array by name (without `.npy`), or the first one when `name` is nil; only that member
    /// is inflated, and only if it declares at most `limit` bytes. Throws `.invalidValue` listing the
    /// names present, or naming the limit.
    public static func read(_ path: String, array name: String?, limit: Int = IOLimits.decompressedBytes) throws -> Tensor {
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { raw in
            let reader = ByteReader(bytes: raw, file: path)
            let entries = try ZipArchive.entries(reader)
            guard let entry = name == nil ? entries.first : entries.first(where: { arrayName($0.name) == name }) else {
                if name == nil { throw IOError(.invalidValue, file: path, "the archive holds no arrays") }
                throw IOError(.invalidValue, file: path, "no array '\(name!)' (arrays: \(entries.map { arrayName($0.name) }.joined(separator: ", ")))")
            }
            return try decode(reader, entry, name: path, limit: limit).tensor
        }
    }

    /// Every array of an `.npz` held in memory (stored or deflate members), in archive order; `name` names it in errors. Throws `IOError`.
    public static func decode(_ raw: UnsafeRawBufferPointer, name: String) throws -> [(name: String, tensor: Tensor)] {
        let reader = ByteReader(bytes: raw, file: name)
        return try ZipArchive.entries(reader).map { try decode(reader, $0, name: name) }
    }

    /// One member, inflated (within `IOLimits.decompressedBytes`) and decoded.
    static func decode(_ reader: ByteReader, _ entry: ZipArchive.Entry, name: String, limit: Int = IOLimits.decompressedBytes) throws -> (name: String, tensor: Tensor) {
        let bytes = try ZipArchive.contents(reader, entry, limit: limit)
        let tensor = try bytes.withUnsafeBytes { try NPY.decode($0, name: "\(name)[\(entry.name)]") }
        return (arrayName(entry.name), tensor)
    }

    /// A member's array name: the file name without `.npy`.
    static func arrayName(_ member: String) -> String { member.hasSuffix(".npy") ? String(member.dropLast(4)) : member }

    /// Writes arrays as `name.npy` members, deflate-compressed (`compressed: true`, like
    /// `np.savez_compressed`) or stored, atomically. Names must be unique and non-empty.
    public static func write(_ arrays: [(name: String, tensor: Tensor)], to path: String, compressed: Bool = true) throws {
        var seen = Set<String>()
        for (name, _) in arrays {
            guard !name.isEmpty, !name.contains("/"), seen.insert(name).inserted else {
                throw IOError(.invalidValue, file: path, "array name '\(name)' is empty, contains '/', or is repeated")
            }
        }
        let members = try arrays.map { ($0.name + ".npy", try NPY.encode($0.tensor, name: "\(path)[\($0.name)]")) }
        let archive = try ZipArchive.build(members, compress: compressed, file: path)
        try FileAccess.writeAtomically(archive, to: path)
    }
}
