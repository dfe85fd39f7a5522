import FaultlineIO
import Foundation
import Testing

/// `Labels.read`: every format labels come in, and families of bad labels, each refused with an
/// `IOError` naming the file and the first bad index.
@Suite("Labels reader")
struct LabelsTests {
    static func npy<T: TensorElement>(_ values: [T], shape: [Int]? = nil, _ name: String = "y.npy") throws -> String {
        let path = Fixtures.temporaryPath(name)
        try NPY.write(Tensor(shape: shape ?? [values.count], values: values), to: path)
        return path
    }

    static func text(_ contents: String, _ name: String) throws -> String {
        let path = Fixtures.temporaryPath(name)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// An IDX label file (magic 0x00000801: unsigned bytes, one dimension).
    static func idx(_ labels: [UInt8]) throws -> String {
        var bytes: [UInt8] = [0, 0, 0x08, 0x01]
        let n = UInt32(labels.count)
        bytes += [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        let path = Fixtures.temporaryPath("labels-idx1-ubyte")
        try Data(bytes + labels).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The error `body` throws, which must be an `IOError` about `file`.
    static func ioError(_ file: String, _ body: () throws -> [Int]) -> IOError? {
        do {
            let labels = try body()
            Issue.record("expected an error, read \(labels)")
            return nil
        } catch let error as IOError {
            #expect(error.file == file)
            return error
        } catch {
            Issue.record("expected an IOError, got \(error)")
            return nil
        }
    }

    // MARK: - what reads

    @Test(arguments: [0, 1, 2, 7])
    func integerAndIntegralFloatDTypes(count: Int) throws {
        let labels = (0..<count).map { ($0 * 3) % 5 }
        let files = [
            try Self.npy(labels.map { Int64($0) }, "i64.npy"),
            try Self.npy(labels.map { Int32($0) }, shape: [count, 1], "i32.npy"),
            try Self.npy(labels.map { UInt8($0) }, "u8.npy"),
            try Self.npy(labels.map { Int16($0) }, "i16.npy"),
            try Self.npy(labels.map { Float($0) }, "f32.npy"),
            try Self.npy(labels.map { Double($0) }, shape: [count, 1], "f64.npy"),
        ]
        for file in files {
            #expect(try Labels.read(file) == labels, "\(file)")
            #expect(try Labels.read(url: URL(fileURLWithPath: file), classes: 5) == labels, "\(file)")
        }
    }

    @Test func csvColumns() throws {
        let plain = try Self.text("3\n1\n4\n1\n5\n", "plain.csv")
        #expect(try Labels.read(plain) == [3, 1, 4, 1, 5])
        let header = try Self.text("label\n2\n7\n", "header.csv")
        #expect(try Labels.read(header) == [2, 7])
        let table = try Self.text("a,label,b\n0.5,1,2\n0.25,0,3\n1.5,2.0,4\n", "table.csv")
        #expect(try Labels.read(table, column: .name("label")) == [1, 0, 2])
        #expect(try Labels.read(table, column: .index(1)) == [1, 0, 2])
        #expect(try Labels.read(table, column: .index(-1)) == [2, 3, 4])
        let tsv = try Self.text("x\ty\n0.1\t4\n0.2\t5\n", "t.tsv")
        #expect(try Labels.read(tsv, column: .name("y"), classes: 6) == [4, 5])
    }

    @Test func idxLabelFiles() throws {
        let fixture = try IDX.read(Fixtures.path("labels.idx1-ubyte.gz"))
        #expect(try Labels.read(Fixtures.path("labels.idx1-ubyte.gz")) == fixture.values(as: Double.self).map { Int($0) })
        for labels in [[UInt8](), [9], [0, 255], [1, 2, 3, 4, 5]] {
            #expect(try Labels.read(Self.idx(labels)) == labels.map(Int.init))
        }
    }

    @Test func theBoundaries() throws {
        let top = Int(Int32.max)
        #expect(try Labels.read(Self.npy([Int64(0), Int64(top)])) == [0, top])
        #expect(try Labels.read(Self.npy([Double(top)])) == [top])
        #expect(try Labels.read(Self.npy([Int64(9)]), classes: 10) == [9])
        #expect(try Labels.read(Self.npy([Float(-0.0)])) == [0])
    }

    // MARK: - what is refused

    @Test(arguments: [Double.nan, .infinity, -.infinity, 2.5, -0.5, 1e-9 + 1, 1e19, -1e300])
    func nonIntegers(bad: Double) throws {
        for at in [0, 2] {
            var values: [Double] = [1, 0, 3]
            values[at] = bad
            let file = try Self.npy(values)
            let error = Self.ioError(file) { try Labels.read(file) }
            #expect(error?.kind == .invalidValue)
            #expect(error?.detail.contains("label at index \(at) is") == true, "\(error.map(String.init(describing:)) ?? "")")
            #expect(error?.detail.contains("not an integer") == true)
        }
    }

    @Test(arguments: [Int64(-1), Int64(Int32.min), Int64(Int32.max) + 1, Int64.max, Int64.min])
    func outsideTheInt32Range(bad: Int64) throws {
        let file = try Self.npy([Int64(0), bad])
        let error = Self.ioError(file) { try Labels.read(file) }
        #expect(error?.kind == .invalidValue)
        #expect(error?.detail.contains("label at index 1 is") == true)
        #expect(error?.detail.contains("outside 0..<2147483648") == true || error?.detail.contains("not an integer") == true)
    }

    @Test(arguments: [1, 2, 10])
    func atOrAboveTheClassCount(classes: Int) throws {
        let file = try Self.npy([Int32(0), Int32(classes - 1), Int32(classes)])
        let error = Self.ioError(file) { try Labels.read(file, classes: classes) }
        #expect(error?.detail == "label at index 2 is \(classes), outside 0..<\(classes) (there are \(classes) classes)")
        #expect(try Labels.read(file, classes: classes + 1) == [0, classes - 1, classes])
    }

    @Test(arguments: [0, -1, Int.min])
    func aClassCountThatIsNotPositive(classes: Int) throws {
        let file = try Self.npy([Int32(0)])
        #expect(Self.ioError(file) { try Labels.read(file, classes: classes) }?.detail.contains("must be positive") == true)
    }

    @Test func shapesThatAreNotOneLabelPerRow() throws {
        for (values, shape) in [([Int32](repeating: 0, count: 6), [3, 2]), ([0, 1, 2, 3], [1, 2, 2]), ([5], [Int]())] {
            let file = try Self.npy(values, shape: shape)
            let error = Self.ioError(file) { try Labels.read(file) }
            #expect(error?.kind == .shapeMismatch, "\(shape)")
        }
        let wide = try Self.text("1,2\n3,4\n", "wide.csv")
        #expect(Self.ioError(wide) { try Labels.read(wide) }?.detail.contains("name the label column") == true)
    }

    @Test func badCSVColumns() throws {
        let table = try Self.text("a,label\n0.5,1\n0.25,x\n", "table.csv")
        let cell = Self.ioError(table) { try Labels.read(table, column: .name("label")) }
        #expect(cell?.detail.contains("line 3") == true)
        let fractional = try Self.text("a,label\n0.5,1\n0.25,1.5\n", "f.csv")
        #expect(Self.ioError(fractional) { try Labels.read(fractional, column: .name("label")) }?.detail.contains("not an integer") == true)
        let negative = try Self.text("a,label\n0.5,1\n0.25,-2\n", "n.csv")
        #expect(Self.ioError(negative) { try Labels.read(negative, column: .name("label")) }?.detail
                == "label at index 1 is -2, outside 0..<2147483648 (labels must fit an Int32)")
        #expect(Self.ioError(table) { try Labels.read(table, column: .name("missing")) }?.detail.contains("no column 'missing'") == true)
        #expect(Self.ioError(table) { try Labels.read(table, column: .index(2)) }?.kind == .invalidValue)
        let npy = try Self.npy([Int32(0)])
        #expect(Self.ioError(npy) { try Labels.read(npy, column: .name("label")) }?.detail.contains(".csv") == true)
    }

    @Test func missingAndMalformedFiles() throws {
        let missing = Fixtures.temporaryPath("absent.npy")
        #expect(Self.ioError(missing) { try Labels.read(missing) }?.kind == .notFound)
        let garbage = try Self.text("not an npy file", "g.npy")
        #expect(Self.ioError(garbage) { try Labels.read(garbage) } != nil)
    }
}
