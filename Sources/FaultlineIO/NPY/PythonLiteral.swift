/// A strict parser for the Python literals that appear in `.npy` headers: a dict with string keys
/// whose values are strings, booleans, integer tuples, or (for structured dtypes) lists. Anything else
/// is an error, never a crash.
enum PythonLiteral: Equatable {
    case string(String)
    case bool(Bool)
    case tuple([Int])
    case list

    static func parseDict(_ text: String, file: String) throws -> [String: PythonLiteral] {
        var p = Parser(chars: Array(text.unicodeScalars), file: file)
        let dict = try p.dict()
        p.skipSpace()
        guard p.i == p.chars.count else { throw p.error("trailing characters after the header dict") }
        return dict
    }

    private struct Parser {
        let chars: [Unicode.Scalar]
        let file: String
        var i = 0

        func error(_ what: String) -> IOError { IOError(.badHeader, file: file, "malformed .npy header: \(what) at character \(i)") }

        mutating func skipSpace() { while i < chars.count, chars[i] == " " || chars[i] == "\n" || chars[i] == "\t" { i += 1 } }

        mutating func expect(_ c: Unicode.Scalar) throws {
            skipSpace()
            guard i < chars.count, chars[i] == c else { throw error("expected '\(c)'") }
            i += 1
        }

        mutating func peek() -> Unicode.Scalar? { skipSpace(); return i < chars.count ? chars[i] : nil }

        mutating func dict() throws -> [String: PythonLiteral] {
            try expect("{")
            var out: [String: PythonLiteral] = [:]
            while peek() != "}" {
                guard case .string(let key) = try value() else { throw error("dict key is not a string") }
                try expect(":")
                guard out[key] == nil else { throw error("duplicate key '\(key)'") }
                out[key] = try value()
                if peek() == "," { i += 1 } else { break }
            }
            try expect("}")
            return out
        }

        mutating func value() throws -> PythonLiteral {
            guard let c = peek() else { throw error("unexpected end of header") }
            switch c {
            case "'", "\"":
                i += 1
                var s = ""
                while i < chars.count, chars[i] != c {
                    s.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard i < chars.count else { throw error("unterminated string") }
                i += 1
                return .string(s)
            case "T", "F":
                for word in ["True", "False"] where matches(word) {
                    i += word.unicodeScalars.count
                    return .bool(word == "True")
                }
                throw error("expected True or False")
            case "(":
                i += 1
                var dims: [Int] = []
                while peek() != ")" {
                    dims.append(try integer())
                    if peek() == "," { i += 1 } else { break }
                }
                try expect(")")
                return .tuple(dims)
            case "[":
                var depth = 0
                repeat {
                    if chars[i] == "[" { depth += 1 } else if chars[i] == "]" { depth -= 1 }
                    i += 1
                } while depth > 0 && i < chars.count
                guard depth == 0 else { throw error("unterminated list") }
                return .list
            default:
                throw error("unexpected character '\(c)'")
            }
        }

        func matches(_ word: String) -> Bool {
            let w = Array(word.unicodeScalars)
            return i + w.count <= chars.count && Array(chars[i..<(i + w.count)]) == w
        }

        mutating func integer() throws -> Int {
            skipSpace()
            var negative = false
            if i < chars.count, chars[i] == "-" { negative = true; i += 1 }
            var value = 0
            var digits = 0
            while i < chars.count, chars[i].value >= 48, chars[i].value <= 57 {
                let d = Int(chars[i].value - 48)
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (plus, o2) = times.addingReportingOverflow(d)
                guard !o1 && !o2 else { throw error("dimension overflows") }
                value = plus
                digits += 1
                i += 1
            }
            if i < chars.count, chars[i] == "L" { i += 1 }  // Python 2 long suffix
            guard digits > 0 else { throw error("expected an integer") }
            return negative ? -value : value
        }
    }
}
