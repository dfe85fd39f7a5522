/// The `simd` backend's GEMM: C = alpha·op(A)·op(B) + beta·C in pure Swift.
///
/// BLIS structure: the k dimension is cut into `kc`-deep slabs; for each slab op(B) is packed once
/// into `nr`-wide column slivers (`nr` = `T.Vector.scalarCount`: 8 floats or 4 doubles) and each
/// `mc`-row block of op(A) is packed, with alpha folded in, into `mr = 6`-row slivers. A 6×nr register
/// tile (12 SSE registers of accumulators) is updated by a rank-1 product per k step, written with
/// separate `*` and `+` (on the default x86-64 target `addingProduct` becomes a libm `fmaf` call per
/// lane: docs/ARCHITECTURE.md, "SIMD code"). Row blocks of C run in parallel on `Linalg.simdThreads` threads; each task owns its
/// packed A and writes a disjoint part of C, so results do not depend on the thread count.
///
/// Accuracy: each element is a sum of k products accumulated in `T`, in an order that does not depend
/// on the thread count; error bound ~ k·u·Σ|a||b| like any BLAS.
enum SIMDGEMM {
    static let mr = 6
    static let kc = 192
    static let mc = 72  // multiple of mr
    static let nc = 4096

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func gemm<T: LinalgScalar>(
        _ ta: Transpose, _ a: MatrixPointer<T>, _ tb: Transpose, _ b: MatrixPointer<T>,
        alpha: T, beta: T, _ c: MutableMatrixPointer<T>, k: Int
    ) {
        let m = c.rows, n = c.columns
        if m == 0 || n == 0 { return }
        scale(c, by: beta)
        if k == 0 || alpha == 0 { return }
        let nr = T.Vector.scalarCount
        let threads = Linalg.simdThreads

        let ncEff = min(nc, roundUp(n, nr))
        let kcEff = min(kc, k)
        let packedB = AlignedBuffer<T>(uninitializedCount: kcEff * ncEff)
        // Row blocks of at most `mc` rows, as many as a multiple of the thread count so no thread idles
        // at the end of a slab.
        let perThread = (m + threads * mc - 1) / (threads * mc)
        let mcEff = min(mc, roundUp((m + threads * perThread - 1) / (threads * perThread), mr))
        let mBlocks = (m + mcEff - 1) / mcEff
        // Enough tasks for every thread: split the sliver range when there are few row blocks.
        let maxSlivers = (ncEff + nr - 1) / nr
        let nSplits = max(1, min(maxSlivers, (threads + mBlocks - 1) / mBlocks))
        let tasks = mBlocks * nSplits
        // One packed-A workspace per task, allocated once per call (not per slab).
        let packedAStride = roundUp(min(mcEff, m), mr) * kcEff * replication(T.self)
        let packedA = AlignedBuffer<T>(uninitializedCount: tasks * packedAStride)

        for jc in stride(from: 0, to: n, by: nc) {
            let nBlock = min(nc, n - jc)
            for pc in stride(from: 0, to: k, by: kc) {
                let kBlock = min(kc, k - pc)
                packB(tb, b, rows: pc, kBlock, columns: jc, nBlock, into: packedB.pointer)
                let slivers = (nBlock + nr - 1) / nr
                let work = { (task: Int) in
                    let mIndex = task / nSplits, split = task % nSplits
                    let ic = mIndex * mcEff
                    let mRows = min(mcEff, m - ic)
                    let s0 = split * slivers / nSplits, s1 = (split + 1) * slivers / nSplits
                    if s0 == s1 { return }
                    let aPanel = packedA.pointer + task * packedAStride
                    packA(ta, a, rows: ic, mRows, depth: pc, kBlock, alpha: alpha, into: aPanel)
                    for s in s0..<s1 {
                        let j = s * nr
                        let nCols = min(nr, nBlock - j)
                        let bSliver = packedB.pointer + j * kBlock
                        for ir in stride(from: 0, to: mRows, by: mr) {
                            let tile = c.base + (ic + ir) * c.rowStride + jc + j
                            microKernel(kBlock, aPanel + ir * kBlock * replication(T.self), bSliver, tile, c.rowStride,
                                        rows: min(mr, mRows - ir), columns: nCols)
                        }
                    }
                }
                Parallel.forEach(tasks, threads: threads, work)
            }
        }
        withExtendedLifetime((packedA, packedB)) {}
    }

    @inline(__always) static func roundUp(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }

    /// C ← beta·C; beta = 0 writes zeros without reading C (the BLAS convention: NaN in C is dropped).
    static func scale<T: LinalgScalar>(_ c: MutableMatrixPointer<T>, by beta: T) {
        if beta == 1 { return }
        for i in 0..<c.rows {
            let row = c.base + i * c.rowStride
            if beta == 0 {
                row.update(repeating: 0, count: c.columns)
            } else {
                for j in 0..<c.columns { row[j] *= beta }
            }
        }
    }

