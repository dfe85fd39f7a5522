// Lists the public symbols of a module's symbol graph that have no doc comment, for
// scripts/check-doc-comments. Input: the JSON files `swift symbolgraph-extract` wrote for one module
// (the module's own file and its extension files). Output: one line per undocumented symbol
// (file:line, kind, name) and a count per kind; exit 1 when any is undocumented.
//
// Counted: types, functions, initializers, subscripts, properties, enum cases and type aliases declared
// public in the module itself. Not counted: members synthesized by the compiler or inherited from a
// protocol extension (they carry the protocol's documentation), and `init(from:)`, `encode(to:)`,
// `description`, `==`, `hash(into:)` implementing the standard protocols, and generated code
// (a `Generated/` folder: protoc's output is documented in the .proto it comes from).
import Foundation

let standardWitnesses: Set<String> = ["init(from:)", "encode(to:)", "description", "==(_:_:)", "hash(into:)",
                                      "hashValue", "debugDescription", "errorDescription", "<(_:_:)"]

var undocumented: [(file: String, line: Int, kind: String, name: String)] = []
var total = 0
var kinds: [String: (all: Int, missing: Int)] = [:]
var seen = Set<String>()

for path in CommandLine.arguments.dropFirst() {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    guard let graph = try JSONSerialization.jsonObject(with: data) as? [String: Any],
          let symbols = graph["symbols"] as? [[String: Any]] else { continue }
    for symbol in symbols {
        guard let identifier = (symbol["identifier"] as? [String: Any])?["precise"] as? String,
              let kind = (symbol["kind"] as? [String: Any])?["displayName"] as? String,
              let names = symbol["names"] as? [String: Any], let title = names["title"] as? String,
              let access = symbol["accessLevel"] as? String, access == "public" || access == "open" else { continue }
        if kind == "Extension" || kind == "Module" { continue }
        if standardWitnesses.contains(title) { continue }
        let pathComponents = symbol["pathComponents"] as? [String] ?? [title]
        // Symbols without a location are synthesized; underscored names are not API.
        guard let location = symbol["location"] as? [String: Any], let uri = location["uri"] as? String else { continue }
        if pathComponents.contains(where: { $0.hasPrefix("_") }) { continue }
        // Generated code (Sources/*/Generated/, e.g. protoc's onnx.pb.swift) is documented where it is generated from.
        if uri.contains("/Generated/") { continue }
        guard seen.insert(identifier).inserted else { continue }
        total += 1
        let documented = ((symbol["docComment"] as? [String: Any])?["lines"] as? [[String: Any]])?
            .contains { !(($0["text"] as? String) ?? "").trimmingCharacters(in: .whitespaces).isEmpty } ?? false
        kinds[kind, default: (0, 0)].all += 1
        if !documented {
            kinds[kind, default: (0, 0)].missing += 1
            let line = ((location["position"] as? [String: Any])?["line"] as? Int).map { $0 + 1 } ?? 0
            let file = URL(string: uri)?.path ?? uri
            undocumented.append((file, line, kind, pathComponents.joined(separator: ".")))
        }
    }
}

let root = FileManager.default.currentDirectoryPath + "/"
for u in undocumented.sorted(by: { ($0.file, $0.line) < ($1.file, $1.line) }) {
    let file = u.file.hasPrefix(root) ? String(u.file.dropFirst(root.count)) : u.file
    print("\(file):\(u.line): \(u.kind.lowercased()) \(u.name) has no doc comment")
}
let summary = kinds.sorted { $0.key < $1.key }.map { "\($0.key.lowercased()) \($0.value.all - $0.value.missing)/\($0.value.all)" }
print("documented: \(total - undocumented.count) of \(total) public symbols (\(summary.joined(separator: ", ")))")
exit(undocumented.isEmpty ? 0 : 1)
