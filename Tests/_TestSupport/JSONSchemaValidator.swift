import Foundation

/// A JSON value as parsed from text (numbers as Double; object keys unordered, duplicates refused).
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON type name of the value ("integer" is checked separately).
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Parses RFC 8259 JSON; throws `JSONSchemaError.parse` with the byte offset on malformed text or a
    /// duplicate object key.
    public static func parse(_ data: Data) throws -> JSONValue {
        var parser = Parser(bytes: Array(data))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.i == parser.bytes.count else { throw JSONSchemaError.parse("trailing text at byte \(parser.i)") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 } }

        mutating func literal(_ word: String, _ value: JSONValue) throws -> JSONValue {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw JSONSchemaError.parse("bad literal at byte \(i)") }
            i += w.count
            return value
        }

        mutating func value() throws -> JSONValue {
            skipSpace()
            guard i < bytes.count else { throw JSONSchemaError.parse("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var object: [String: JSONValue] = [:]
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw JSONSchemaError.parse("expected a key at byte \(i)") }
                    let key = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw JSONSchemaError.parse("expected ':' at byte \(i)") }
                    i += 1
                    guard object[key] == nil else { throw JSONSchemaError.parse("duplicate key \"\(key)\" at byte \(i)") }
                    object[key] = try value()
                    skipSpace()
                    guard i < bytes.count else { throw JSONSchemaError.parse("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard bytes[i] == UInt8(ascii: "}") else { throw JSONSchemaError.parse("expected ',' or '}' at byte \(i)") }
                    i += 1
                    return .object(object)
                }
            case UInt8(ascii: "["):
                i += 1
                var array: [JSONValue] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
                while true {
                    array.append(try value())
                    skipSpace()
                    guard i < bytes.count else { throw JSONSchemaError.parse("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard bytes[i] == UInt8(ascii: "]") else { throw JSONSchemaError.parse("expected ',' or ']' at byte \(i)") }
                    i += 1
                    return .array(array)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                let start = i
                while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
                guard let text = String(bytes: bytes[start..<i], encoding: .utf8), let d = Double(text), d.isFinite else {
                    throw JSONSchemaError.parse("bad number at byte \(start)")
                }
                return .number(d)
            }
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            var out: [UInt8] = []
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                guard b == UInt8(ascii: "\\") else { out.append(b); continue }
                guard i < bytes.count else { break }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                        throw JSONSchemaError.parse("bad \\u escape at byte \(i)")
                    }
                    i += 4
                    // Surrogates are kept as U+FFFD: the validator only compares keys and enum values.
                    out.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
                default: out.append(e)
                }
            }
            throw JSONSchemaError.parse("unterminated string")
        }
    }
}

public enum JSONSchemaError: Error, CustomStringConvertible {
    case parse(String)
    case schema(String)

    public var description: String {
        switch self {
        case .parse(let m): return "JSON: \(m)"
        case .schema(let m): return "schema: \(m)"
        }
    }
}

/// A validator for the subset of JSON Schema (draft 2020-12) the repository's schemas use: `type` (a
/// name or a list; "integer" means a number with no fractional part), `properties`, `required`,
/// `additionalProperties` (false or a schema), `items`, `enum`, `const`, `anyOf`, `minimum`, `maximum`,
/// `minItems`, `maxItems` and `$ref` to a JSON pointer inside the same document ("#/$defs/Name").
/// Annotations (`$schema`, `$id`, `title`, `description`, `$comment`, `$defs`, `default`, `examples`)
/// are ignored; any other keyword is reported as an error, so a schema cannot silently rely on a
/// keyword this validator does not check.
public struct JSONSchemaValidator {
    public let root: JSONValue

