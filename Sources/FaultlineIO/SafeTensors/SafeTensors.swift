import Foundation

/// Hugging Face `.safetensors` files: read and write, strictly validated.
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping tensor names to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an optional `"__metadata__"` string map),
/// then the data section; offsets are relative to its start. Reading checks that N is within the file
/// and under `maximumHeaderLength`, the JSON is valid with no duplicate names, every dtype is known,
/// `shape × itemsize` equals `end − begin` (overflow-checked), and the tensors' byte ranges lie inside
/// the data section, do not overlap, and cover it exactly.
public enum SafeTensors {
    /// A file's contents: tensors in header order, and the `__metadata__` map.
    public struct File: Sendable, Equatable {
        /// The tensors in header order, with their names.
        public var tensors: [(name: String, tensor: Tensor)]
        /// The `__metadata__` map (empty when absent).
        public var metadata: [String: String]

        /// A file's contents, e.g. to write with `write(_:to:)`.
        public init(tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) {
            self.tensors = tensors
            self.metadata = metadata
        }

        /// The tensor named `name`, or nil.
        public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

        public static func == (a: File, b: File) -> Bool {
            a.metadata == b.metadata && a.tensors.count == b.tensors.count
                && zip(a.tensors, b.tensors).allSatisfy { $0.name == $1.name && $0.tensor == $1.tensor }
        }
    }

    /// Headers larger than this are refused (the reference implementation's limit is 100 MB).
    public static let maximumHeaderLength = 100_000_000

    static let dtypeNames: [String: DType] = [
        "F16": .float16, "BF16": .bfloat16, "F32": .float32, "F64": .float64,
        "I8": .int8, "I16": .int16, "I32": .int32, "I64": .int64,
        "U8": .uint8, "U16": .uint16, "U32": .uint32, "U64": .uint64, "BOOL": .bool,
    ]

    /// Reads and validates the file at `path` (see the checks above). Throws `IOError` naming the file and what is wrong.
    public static func read(_ path: String) throws -> File {
        try decode(FileAccess.read(path), name: path)
    }

    /// Decodes a file's bytes held in memory (`Data`, `[UInt8]`, …) with the checks of `read`;
    /// `name` stands for the source in error messages. Throws `IOError`.
    public static func decode(_ bytes: some ContiguousBytes, name: String = "safetensors") throws -> File {
        try bytes.withUnsafeBytes { try decode($0, name: name) }
    }

    /// Decodes raw bytes with the checks of `read`; `file` names them in errors. Throws `IOError`.
    public static func decode(_ raw: UnsafeRawBufferPointer, name file: String) throws -> File {
        let layout = try Layout(raw, file: file)
        let tensors = layout.tensors.map { t in
            (t.name, Tensor(shape: t.shape, dtype: t.dtype, bytes: Array(raw[(layout.dataStart + t.begin)..<(layout.dataStart + t.end)])))
        }
        return File(tensors: tensors, metadata: layout.metadata)
    }

    /// The header of a file: every tensor's place in the data section, validated (all of `read`'s checks
    /// but none of the copying).
    struct Layout {
        var metadata: [String: String] = [:]
        /// In header order.
        var tensors: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        /// Byte offset of the data section in the file.
        var dataStart = 0