    /// Packs op(A)[i0..<i0+mRows, p0..<p0+kBlock]·alpha into mr-row slivers, each stored k-major
    /// (mr consecutive values per k); rows past the edge are zero.
    static func packA<T: LinalgScalar>(
        _ ta: Transpose, _ a: MatrixPointer<T>, rows i0: Int, _ mRows: Int, depth p0: Int, _ kBlock: Int,
        alpha: T, into dst: UnsafeMutablePointer<T>
    ) {
        let rep = replication(T.self)
        for ir in stride(from: 0, to: mRows, by: mr) {
            let sliver = dst + ir * kBlock * rep
            let live = min(mr, mRows - ir)
            if live < mr { sliver.update(repeating: 0, count: mr * kBlock * rep) }
            for r in 0..<live {
                let i = i0 + ir + r
                if ta == .none {
                    let src = a.base + i * a.rowStride + p0
                    for p in 0..<kBlock { replicate(alpha * src[p], into: sliver + (p * mr + r) * rep, rep) }
                } else {
                    let src = a.base + p0 * a.rowStride + i
                    for p in 0..<kBlock { replicate(alpha * src[p * a.rowStride], into: sliver + (p * mr + r) * rep, rep) }
                }
            }
        }
    }

    /// How many copies of each A value the packed panel holds: enough to fill 16 bytes, so the
    /// micro-kernel broadcasts with one aligned load instead of a load plus a shuffle (shuffles compete
    /// with the multiplies and adds for the FP ports on SSE targets).
    @inline(__always) static func replication<T>(_: T.Type) -> Int { 16 / MemoryLayout<T>.stride }

    @inline(__always)
    static func replicate<T>(_ value: T, into p: UnsafeMutablePointer<T>, _ count: Int) {
        for q in 0..<count { p[q] = value }
    }

    /// Packs op(B)[p0..<p0+kBlock, j0..<j0+nBlock] into nr-column slivers, each k-major (nr consecutive
    /// values per k); columns past the edge are zero.
    static func packB<T: LinalgScalar>(
        _ tb: Transpose, _ b: MatrixPointer<T>, rows p0: Int, _ kBlock: Int, columns j0: Int, _ nBlock: Int,
        into dst: UnsafeMutablePointer<T>
    ) {
        let nr = T.Vector.scalarCount
        for j in stride(from: 0, to: nBlock, by: nr) {
            let sliver = dst + j * kBlock
            let live = min(nr, nBlock - j)
            if tb == .none {
                for p in 0..<kBlock {
                    let src = b.base + (p0 + p) * b.rowStride + j0 + j
                    let out = sliver + p * nr
                    if live == nr {
                        out.update(from: src, count: nr)
                    } else {
                        for q in 0..<nr { out[q] = q < live ? src[q] : 0 }
                    }
                }
            } else {
                if live < nr { sliver.update(repeating: 0, count: nr * kBlock) }
                for q in 0..<live {
                    let src = b.base + (j0 + j + q) * b.rowStride + p0
                    for p in 0..<kBlock { sliver[p * nr + q] = src[p] }
                }
            }
        }
    }

    /// C[0..<rows, 0..<columns] += Apanel(6×k)·Bsliver(k×nr), accumulating the full 6×nr tile in
    /// registers and writing back only the live part.
    @inline(__always)
    static func microKernel<T: LinalgScalar>(
        _ k: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>, _ ldc: Int,
        rows: Int, columns: Int
    ) {
        typealias V = T.Vector
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        let bv = UnsafeRawPointer(b)
        var ap = UnsafeRawPointer(a)
        for p in 0..<k {
            let bp = bv.load(fromByteOffset: p * MemoryLayout<V>.stride, as: V.self)
            c0 = c0 + bp * T.loadBroadcast16(ap)
            c1 = c1 + bp * T.loadBroadcast16(ap + 16)
            c2 = c2 + bp * T.loadBroadcast16(ap + 32)
            c3 = c3 + bp * T.loadBroadcast16(ap + 48)
            c4 = c4 + bp * T.loadBroadcast16(ap + 64)
            c5 = c5 + bp * T.loadBroadcast16(ap + 80)
            ap += 96
        }
        let nr = V.scalarCount
        if rows == 6 && columns == nr {
            store(c0, c); store(c1, c + ldc); store(c2, c + 2 * ldc)
            store(c3, c + 3 * ldc); store(c4, c + 4 * ldc); store(c5, c + 5 * ldc)
        } else {
            withUnsafeTemporaryAllocation(of: V.self, capacity: 6) { tile in
                tile.initializeElement(at: 0, to: c0)  // a stack buffer: no heap allocation at edges
                tile.initializeElement(at: 1, to: c1)
                tile.initializeElement(at: 2, to: c2)
                tile.initializeElement(at: 3, to: c3)
                tile.initializeElement(at: 4, to: c4)
                tile.initializeElement(at: 5, to: c5)
                for r in 0..<rows {
                    for q in 0..<columns { c[r * ldc + q] += tile[r][q] }
                }
            }
        }
    }

    @inline(__always)
    static func store<T: LinalgScalar>(_ v: T.Vector, _ p: UnsafeMutablePointer<T>) {
        let raw = UnsafeMutableRawPointer(p)
        let old = UnsafeRawPointer(raw).loadUnaligned(as: T.Vector.self)
        raw.storeBytes(of: old + v, as: T.Vector.self)
    }
}