    static let annotations: Set<String> = ["$schema", "$id", "title", "description", "$comment", "$defs", "default", "examples"]
    static let checked: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
                                       "minimum", "maximum", "minItems", "maxItems", "$ref"]

    public init(schema: JSONValue) { root = schema }

    public init(schemaData: Data) throws { root = try JSONValue.parse(schemaData) }

    /// Every violation of the schema by `instance`, as "path: message" (empty: valid).
    public func errors(_ instance: JSONValue) -> [String] {
        var errors: [String] = []
        validate(instance, root, "$", &errors, depth: 0)
        return errors
    }

    /// Resolves "#/a/b" inside the root document.
    public func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#") else { return nil }
        var node = root
        for part in ref.dropFirst().split(separator: "/") {
            let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard case .object(let o) = node, let next = o[key] else { return nil }
            node = next
        }
        return node
    }

    func validate(_ v: JSONValue, _ schema: JSONValue, _ path: String, _ errors: inout [String], depth: Int) {
        guard depth < 64 else { errors.append("\(path): schema nesting too deep (a $ref cycle?)"); return }
        if case .bool(let b) = schema {
            if !b { errors.append("\(path): not allowed") }
            return
        }
        guard case .object(let s) = schema else { errors.append("\(path): the schema is not an object"); return }
        for key in s.keys where !Self.checked.contains(key) && !Self.annotations.contains(key) {
            errors.append("\(path): unsupported schema keyword \"\(key)\"")
        }
        if case .string(let ref)? = s["$ref"] {
            if let target = resolve(ref) { validate(v, target, path, &errors, depth: depth + 1) } else { errors.append("\(path): unresolved $ref \(ref)") }
        }
        if let type = s["type"] {
            let names: [String]
            switch type {
            case .string(let n): names = [n]
            case .array(let a): names = a.compactMap { if case .string(let n) = $0 { return n } else { return nil } }
            default: names = []
            }
            let ok = names.contains { n in
                if n == "integer", case .number(let d) = v { return d == d.rounded() }
                return n == v.typeName
            }
            if !ok { errors.append("\(path): expected \(names.joined(separator: " or ")), found \(v.typeName)") }
        }
        if case .array(let options)? = s["enum"], !options.contains(v) { errors.append("\(path): \(short(v)) is not one of the allowed values") }
        if let c = s["const"], c != v { errors.append("\(path): \(short(v)) is not \(short(c))") }
        if case .array(let branches)? = s["anyOf"] {
            let matches = branches.contains { b in
                var e: [String] = []
                validate(v, b, path, &e, depth: depth + 1)
                return e.isEmpty
            }
            if !matches { errors.append("\(path): \(short(v)) matches none of anyOf") }
        }
        if case .number(let d) = v {
            if case .number(let m)? = s["minimum"], d < m { errors.append("\(path): \(d) < minimum \(m)") }
            if case .number(let m)? = s["maximum"], d > m { errors.append("\(path): \(d) > maximum \(m)") }
        }
        if case .array(let a) = v {
            if case .number(let m)? = s["minItems"], Double(a.count) < m { errors.append("\(path): \(a.count) items < minItems \(Int(m))") }
            if case .number(let m)? = s["maxItems"], Double(a.count) > m { errors.append("\(path): \(a.count) items > maxItems \(Int(m))") }
            if let items = s["items"] {
                for (k, element) in a.enumerated() { validate(element, items, "\(path)[\(k)]", &errors, depth: depth + 1) }
            }
        }
        if case .object(let o) = v {
            var properties: [String: JSONValue] = [:]
            if case .object(let p)? = s["properties"] { properties = p }
            if case .array(let required)? = s["required"] {
                for case .string(let key) in required where o[key] == nil { errors.append("\(path): missing required \"\(key)\"") }
            }
            for (key, value) in o.sorted(by: { $0.key < $1.key }) {
                if let p = properties[key] {
                    validate(value, p, "\(path).\(key)", &errors, depth: depth + 1)
                } else if let extra = s["additionalProperties"] {
                    if extra == .bool(false) { errors.append("\(path): unexpected key \"\(key)\"") } else {
                        validate(value, extra, "\(path).\(key)", &errors, depth: depth + 1)
                    }
                }
            }
        }
    }

    func short(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return "\"\(s.prefix(40))\""
        case .number(let d): return "\(d)"
        case .bool(let b): return "\(b)"
        case .null: return "null"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