        init(_ raw: UnsafeRawBufferPointer, file: String) throws {
            if let refusal = PyTorchPickle.refusal(raw) { throw IOError(.badMagic, file: file, refusal) }  // torch.save: the fix, never unpickled
            let r = ByteReader(bytes: raw, file: file)
            let declared = try r.littleEndian(UInt64.self, at: 0, "header length")
            guard declared <= UInt64(SafeTensors.maximumHeaderLength) else {
                throw IOError(.badHeader, file: file, "header length \(declared) exceeds the \(SafeTensors.maximumHeaderLength)-byte limit")
            }
            let headerLength = Int(declared)
            guard headerLength <= raw.count - 8 else {
                throw IOError(.truncated, file: file, "header length \(headerLength) runs past the end of the file (\(raw.count) bytes)")
            }
            let json = try JSONValue.parse(try r.slice(8, headerLength, "header"), file: file)
            guard case .object(let entries) = json else { throw IOError(.badHeader, file: file, "header is not a JSON object") }
            let dataStart = 8 + headerLength
            let dataSize = raw.count - dataStart
            var metadata: [String: String] = [:]
            var layout: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
            for (name, value) in entries {
                if name == "__metadata__" {
                    guard case .object(let pairs) = value else { throw IOError(.badHeader, file: file, "__metadata__ is not an object") }
                    for (k, v) in pairs {
                        guard case .string(let s) = v else { throw IOError(.badHeader, file: file, "__metadata__[\"\(k)\"] is not a string") }
                        metadata[k] = s
                    }
                    continue
                }
                layout.append(try SafeTensors.tensorLayout(name, value, file: file))
            }
            // Byte ranges: inside the data section, non-overlapping, covering it exactly.
            var cursor = 0
            for t in layout.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
                guard t.begin == cursor else {
                    throw IOError(.badHeader, file: file, t.begin < cursor
                        ? "tensor '\(t.name)' bytes \(t.begin)..<\(t.end) overlap the previous tensor (which ends at \(cursor))"
                        : "bytes \(cursor)..<\(t.begin) of the data section belong to no tensor")
                }
                guard t.end <= dataSize else {
                    throw IOError(.truncated, file: file, "tensor '\(t.name)' ends at data byte \(t.end) but the data section has \(dataSize)")
                }
                cursor = t.end
            }
            guard cursor == dataSize else {
                throw IOError(.badHeader, file: file, "the data section has \(dataSize - cursor) trailing bytes that belong to no tensor")
            }
            (self.metadata, tensors, self.dataStart) = (metadata, layout, dataStart)
        }
    }

    fileprivate static func tensorLayout(_ name: String, _ value: JSONValue, file: String)
        throws -> (name: String, dtype: DType, shape: [Int], begin: Int, end: Int)
    {
        func bad(_ what: String) -> IOError { IOError(.badHeader, file: file, "tensor '\(name)': \(what)") }
        guard case .object(let fields) = value else { throw bad("entry is not an object") }
        var dtypeName: String?, shapeValue: [JSONValue]?, offsets: [JSONValue]?
        for (k, v) in fields {
            switch (k, v) {
            case ("dtype", .string(let s)): dtypeName = s
            case ("shape", .array(let a)): shapeValue = a
            case ("data_offsets", .array(let a)): offsets = a
            default: throw bad("unexpected or mistyped field '\(k)'")
            }
        }
        guard let dtypeName else { throw bad("missing dtype") }
        guard let dtype = dtypeNames[dtypeName] else {
            throw IOError(.unsupportedDType, file: file, "tensor '\(name)': dtype \(dtypeName) is not supported (\(dtypeNames.keys.sorted().joined(separator: ", ")))")
        }
        guard let shapeValue else { throw bad("missing shape") }
        let shape = try shapeValue.map { v -> Int in
            guard let d = v.nonNegativeInt else { throw bad("shape entries must be non-negative integers") }
            return d
        }
        guard let offsets, offsets.count == 2, let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt, begin <= end else {
            throw bad("data_offsets must be two non-negative integers [begin, end] with begin ≤ end")
        }
        // Checked over the non-zero dimensions too: an empty tensor's other dimensions must still fit.
        guard let elements = Tensor.elementCount(shape), !elements.multipliedReportingOverflow(by: dtype.size).overflow else {
            throw bad("shape \(shape) overflows the byte count")
        }
        var bytes = dtype.size
        for d in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else { throw bad("shape \(shape) overflows the byte count") }
            bytes = product
        }
        guard bytes == end - begin else {
            throw IOError(.shapeMismatch, file: file, "tensor '\(name)': shape \(shape) of \(dtypeName) needs \(bytes) bytes, data_offsets give \(end - begin)")
        }
        return (name, dtype, shape, begin, end)
    }

    /// The file's bytes: tensors in the given order, contiguous, header padded with spaces to a
    /// multiple of 8 bytes (as the reference writer does).
    public static func encode(_ file: File, name: String = "safetensors") throws -> [UInt8] {
        var entries: [(key: String, value: JSONValue)] = []
        if !file.metadata.isEmpty {
            entries.append(("__metadata__", .object(file.metadata.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })))
        }
        var seen = Set<String>()
        var offset = 0
        for (tensorName, tensor) in file.tensors {
            guard tensorName != "__metadata__", seen.insert(tensorName).inserted else {
                throw IOError(.invalidValue, file: name, "tensor name '\(tensorName)' is reserved or repeated")
            }
            let code = dtypeNames.first { $0.value == tensor.dtype }!.key
            entries.append((tensorName, .object([
                ("dtype", .string(code)),
                ("shape", .array(tensor.shape.map { .number(String($0)) })),
                ("data_offsets", .array([.number(String(offset)), .number(String(offset + tensor.bytes.count))])),
            ])))
            offset += tensor.bytes.count
        }
        var header = Array(JSONValue.object(entries).serialized.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        out.appendLittleEndian(UInt64(header.count))
        out += header
        for (_, tensor) in file.tensors { out += tensor.bytes }
        return out
    }

    /// Writes atomically (temporary file, then rename).
    public static func write(_ file: File, to path: String) throws {
        try FileAccess.writeAtomically(encode(file, name: path), to: path)
    }
}
