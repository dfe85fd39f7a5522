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

    /// Reads one array by name (without `.npy`); throws `.invalidValue` listing the names present.
    public static func read(_ path: String, array name: String) throws -> Tensor {
        let all = try read(path)
        guard let hit = all.first(where: { $0.name == name }) else {
            throw IOError(.invalidValue, file: path, "no array '\(name)' (arrays: \(all.map(\.name).joined(separator: ", ")))")
        }
        return hit.tensor
    }

    public static func decode(_ raw: UnsafeRawBufferPointer, name: String) throws -> [(name: String, tensor: Tensor)] {
        let reader = ByteReader(bytes: raw, file: name)
        return try ZipArchive.entries(reader).map { entry in
            let bytes = try ZipArchive.contents(reader, entry)
            let member = "\(name)[\(entry.name)]"
            let tensor = try bytes.withUnsafeBytes { try NPY.decode($0, name: member) }
            let arrayName = entry.name.hasSuffix(".npy") ? String(entry.name.dropLast(4)) : entry.name
            return (arrayName, tensor)
        }
    }

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
