import FaultlineLinalg
import Foundation
import _TestSupport
import Testing

/// `Linalg.blockedProduct` against the float64 triple loop for families of shapes, block and tile sizes
/// and regions on every backend; the tiles' coverage and order; bit-identity for 1 and 2 threads; the
/// in-process thread knob and OpenBLAS's single-thread scope.
@Suite("blocked product", .serialized)
struct BlockedProductTests {
    static var backends: [Backend] { Backend.allCases.filter(\.isAvailable) }

    /// Runs the product and returns it as a dense matrix (entries outside the region stay NaN), checking
    /// that every tile lies in the region, tiles of a block come in ascending column order, and the
    /// epilogue is called once per block when op(B) has no columns.
    static func product(_ a: Matrix<Float>, _ b: Matrix<Float>, transB: Transpose, region: Linalg.ProductRegion, blockRows: Int,
                        tileColumns: Int?, backend: Backend) -> (Matrix<Float>, calls: Int) {
        let n = a.rows, m = transB == .none ? b.columns : b.rows
        var out = Matrix<Float>(rows: n, columns: m)
        out.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = .nan } }
        var calls = 0, nextColumn = [Int](repeating: 0, count: (n + blockRows - 1) / blockRows)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    let bp = MatrixPointer(pb.baseAddress!, rows: b.rows, columns: b.columns)
                    Linalg.blockedProduct(MatrixPointer(pa.baseAddress!, rows: n, columns: a.columns), bp, transB: transB, region: region,
                                          blockRows: blockRows, tileColumns: tileColumns, backend: backend) { tile in
                        // Serialised by the test's 1-thread setting below, so the bookkeeping may be shared.
                        calls += 1
                        #expect(tile.rows == (tile.block * blockRows)..<min(n, (tile.block + 1) * blockRows))
                        #expect(tile.columns.lowerBound == nextColumn[tile.block])
                        nextColumn[tile.block] = tile.columns.upperBound
                        #expect(tile.columns.upperBound <= (region == .lowerProduct ? tile.rows.upperBound : m))
                        for r in 0..<tile.rows.count {
                            for c in 0..<tile.columns.count { po[(tile.rows.lowerBound + r) * m + tile.columns.lowerBound + c] = tile.row(r)[c] }
                        }
                    }
                }
            }
        }
        for (block, column) in nextColumn.enumerated() {
            let end = region == .lowerProduct ? min(n, (block + 1) * blockRows) : m
            #expect(column == end, "block \(block) ended at column \(column), not \(end)")
        }
        return (out, calls)
    }

    @Test(arguments: [Linalg.ProductRegion.full, .lowerProduct, .lowerOperand])
    func agreesWithTheFloat64ProductOnEveryBackend(region: Linalg.ProductRegion) throws {
        for n in [0, 1, 5, 17, 70] {
            for (m0, k0) in [(0, 3), (1, 1), (9, 7), (33, 40)] {
                for transB in [Transpose.none, .transposed] {
                    // The lower regions need a square product or a square A.
                    let m = region == .lowerProduct ? n : m0, k = region == .lowerOperand ? n : k0
                    let a: Matrix<Float> = Oracle.random(n, k, seed: UInt64(n * 7 + k))
                    let b: Matrix<Float> = transB == .none ? Oracle.random(k, m, seed: 3) : Oracle.random(m, k, seed: 3)
                    let lifted = Oracle.lift(a), liftedB = Oracle.lift(b, transB)
                    for (blockRows, tileColumns) in [(1, nil), (7, 1), (16, 8), (512, nil)] as [(Int, Int?)] {
                        // Float64 oracle over the region: lowerOperand reads A only up to the end of the row's block.
                        var want = [[Double]](repeating: [Double](repeating: 0, count: m), count: n), scale = want
                        for i in 0..<n {
                            let blockEnd = min(n, (i / blockRows + 1) * blockRows)
                            for p in 0..<(region == .lowerOperand ? blockEnd : k) {
                                for j in 0..<m { want[i][j] += lifted[i][p] * liftedB[p][j]; scale[i][j] += abs(lifted[i][p] * liftedB[p][j]) }
                            }
                        }
                        for backend in Self.backends {
                            let (got, calls) = Linalg.withThreads(1) {
                                Self.product(a, b, transB: transB, region: region, blockRows: blockRows, tileColumns: tileColumns, backend: backend)
                            }
                            if m == 0 { #expect(calls == (n + blockRows - 1) / blockRows) }
                            for i in 0..<n {
                                let blockEnd = min(n, (i / blockRows + 1) * blockRows)
                                for j in 0..<m {
                                    if region == .lowerProduct && j >= blockEnd { #expect(got[i, j].isNaN); continue }
                                    #expect(abs(Double(got[i, j]) - want[i][j]) <= 1e-5 * (1 + scale[i][j]),
                                            "\(backend) \(region) n \(n) m \(m) k \(k) block \(blockRows) tile \(tileColumns ?? -1): [\(i), \(j)]")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The prologue form (A written block by block into the task's workspace) gives the same product
    /// as A in memory, on every backend.
    @Test func prologueFormMatchesTheMatrixForm() throws {
        let a: Matrix<Float> = Oracle.random(300, 24, seed: 5), b: Matrix<Float> = Oracle.random(24, 19, seed: 6)
        for backend in Self.backends {
            func run(prologue: Bool) -> Matrix<Float> {
                var out = Matrix<Float>(rows: 300, columns: 19)
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        out.withUnsafeMutableBufferPointer { po in
                            let (src, dst) = (pa.baseAddress!, po.baseAddress!)
                            let bp = MatrixPointer(pb.baseAddress!, rows: 24, columns: 19)
                            let epilogue = { (tile: Linalg.ProductTile<Float>) in
                                for r in 0..<tile.rows.count { (dst + (tile.rows.lowerBound + r) * 19).update(from: tile.row(r), count: 19) }
                            }
                            if prologue {
                                Linalg.blockedProduct(rows: 300, depth: 24, prologue: { rows, into, _ in
                                    for r in 0..<rows.count { (into.base + r * into.rowStride).update(from: src + (rows.lowerBound + r) * 24, count: 24) }
                                }, bp, blockRows: 64, backend: backend, epilogue: epilogue)
                            } else {
                                Linalg.blockedProduct(MatrixPointer(src, rows: 300, columns: 24), bp, blockRows: 64, backend: backend, epilogue: epilogue)
                            }
                        }
                    }
                }
                return out
            }
            #expect(Self.bits(run(prologue: false)) == Self.bits(run(prologue: true)), "\(backend)")
        }
    }

    static func bits(_ m: Matrix<Float>) -> [UInt32] { m.withUnsafeBufferPointer { $0.map(\.bitPattern) } }

    /// Products of sizes where OpenBLAS splits its sgemm over threads (and rounds differently with 1 and
    /// 2 of them) are bit-identical for 1 and 2 threads; on simd they also equal one whole `gemm`.
    @Test func bitIdenticalForOneAndTwoThreads() throws {
        for (n, m, k) in [(700, 300, 21), (64, 64, 512)] {
            let a: Matrix<Float> = Oracle.random(n, k, seed: 11), b: Matrix<Float> = Oracle.random(m, k, seed: 12)
            for backend in Self.backends where backend != .reference || n < 100 {
                func run() -> Matrix<Float> {
                    var out = Matrix<Float>(rows: n, columns: m)
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            out.withUnsafeMutableBufferPointer { po in
                                let dst = po.baseAddress!
                                Linalg.blockedProduct(MatrixPointer(pa.baseAddress!, rows: n, columns: k), MatrixPointer(pb.baseAddress!, rows: m, columns: k),
                                                      transB: .transposed, blockRows: 128, tileColumns: 256, backend: backend) { tile in
                                    for r in 0..<tile.rows.count {
                                        (dst + (tile.rows.lowerBound + r) * m + tile.columns.lowerBound).update(from: tile.row(r), count: tile.columns.count)
                                    }
                                }
                            }
                        }
                    }
                    return out
                }
                let one = Linalg.withThreads(1) { run() }, two = Linalg.withThreads(2) { run() }
                #expect(Self.bits(one) == Self.bits(two), "\(backend) \(n)×\(m)×\(k)")
                if backend == .simd {
                    let whole = try Linalg.withThreads(2) { try Linalg.matmul(a, b, transB: .transposed, backend: .simd) }
                    #expect(Self.bits(one) == Self.bits(whole))
                }
            }
        }
    }

    /// Whether OpenBLAS runs `count` threads within a few seconds: a test running beside this one may hold
    /// a `withSingleThread` scope (convolutions, blocked products), and the configured count applies when
    /// the last scope closes.
    static func activeThreadsReach(_ count: Int) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while NativeBLAS.activeThreads != count {
            if Date() > deadline { return false }
            usleep(200)
        }
        return true
    }

    @Test func threadKnobSetsBothCountsAndRestoresThem() throws {
        let (ours, blas) = (Linalg.simdThreads, NativeBLAS.threads)
        for count in [1, 2, 3] {
            Linalg.withThreads(count) {
                #expect(Linalg.simdThreads == count)
                if Backend.blas.isAvailable {
                    #expect(NativeBLAS.threads == count)
                    #expect(Self.activeThreadsReach(count))
                    NativeBLAS.withSingleThread {
                        #expect(NativeBLAS.activeThreads == 1)
                        NativeBLAS.withSingleThread { #expect(NativeBLAS.activeThreads == 1) }
                        #expect(NativeBLAS.activeThreads == 1)
                        #expect(NativeBLAS.threads == count)  // the configured count, applied on exit
                    }
                    #expect(Self.activeThreadsReach(count))
                }
            }
        }
        #expect(Linalg.simdThreads == ours)
        #expect(NativeBLAS.threads == blas)
        // Inside the product's tasks OpenBLAS runs on one thread, and the count comes back afterwards.
        if Backend.blas.isAvailable {
            try Linalg.withThreads(2) {
                let a: Matrix<Float> = Oracle.random(40, 8, seed: 1)
                var seen = Set<Int>()
                a.withUnsafeBufferPointer { pa in
                    let p = MatrixPointer(pa.baseAddress!, rows: 40, columns: 8)
                    Linalg.blockedProduct(p, p, transB: .transposed, blockRows: 40, backend: .blas) { _ in seen.insert(NativeBLAS.activeThreads) }
                }
                #expect(seen == [1])
                #expect(Self.activeThreadsReach(2))
                _ = try Linalg.matmul(a, a, transB: .transposed, backend: .blas)
            }
        }
    }
}
