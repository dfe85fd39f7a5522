import FaultlineIO
import Foundation
import _TestSupport

/// Paths to the committed fixtures and the expectations NumPy wrote beside them.
enum Fixtures {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path

    static func path(_ name: String) -> String { root + "/" + name }

    struct Array: Decodable {
        var shape: [Int]
        var dtype: String
        var hex: String
        var float32_bits: [UInt32]?

        var bytes: [UInt8] {
            var out: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                out.append(UInt8(hex[i..<j], radix: 16)!)
                i = j
            }
            return out
        }
    }

    static let expected: [String: [String: Array]] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: path("expected.json")))
        return try! JSONDecoder().decode([String: [String: Array]].self, from: data)
    }()

    struct BadCase: Decodable { var reader: String; var kind: String }

    static let badCases: [String: BadCase] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: path("bad/cases.json")))
        return try! JSONDecoder().decode([String: BadCase].self, from: data)
    }()

    static func temporaryPath(_ name: String) -> String {
        let dir = TestScratch.root.appendingPathComponent("faultline-io-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }
}
