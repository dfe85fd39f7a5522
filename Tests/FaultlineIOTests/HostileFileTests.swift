import FaultlineIO
import FaultlineLinalg
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Inputs that decode but used to trap or mislead later: empty arrays with huge other dimensions,
/// CSV with a byte-order mark or a NUL byte, and paths that are not regular files.
@Suite("hostile files")
struct HostileFileTests {
    static func npy(_ descr: String, _ shape: String, _ payload: [UInt8] = []) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let n = header.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8) + payload
    }

    @Test func elementCountChecksTheNonZeroDimensions() {
        #expect(Tensor.elementCount([2, 3, 4]) == 24)
        #expect(Tensor.elementCount([0, 5]) == 0)
        #expect(Tensor.elementCount([]) == 1)
        #expect(Tensor.elementCount([0, 1 << 40, 1 << 40]) == nil)
        #expect(Tensor.elementCount([1 << 62, 4]) == nil)
        #expect(Tensor.elementCount([3, -1]) == nil)
    }

    @Test func emptyArraysWithHugeDimensionsAreRefused() throws {
        let bytes = Self.npy("<f4", "(0, 1099511627776, 1099511627776)")
        let npy = try #require(throws: IOError.self) { try bytes.withUnsafeBytes { try NPY.decode($0, name: "z.npy") } }
        #expect(npy.kind == .badHeader && npy.detail.contains("overflow"))

        // IDX: float32 (0x0D), rank 4, dimensions 0, 2³²−1, 2³²−1, 2³²−1.
        let idx: [UInt8] = [0, 0, 0x0D, 4, 0, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 12)
        let idxError = try #require(throws: IOError.self) { try idx.withUnsafeBytes { try IDX.decode($0, name: "z.idx") } }
        #expect(idxError.detail.contains("overflow"))

        let header = #"{"t":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}"#
        let length = UInt64(header.utf8.count)
        let st = (0..<8).map { UInt8((length >> (8 * $0)) & 0xff) } + Array(header.utf8)
        let stError = try #require(throws: IOError.self) { try st.withUnsafeBytes { try SafeTensors.decode($0, name: "z.safetensors") } }
        #expect(stError.detail.contains("overflow"))

        // A tensor built in memory converts with a checked per-sample size.
        let t = Tensor(shape: [0, 1 << 40, 1 << 40], dtype: .float32, bytes: [])
        #expect(throws: IOError.self) { _ = try t.matrix(Float.self, name: "t") }
    }

    @Test func csvByteOrderMarkKeepsTheFirstRow() throws {
        let text = Array("\u{FEFF}1,2\n3,4\n5,6\n".utf8)
        let table = try text.withUnsafeBytes { try CSV.decode($0, name: "bom.csv", options: .init()) }
        #expect(table.features.rows == 3 && table.columnNames == nil)
        #expect(table.features[0, 0] == 1)
    }

    @Test func csvNulByteIsAnError() throws {
        let text = Array("1,2\n3\u{0}9,4\n".utf8)
        let error = try #require(throws: IOError.self) { try text.withUnsafeBytes { try CSV.decode($0, name: "nul.csv", options: .init()) } }
        #expect(error.kind == .invalidValue && error.detail.contains("line 2") && error.detail.contains("NUL"))
    }

    @Test func pathsThatAreNotRegularFilesSayWhatTheyAre() throws {
        let dir = (Fixtures.temporaryPath("x") as NSString).deletingLastPathComponent
        let fifo = dir + "/fifo.npy", loopA = dir + "/a.npy", loopB = dir + "/b.npy", dangling = dir + "/dangling.npy"
        #expect(mkfifo(fifo, 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: loopA, withDestinationPath: loopB)
        try FileManager.default.createSymbolicLink(atPath: loopB, withDestinationPath: loopA)
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir + "/missing.npy")
        func detail(_ path: String) -> String {
            do { _ = try NPY.read(path); return "read" } catch let e as IOError { return e.description } catch { return "\(error)" }
        }
        #expect(detail(dir).contains("is a directory"))
        #expect(detail(fifo).contains("FIFO"))  // and does not block waiting for a writer
        #expect(detail(loopA).contains("symbolic-link loop"))
        #expect(detail(dangling).contains("symbolic link to a file that does not exist"))
        #expect(detail("").contains("empty"))
        #expect(detail("/dev/zero").contains("device"))
        #expect(detail(dir + "/absent.npy").contains("no such file"))
        // The memory-mapped matrix reader refuses them the same way.
        #expect(throws: IOError.self) { _ = try NPY.readMatrix(fifo, as: Float.self) }
        #expect(throws: IOError.self) { _ = try NPY.readMatrix(dir, as: Float.self) }
    }

    @Test func labeledDatasetBoundsTheClassCount() throws {
        let x = Matrix<Float>(rows: 2, columns: 3)
        #expect(throws: IOError.self) { _ = try LabeledDataset(name: "d", features: x, labels: [0, 1], classCount: 1 << 62) }
        #expect(throws: IOError.self) { _ = try LabeledDataset(name: "d", features: x, labels: [0, 0], classCount: 0) }
        #expect(try LabeledDataset(name: "d", features: x, labels: [0, 1], classCount: 2).classCounts == [1, 1])
    }
}
