import FaultlineLinalg
import _TestSupport
import Testing

@Suite("Matrix")
struct MatrixTests {
    @Test func shapeCheckedInitialisers() throws {
        let m = try Matrix<Float>(rows: 2, columns: 3, elements: [1, 2, 3, 4, 5, 6])
        #expect(m[1, 2] == 6)
        #expect(m.row(1).elementsEqual([4, 5, 6]))
        #expect(throws: LinalgError.self) { try Matrix<Float>(rows: 2, columns: 3, elements: [1, 2]) }
        #expect(throws: LinalgError.self) { try Matrix<Float>(rows: -1, columns: 3, elements: []) }
        #expect(throws: LinalgError.self) { try Matrix<Double>([[1, 2], [3]]) }
        let empty = try Matrix<Double>([])
        #expect(empty.rows == 0 && empty.columns == 0)
    }

    @Test func storageIs64ByteAligned() {
        for n in [1, 3, 17, 1000] {
            let m = Matrix<Float>(rows: n, columns: 3)
            m.withUnsafeBufferPointer { #expect(UInt(bitPattern: $0.baseAddress!) % 64 == 0) }
        }
    }

    @Test func copyOnWriteGivesValueSemantics() {
        var a = Matrix<Double>(rows: 2, columns: 2, repeating: 1)
        let b = a
        let row = a.row(0)
        a[0, 0] = 5
        #expect(b[0, 0] == 1)
        #expect(row[0] == 1)  // a row view keeps the storage it was taken from
        #expect(a[0, 0] == 5)
    }

    @Test func transposeAndConversion() throws {
        let m = try Matrix<Float>([[1, 2, 3], [4, 5, 6]])
        let t = m.transposed()
        #expect(t.rowArrays == [[1, 4], [2, 5], [3, 6]])
        #expect(t.transposed() == m)
        let big: Matrix<Float> = Oracle.random(67, 45, seed: 3)
        #expect(big.transposed().transposed() == big)
        #expect(big.transposed()[44, 66] == big[66, 44])
        #expect(m.converted(to: Double.self).rowArrays == [[1, 2, 3], [4, 5, 6]])
    }

    /// Row gathers and contiguous slices equal the element-by-element selection.
    @Test func gatherAndSliceRows() throws {
        let m = try Matrix<Float>((0..<5).map { i in (0..<3).map { Float(10 * i + $0) } })
        let gathered = m.gatherRows([4, 0, 4, 2])
        #expect(gathered.rowArrays == [[40, 41, 42], [0, 1, 2], [40, 41, 42], [20, 21, 22]])
        #expect(m.sliceRows(1..<3).rowArrays == [[10, 11, 12], [20, 21, 22]])
        #expect(m.gatherRows([]).rows == 0 && m.sliceRows(2..<2).rows == 0)
    }

    @Test func equalityTreatsNaNAsUnequal() {
        let a = Matrix<Float>(rows: 1, columns: 1, repeating: .nan)
        #expect(a != a)
        #expect(!a.isFinite)
    }
}
