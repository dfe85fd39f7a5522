// Renders `faultline --experimental-dump-help` (ArgumentParser's ToolInfo JSON, read from standard input)
// as a man(7) page on standard output: NAME, SYNOPSIS, DESCRIPTION, one subsection per command and
// subcommand with its options, EXIT STATUS, SEE ALSO. Used by scripts/generate-manual.
//
// Every character outside ASCII is written as a groff escape (ε → \[*e], × → \[mu], – → \[en], any other
// as \[uXXXX]), so the page renders the same whatever the reader's locale and whether or not man runs
// preconv; hyphens are written \- (a minus that copies as `-`), backslashes \e, and a line starting with
// `.` or `'` is protected with \&. The output has no date, so it changes only when the help changes.
import Foundation

struct Command: Decodable {
    var commandName: String
    var abstract: String?
    var discussion: String?
    var shouldDisplay: Bool?
    var arguments: [Argument]?
    var subcommands: [Command]?
}

struct Argument: Decodable {
    struct Name: Decodable { var kind: String; var name: String }
    var kind: String              // positional, option, flag
    var names: [Name]?
    var preferredName: Name?
    var valueName: String?
    var abstract: String?
    var discussion: String?
    var defaultValue: String?
    var isOptional: Bool?
    var isRepeating: Bool?
    var shouldDisplay: Bool?
}

struct ToolInfo: Decodable { var command: Command }

let named: [Character: String] = [
    "α": "*a", "β": "*b", "γ": "*g", "δ": "*d", "ε": "*e", "θ": "*h", "λ": "*l", "μ": "*m", "π": "*p", "ρ": "*r",
    "σ": "*s", "τ": "*t", "φ": "*f", "χ": "*x", "Δ": "*D", "Σ": "*S", "Φ": "*F",
    "×": "mu", "·": "pc", "–": "en", "—": "em", "−": "mi", "∞": "if", "≤": "<=", "≥": ">=",
    "≈": "~~", "≠": "!=", "→": "->", "←": "<-", "√": "sr", "∝": "pt", "±": "+-", "⌈": "lc", "⌉": "rc",
    "⌊": "lf", "⌋": "rf", "½": "12", "²": "S2", "³": "S3", "¹": "S1", "°": "de", "‘": "oq", "’": "cq",
    "“": "lq", "”": "rq",
]

/// Text for a roff text line: escapes, non-ASCII as groff glyphs.
func roff(_ text: String) -> String {
    var out = ""
    for ch in text {
        switch ch {
        case "\\": out += "\\e"
        case "-": out += "\\-"
        case "…": out += "..."
        default:
            if ch.isASCII { out.append(ch) }
            else if let name = named[ch] { out += "\\[\(name)]" }
            else { for scalar in ch.unicodeScalars { out += String(format: "\\[u%04X]", scalar.value) } }
        }
    }
    return out
}

/// Paragraph lines: each input line as a roff line, blank lines as paragraph breaks, indented lines
/// (examples) kept as they are.
func paragraphs(_ text: String) -> [String] {
    var lines: [String] = []
    var verbatim = false
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        if raw.trimmingCharacters(in: .whitespaces).isEmpty {
            if verbatim { lines.append(".fi"); verbatim = false }
            if lines.last != ".PP" { lines.append(".PP") }
            continue
        }
        let indented = raw.hasPrefix("  ")
        if indented && !verbatim { lines.append(".nf"); verbatim = true }
        if !indented && verbatim { lines.append(".fi"); verbatim = false }
        var line = roff(indented ? raw : raw.trimmingCharacters(in: .whitespaces))
        if line.hasPrefix(".") || line.hasPrefix("'") { line = "\\&" + line }
        lines.append(line)
    }
    if verbatim { lines.append(".fi") }
    while lines.last == ".PP" { lines.removeLast() }
    while lines.first == ".PP" { lines.removeFirst() }
    return lines
}

func flag(_ name: Argument.Name) -> String {
    (name.kind == "long" ? "\\-\\-" : name.kind == "longWithSingleDash" ? "\\-" : "\\-") + roff(name.name)
}

func synopsisItem(_ a: Argument) -> String {
    let value = roff(a.valueName ?? "value")
    var item: String
    switch a.kind {
    case "positional": item = "\\fI\(value)\\fR"
    case "flag": item = "\\fB\(a.preferredName.map(flag) ?? value)\\fR"
    default: item = "\\fB\(a.preferredName.map(flag) ?? value)\\fR \\fI\(value)\\fR"
    }
    if a.isRepeating == true { item += " ..." }
    return a.isOptional == true ? "[\(item)]" : item
}

