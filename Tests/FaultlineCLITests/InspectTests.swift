import Foundation
import Testing
import _TestSupport

@Suite("faultline inspect")
struct InspectTests {
    /// The IO fixtures, found from this source file (the CLI tests do not bundle them).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FaultlineIOTests/Fixtures").path

    struct Summary: Decodable { var name: String; var shape: [Int]; var dtype: String; var min: Double?; var max: Double?; var infinite: Int }

    @Test func summarisesEveryArray() throws {
        let r = try CLIRunner.run(["inspect", "--json", Self.fixtures + "/compressed.npz", Self.fixtures + "/labels.idx1-ubyte.gz"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONDecoder().decode([Summary].self, from: Data(r.stdout.utf8))
        #expect(rows.map(\.name) == ["x", "y", "flags", "array"])
        #expect(rows[0].shape == [10, 4] && rows[0].dtype == "float32" && rows[0].infinite == 1)
        #expect(rows[0].max.map { $0.isFinite } == true)  // statistics over finite values only
        #expect(rows[1].dtype == "int64" && rows[1].min == 0 && rows[1].max == 2)
        #expect(rows[3].shape == [5] && rows[3].dtype == "uint8")
    }

    @Test func malformedFileExitsWithCode2AndNamesTheProblem() throws {
        let path = Self.fixtures + "/bad/st_overlap.safetensors"
        let r = try CLIRunner.run(["inspect", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains(path) && r.stderr.contains("overlap"))
        let missing = try CLIRunner.run(["inspect", "/nonexistent/file.npy"])
        #expect(missing.status == 2 && missing.stderr.contains("no such file"))
    }
}
