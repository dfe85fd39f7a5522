import Foundation

/// JSON for machines: sorted keys, pretty printed.
public enum JSONOutput {
    /// NaN and ±∞ are written as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    /// `value` as pretty-printed JSON with sorted keys.
    public static func string<T: Encodable>(_ value: T) throws -> String {
        let encoder = encoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// `value` as one line of JSON with sorted keys (JSON Lines).
    public static func line<T: Encodable>(_ value: T) throws -> String {
        let encoder = encoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Plain-text tables for people.
public enum TextTable {
    /// Two columns, the keys padded to the longest, one row per line.
    public static func keyValue(_ rows: [(String, String)]) -> String {
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
            .joined(separator: "\n")
    }

    /// Columns left-aligned for text, right-aligned when every cell below the header looks numeric.
    public static func grid(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        let numeric = header.indices.map { c in rows.allSatisfy { Double($0[c].filter { $0 != "×" && $0 != "%" }) != nil } }
        func format(_ row: [String]) -> String {
            row.indices.map { c in
                let cell = row[c]
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return numeric[c] ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([format(header), rule] + rows.map(format)).joined(separator: "\n")
    }
}
