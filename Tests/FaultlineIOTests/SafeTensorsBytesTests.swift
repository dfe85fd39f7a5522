import FaultlineIO
import Foundation
import Testing

/// `SafeTensors.decode(bytes)` is what `read(path)` does after reading the file: the same value or the
/// same error for every committed fixture, and the header parser's fast paths (strings without
/// escapes, duplicate keys found by a scan in small objects) agree with the general ones.
@Suite("safetensors from bytes")
struct SafeTensorsBytesTests {
    static let files = try! FileManager.default.contentsOfDirectory(atPath: Fixtures.root).filter { $0.hasSuffix(".safetensors") }
        + FileManager.default.contentsOfDirectory(atPath: Fixtures.path("bad")).filter { $0.hasPrefix("st_") }.map { "bad/" + $0 }

    @Test func committedFixturesExist() { #expect(Self.files.count >= 20) }

    @Test(arguments: files)
    func bytesDecodeAsTheFileReads(_ name: String) throws {
        let path = Fixtures.path(name)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let fromFile = Result { try SafeTensors.read(path) }
        for fromBytes in [Result { try SafeTensors.decode(data, name: path) }, Result { try SafeTensors.decode([UInt8](data), name: path) }] {
            switch (fromFile, fromBytes) {
            case (.success(let a), .success(let b)): #expect(a == b)
            case (.failure(let a), .failure(let b)):
                #expect(a is IOError && b is IOError && "\(a)" == "\(b)")
            default: Issue.record("\(name): the file gives \(fromFile), its bytes \(fromBytes)")
            }
        }
        if name.hasPrefix("bad/") { #expect(throws: IOError.self) { try SafeTensors.decode(data, name: path) } }
    }

    /// A header of `members` metadata keys, the last repeating key `repeated` (nil: all distinct).
    static func header(members: Int, repeated: Int?, escape: Bool = false) -> [UInt8] {
        var keys = (0..<members).map { "key\($0)" }
        if let repeated { keys[members - 1] = keys[repeated] }
        // "\u006b" is "k": an escaped key is the same key as its plain spelling.
        if escape, let last = keys.indices.last { keys[last] = "\\u006b" + keys[last].dropFirst() }
        let json = "{\"__metadata__\":{" + keys.map { "\"\($0)\":\"v\\n\\u00e9\"" }.joined(separator: ",") + "}}"
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out += $0 }
        return out + Array(json.utf8)
    }

    @Test(arguments: [1, 2, 7, 8, 9, 16, 40])
    func duplicateKeysAreFoundInObjectsOfEverySize(_ members: Int) throws {
        for escape in [false, true] {
            let file = try SafeTensors.decode(Self.header(members: members, repeated: nil, escape: escape), name: "h")
            #expect(file.metadata.count == members && file.tensors.isEmpty)
            #expect(file.metadata.values.allSatisfy { $0 == "v\né" })
            for repeated in 0..<(members - 1) {
                let error = try #require(throws: IOError.self) {
                    try SafeTensors.decode(Self.header(members: members, repeated: repeated, escape: escape), name: "h")
                }
                #expect(error.kind == .badHeader && error.detail.contains("duplicate key \"key\(repeated)\""))
            }
        }
    }

    @Test func stringsAreCheckedWithAndWithoutEscapes() throws {
        func decode(_ json: String) throws -> SafeTensors.File {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { bytes += $0 }
            return try SafeTensors.decode(bytes + Array(json.utf8), name: "s")
        }
        #expect(try decode(#"{"__metadata__":{"a":"plain","b":"tab\tquote\"slash\/","c":"\ud83d\ude00"}}"#).metadata
            == ["a": "plain", "b": "tab\tquote\"slash/", "c": "😀"])
        for bad in [#"{"__metadata__":{"a":"x"#, #"{"__metadata__":{"a":"x\"#, "{\"__metadata__\":{\"a\":\"x\u{01}y\"}}",
                    "{\"__metadata__\":{\"a\":\"x\\q\"}}", #"{"__metadata__":{"a":"\ud83d"}}"#] {
            #expect(throws: IOError.self, "\(bad)") { try decode(bad) }
        }
        var invalid = Array(#"{"__metadata__":{"a":"xx"}}"#.utf8)
        invalid[22] = 0xFF
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(invalid.count).littleEndian) { bytes += $0 }
        let error = try #require(throws: IOError.self) { try SafeTensors.decode(bytes + invalid, name: "s") }
        #expect(error.detail.contains("not valid UTF-8"))
    }
}