func render(_ c: Command, path: [String], into out: inout [String]) {
    let full = (path + [c.commandName]).joined(separator: " ")
    let visibleArguments = (c.arguments ?? []).filter { $0.shouldDisplay != false }
    if !path.isEmpty {
        out.append(".SS \"\(roff(full))\"")
        if let abstract = c.abstract, !abstract.isEmpty { out += paragraphs(abstract) }
        out.append(".PP")
        let synopsis = visibleArguments.filter { a in !(a.names ?? []).contains { $0.name == "help" || $0.name == "version" } }
        out.append("\\fB\(roff(full))\\fR " + synopsis.map(synopsisItem).joined(separator: " ")
                   + ((c.subcommands ?? []).isEmpty ? "" : " \\fIsubcommand\\fR"))
        if let discussion = c.discussion, !discussion.isEmpty { out.append(".PP"); out += paragraphs(discussion) }
    }
    for a in visibleArguments where !path.isEmpty {
        let names = a.kind == "positional" ? "\\fI\(roff(a.valueName ?? "value"))\\fR"
            : (a.names ?? []).map { "\\fB\(flag($0))\\fR" }.joined(separator: ", ")
            + (a.kind == "option" ? " \\fI\(roff(a.valueName ?? "value"))\\fR" : "")
        out.append(".TP")
        out.append(names)
        var text = a.abstract ?? ""
        if let d = a.defaultValue, !d.isEmpty, a.kind != "flag" { text += (text.isEmpty ? "" : " ") + "(default: \(d))" }
        out += paragraphs(text.isEmpty ? " " : text)
        if let discussion = a.discussion, !discussion.isEmpty { out += paragraphs(discussion) }
    }
    for s in c.subcommands ?? [] where s.shouldDisplay != false && s.commandName != "help" {
        render(s, path: path + [c.commandName], into: &out)
    }
}

let input = FileHandle.standardInput.readDataToEndOfFile()
let tool = try JSONDecoder().decode(ToolInfo.self, from: input).command
let name = tool.commandName
var out: [String] = [
    ".\\\" Generated by scripts/generate-manual from `\(name) --experimental-dump-help`; do not edit.",
    ".TH \(name.uppercased()) 1 \"\" \"\(name)\" \"User Commands\"",
    ".nh",
    ".ad l",
    ".SH NAME",
    "\(roff(name)) \\- \(roff(tool.abstract ?? ""))",
    ".SH SYNOPSIS",
    "\\fB\(roff(name))\\fR \\fIcommand\\fR [\\fIoptions\\fR]",
    ".br",
    "\\fB\(roff(name))\\fR \\fIcommand\\fR \\fB\\-\\-help\\fR",
    ".SH DESCRIPTION",
]
out += paragraphs(tool.discussion ?? tool.abstract ?? "")
let topLevel = (tool.arguments ?? []).filter { $0.shouldDisplay != false }
if !topLevel.isEmpty {
    out.append(".SH OPTIONS")
    for a in topLevel {
        out.append(".TP")
        out.append((a.names ?? []).map { "\\fB\(flag($0))\\fR" }.joined(separator: ", "))
        out += paragraphs(a.abstract ?? " ")
    }
}
out.append(".SH COMMANDS")
for s in tool.subcommands ?? [] where s.shouldDisplay != false && s.commandName != "help" {
    render(s, path: [name], into: &out)
}
out += [
    ".SH EXIT STATUS",
    "0 on success; 1 when a documented check fails (e.g. \\fBattack \\-\\-min\\-accuracy\\fR, a certificate broken by",
    "an attack); 2 on a usage error or bad input, with one line naming the option and the file (JSON on",
    "standard error with \\fB\\-\\-json\\fR).",
    ".SH ENVIRONMENT",
    "\\fBFAULTLINE_BACKEND\\fR, \\fBFAULTLINE_THREADS\\fR, \\fBFAULTLINE_BLAS\\fR, \\fBFAULTLINE_LAPACKE\\fR,",
    "\\fBFAULTLINE_VECTOR_TIER\\fR, \\fBFAULTLINE_CORETYPE\\fR, \\fBFAULTLINE_MAX_DECOMPRESSED_BYTES\\fR: see the README.",
    ".SH SEE ALSO",
    "The README and docs/ in the source repository; \\fB\(roff(name)) \\fIcommand\\fB \\-\\-help\\fR.",
]
print(out.joined(separator: "\n"))
