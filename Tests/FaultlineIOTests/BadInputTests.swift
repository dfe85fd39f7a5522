import FaultlineIO
import Foundation
import Testing

/// Every malformed file of the corpus throws an `IOError` of the expected kind naming the file;
/// none traps or reads out of bounds.
@Suite("bad-input corpus")
struct BadInputTests {
    static let cases = Fixtures.badCases.keys.sorted()

    @Test(arguments: cases)
    func throwsTheExpectedError(name: String) throws {
        let entry = try #require(Fixtures.badCases[name])
        let path = Fixtures.path("bad/" + name)
        let error = try #require(throws: IOError.self) {
            switch entry.reader {
            case "npy": _ = try NPY.read(path)
            case "npz": _ = try NPZ.read(path)
            case "safetensors": _ = try SafeTensors.read(path)
            case "idx": _ = try IDX.read(path)
            default: _ = try CSV.read(path)
            }
        }
        #expect(error.kind.rawValue == entry.kind, "\(name): \(error)")
        #expect(error.file.hasPrefix(path))  // an archive member is named as path[member]
    }

    @Test func corpusIsLargeEnough() { #expect(Self.cases.count >= 40) }

    @Test func missingFileAndAtomicWrite() throws {
        #expect(throws: IOError(.notFound, file: "/nonexistent/x.npy", "no such file")) { try NPY.read("/nonexistent/x.npy") }
        let unwritable = try #require(throws: IOError.self) {
            try NPY.write(Tensor(shape: [1], values: [Float(1)]), to: "/nonexistent-dir/x.npy")
        }
        #expect(unwritable.kind == .unwritable)
        // A failed write leaves no file and no temporary file behind.
        let path = Fixtures.temporaryPath("a.npy")
        let dir = (path as NSString).deletingLastPathComponent
        #expect(throws: IOError.self) { try NPY.write(Tensor(shape: [1], dtype: .bfloat16, bytes: [0, 0]), to: path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
