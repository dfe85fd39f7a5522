import FaultlineLinalg

/// Numeric CSV: a matrix of features and, optionally, one integer label column.
///
/// Cells are decimal numbers (as `Double(String)` parses them, including `nan` and `inf`), optionally
/// quoted; lines end with LF or CRLF; blank lines are skipped; a leading UTF-8 byte-order mark is
/// ignored and a NUL byte anywhere is an error. Every non-numeric or missing cell and
/// every ragged row throws `IOError` with its 1-based line and column.
public enum CSV {
    /// Whether the first line names the columns: `auto` takes it as a header when any of its cells is not a number.
    public enum Header: Sendable {
        /// Detect it, there is one, there is none.
        case auto, present, absent
    }
    /// A column named by its header (`name`) or by its 0-based position (`index`; negative counts from the end).
    public enum LabelColumn: Sendable {
        /// By 0-based position (negative: from the end), or by header name.
        case index(Int), name(String)
    }

    /// How to parse a file.
    public struct Options: Sendable {
        /// The cell separator: one ASCII character other than `"` (`,` by default, `\t` for .tsv).
        public var delimiter: Character
        /// Whether the first line is a header (detected by default).
        public var header: Header
        /// The column of integer labels, removed from the features; nil: every column is a feature.
        public var labelColumn: LabelColumn?

        /// Options; the defaults read a comma-separated file with a detected header and no label column.
        public init(delimiter: Character = ",", header: Header = .auto, labelColumn: LabelColumn? = nil) {
            self.delimiter = delimiter
            self.header = header
            self.labelColumn = labelColumn
        }
    }

    /// A parsed file: feature columns (label column removed) and labels when a label column was named.
    public struct Table: Sendable {
        /// The header's names of the feature columns, or nil without a header.
        public var columnNames: [String]?
        /// Rows × feature columns, in Double.
        public var features: Matrix<Double>
        /// The label column's integers, when `Options.labelColumn` named one.
        public var labels: [Int]?
    }

    /// Reads and parses the file at `path` (see the type's rules). Throws `IOError` naming the file, and the line and column of a bad cell.
    public static func read(_ path: String, options: Options = Options()) throws -> Table {
        let data = try FileAccess.read(path)
        return try data.withUnsafeBytes { try decode($0, name: path, options: options) }
    }

    /// Parses CSV bytes held in memory; `file` names them in errors. Throws `IOError`.
    public static func decode(_ raw: UnsafeRawBufferPointer, name file: String, options: Options) throws -> Table {
        guard let delimiter = options.delimiter.asciiValue, options.delimiter != "\"" else {
            throw IOError(.invalidValue, file: file, "the delimiter must be one ASCII character other than '\"'")
        }
        // A NUL byte would end the C string `Double(String)` parses, so "1\0xyz" would read as 1: refuse it.
        if let nul = raw.firstIndex(of: 0) {
            let line = raw[..<nul].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            throw IOError(.invalidValue, file: file, "line \(line): a NUL byte (binary data, not CSV text)")
        }
        guard var text = String(validating: raw, as: UTF8.self) else {
            throw IOError(.invalidValue, file: file, "not valid UTF-8 text")
        }
        // A UTF-8 byte-order mark (as Excel writes) is not part of the first cell.
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
        var rows: [(line: Int, cells: [String])] = []
        var lineNumber = 0
        // Characters, not bytes: "\r\n" is one Character, and isNewline covers LF, CRLF and CR.
        for l in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if l.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            rows.append((lineNumber, try cells(of: l, delimiter: Character(UnicodeScalar(delimiter)), file: file, line: lineNumber)))
        }
        guard let first = rows.first else { throw IOError(.invalidValue, file: file, "empty file: no rows") }
        let hasHeader: Bool
        switch options.header {
        case .present: hasHeader = true
        case .absent: hasHeader = false
        case .auto: hasHeader = first.cells.contains { Double($0.trimmingSpaces) == nil }
        }
        let names = hasHeader ? first.cells.map(\.trimmingSpaces) : nil
        let body = hasHeader ? Array(rows.dropFirst()) : rows
        let width = first.cells.count
        guard !body.isEmpty else { throw IOError(.invalidValue, file: file, "no data rows after the header") }

        var labelIndex: Int?
        switch options.labelColumn {
        case nil: labelIndex = nil
        case .index(let i):
            guard i >= 0 && i < width || (i < 0 && -i <= width) else {
                throw IOError(.invalidValue, file: file, "label column \(i) is out of range (the file has \(width) columns)")
            }
            labelIndex = i < 0 ? width + i : i
        case .name(let n):
            guard let names else { throw IOError(.invalidValue, file: file, "label column '\(n)' named but the file has no header") }
            guard let i = names.firstIndex(of: n) else {
                throw IOError(.invalidValue, file: file, "no column '\(n)' (columns: \(names.joined(separator: ", ")))")
            }
            labelIndex = i
        }
        let featureCount = width - (labelIndex == nil ? 0 : 1)
        var features = Matrix<Double>(rows: body.count, columns: featureCount)
        var labels: [Int]? = labelIndex == nil ? nil : []
        try features.withUnsafeMutableBufferPointer { out in
            var k = 0
            for (line, cells) in body {
                guard cells.count == width else {
                    throw IOError(.shapeMismatch, file: file, "line \(line) has \(cells.count) columns, expected \(width) (ragged rows)")
                }
                for (column, cell) in cells.enumerated() {
                    let trimmed = cell.trimmingSpaces
                    if column == labelIndex {
                        guard let label = Int(trimmed) ?? Double(trimmed).flatMap({ $0.rounded() == $0 ? Int(exactly: $0) : nil }) else {
                            throw IOError(.invalidValue, file: file, "line \(line), column \(column + 1): label '\(trimmed)' is not an integer")
                        }
                        labels?.append(label)
                        continue
                    }
                    guard !trimmed.isEmpty else { throw IOError(.invalidValue, file: file, "line \(line), column \(column + 1): missing value") }
                    guard let value = Double(trimmed) else {
                        throw IOError(.invalidValue, file: file, "line \(line), column \(column + 1): '\(trimmed)' is not a number")
                    }
                    out[k] = value
                    k += 1
                }
            }
        }
        let featureNames = names.map { n in n.enumerated().filter { $0.offset != labelIndex }.map(\.element) }
        return Table(columnNames: featureNames, features: features, labels: labels)
    }

    /// Splits one line into cells; a cell may be quoted with "" as an escaped quote.
    private static func cells(of line: Substring, delimiter: Character, file: String, line number: Int) throws -> [String] {
        var cells: [String] = []
        var current = ""
        var quoted = false
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            if quoted {
                if c == "\"" {
                    let next = line.index(after: i)
                    if next < line.endIndex, line[next] == "\"" { current.append("\""); i = next } else { quoted = false }
                } else {
                    current.append(c)
                }
            } else if c == "\"" && current.trimmingSpaces.isEmpty {
                quoted = true
                current = ""
            } else if c == delimiter {
                cells.append(current)
                current = ""
            } else {
                current.append(c)
            }
            i = line.index(after: i)
        }
        guard !quoted else { throw IOError(.invalidValue, file: file, "line \(number): unterminated quoted cell") }
        cells.append(current)
        return cells
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
