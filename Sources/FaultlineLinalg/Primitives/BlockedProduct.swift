import Synchronization

extension Linalg {
    /// Which part of a product `blockedProduct` forms.
    public enum ProductRegion: Sendable {
        /// Every row block against every column of op(B).
        case full
        /// Only the blocks on or below the block diagonal of a square product (n rows, n columns): row
        /// block I gets the columns 0..<I.upperBound. E.g. a Gram matrix Z·Zᵀ of which the lower half suffices.
        case lowerProduct
        /// A is block lower triangular (square, depth n): row block I reads A's columns 0..<I.upperBound and
        /// op(B)'s rows 0..<I.upperBound, the columns of A past them are never read (they may hold anything).
        case lowerOperand
    }

    /// One tile of a `blockedProduct`, handed to the caller's epilogue: the rows `rows` of the product
    /// restricted to the columns `columns`.
    public struct ProductTile<T: LinalgScalar> {
        /// The block's index: rows = block·blockRows ..< min((block + 1)·blockRows, n).
        public let block: Int
        /// The rows of A (and of the product) in this block.
        public let rows: Range<Int>
        /// The columns of the product in this tile.
        public let columns: Range<Int>
        /// The block's rows of A (rows.count × depth): the caller's A, or what the prologue wrote.
        public let a: MatrixPointer<T>
        /// rows.count × columns.count: element (r, c) is product[rows.lowerBound + r, columns.lowerBound + c].
        /// A workspace of the running task, reused for its next tile: the epilogue may overwrite it, and
        /// must copy out what it keeps.
        public let product: MutableMatrixPointer<T>

        /// Row `r` (0..<rows.count) of the tile's product.
        @inline(__always)
        public func row(_ r: Int) -> UnsafeMutablePointer<T> { product.base + r * product.rowStride }
    }

    /// Rows per block of `blockedProduct` when the caller gives none.
    public static let productBlockRows = 512

    /// Blocked product with a per-tile epilogue: for every block of `blockRows` consecutive rows of A and
    /// every tile of `tileColumns` columns of op(B) (in ascending column order within a block), computes the
    /// tile A_block·op(B)_tile into a workspace and calls `epilogue` with it. This is the "GEMM a row block,
    /// then reduce each row" loop of the nearest-neighbour, Mahalanobis and MMD kernels, in one place.
    ///
    /// - Contract: op(A) = A is n×k, op(B) is k×m (`transB`); A must not overlap the workspace (it is
    ///   caller memory). Blocks run in parallel on up to `Linalg.simdThreads` tasks; the tiles of one block
    ///   run in order in one task, so an epilogue may carry per-row state from tile to tile (and finish it
    ///   when `columns.upperBound` reaches the last column). The epilogue of a block must write only memory
    ///   no other block writes (e.g. the rows of an output, or a slot indexed by `block`); a reduction over
    ///   blocks goes through per-block slots merged in block order afterwards. It is called once per block
    ///   even when op(B) has no columns (with an empty tile), so it also serves "transform a row block, then
    ///   reduce" without a product. Any Faultline primitive called from the epilogue runs single-threaded.
    /// - Shapes are preconditions (a kernel's entry point, as the pointer form of `gemm`); `blockRows ≥ 1`.
    /// - Accuracy: each element is the backend's `gemm` of the block (see `gemm`), i.e. ~k·u·Σ|a||b|.
    /// - Cost: 2·n·m·k flops (about half for the lower regions), workspace per task blockRows × tileColumns
    ///   (plus blockRows × k for the prologue form), never an n×m matrix.
    /// - Determinism: the blocks and tiles are a function of (n, m, k, blockRows, tileColumns) only, never of
    ///   the thread count, and each tile is one single-threaded `gemm` of the chosen backend: on `blas` every
    ///   call runs with OpenBLAS limited to one thread (`NativeBLAS.withSingleThread`, restored afterwards), on
    ///   `simd` the packed kernel runs inside the task. So every product element, and so every epilogue input,
    ///   is bit-identical for any `FAULTLINE_THREADS` / `Linalg.setThreads` value and any scheduling.
    public static func blockedProduct<T: LinalgScalar>(
        _ a: MatrixPointer<T>, _ b: MatrixPointer<T>, transB: Transpose = .none, region: ProductRegion = .full,
        blockRows: Int = productBlockRows, tileColumns: Int? = nil, backend: Backend? = nil,
        epilogue: (ProductTile<T>) -> Void
    ) {
        blockedProduct(rows: a.rows, depth: a.columns, source: a, prologue: { _, _, _ in }, b, transB: transB, region: region,
                       blockRows: blockRows, tileColumns: tileColumns, backend: backend, epilogue: epilogue)
    }

    /// `blockedProduct` whose A is produced one block at a time: `prologue(rows, into, backend)` writes the
    /// rows `rows` of A (rows.count × `depth`) into the task's workspace `into`, e.g. centring and whitening a
    /// block of features, so A never exists whole. The prologue runs in the block's task, before its tiles;
    /// it may call Faultline primitives with the `backend` it is given (they run single-threaded there, so
    /// its result is as thread-count independent as the product's). Contract, cost and determinism as above.
    public static func blockedProduct<T: LinalgScalar>(
        rows n: Int, depth k: Int, prologue: (_ rows: Range<Int>, _ into: MutableMatrixPointer<T>, _ backend: Backend) -> Void,
        _ b: MatrixPointer<T>, transB: Transpose = .none, region: ProductRegion = .full,
        blockRows: Int = productBlockRows, tileColumns: Int? = nil, backend: Backend? = nil,
        epilogue: (ProductTile<T>) -> Void
    ) {
        blockedProduct(rows: n, depth: k, source: nil, prologue: prologue, b, transB: transB, region: region,
                       blockRows: blockRows, tileColumns: tileColumns, backend: backend, epilogue: epilogue)
    }

    private static func blockedProduct<T: LinalgScalar>(
        rows n: Int, depth k: Int, source: MatrixPointer<T>?, prologue: (Range<Int>, MutableMatrixPointer<T>, Backend) -> Void,
        _ b: MatrixPointer<T>, transB: Transpose, region: ProductRegion, blockRows: Int, tileColumns: Int?,
        backend requested: Backend?, epilogue: (ProductTile<T>) -> Void
    ) {
        let (kb, m) = b.shape(transB)
        precondition(n >= 0 && kb == k && blockRows >= 1 && (tileColumns ?? 1) >= 1,
                     "blockedProduct: A \(n)×\(k), op(B) \(kb)×\(m), blockRows \(blockRows), tileColumns \(tileColumns ?? m)")
        precondition(region == .full || (region == .lowerProduct ? m == n : k == n),
                     "blockedProduct: region \(region) needs a square \(region == .lowerProduct ? "product" : "A"), got A \(n)×\(k), op(B) \(kb)×\(m)")
        let backend = run(requested)
        if n == 0 { return }
        let blocks = (n - 1) / blockRows + 1, blockCapacity = min(blockRows, n)
        let tile = max(1, min(tileColumns ?? m, m))
        let workers = min(blocks, simdThreads)
        let counter = BlockCounter()
        func work(_: Int) {
            let aSpace = source != nil ? nil : AlignedBuffer<T>(uninitializedCount: blockCapacity * k)
            let productSpace = AlignedBuffer<T>(uninitializedCount: blockCapacity * tile)
            while true {
                let taken = counter.next()
                if taken >= blocks { break }
                // In the lower regions block I costs I + 1 units: hand out the largest first, so the last
                // block taken is the smallest and the tasks finish together (which task runs a block never
                // changes a result).
                let block = region == .full ? taken : blocks - 1 - taken
                let rows = (block * blockRows)..<min(n, (block + 1) * blockRows)
                let aBlock: MatrixPointer<T>
                if let aSpace {
                    let into = MutableMatrixPointer(aSpace.pointer, rows: rows.count, columns: k)
                    prologue(rows, into, backend)
                    aBlock = into.readOnly
                } else {
                    let a = source!
                    aBlock = MatrixPointer(a.base + rows.lowerBound * a.rowStride, rows: rows.count, columns: k, rowStride: a.rowStride)
                }
                let depth = region == .lowerOperand ? rows.upperBound : k
                let end = region == .lowerProduct ? rows.upperBound : m
                let aUsed = MatrixPointer(aBlock.base, rows: rows.count, columns: depth, rowStride: aBlock.rowStride)
                var start = 0
                repeat {
                    let columns = min(tile, end - start)
                    let product = MutableMatrixPointer(productSpace.pointer, rows: rows.count, columns: columns)
                    if columns > 0 {
                        let bTile = transB == .none
                            ? MatrixPointer(b.base + start, rows: depth, columns: columns, rowStride: b.rowStride)
                            : MatrixPointer(b.base + start * b.rowStride, rows: columns, columns: depth, rowStride: b.rowStride)
                        gemm(aUsed, bTile, transB: transB, into: product, backend: backend)
                    }
                    epilogue(ProductTile(block: block, rows: rows, columns: start..<(start + columns), a: aBlock, product: product))
                    start += columns
                } while start < end
            }
            withExtendedLifetime((aSpace, productSpace)) {}
        }
        if backend == .blas {
            NativeBLAS.withSingleThread { Parallel.forEach(workers, threads: workers, work) }
        } else {
            Parallel.forEach(workers, threads: workers, work)
        }
    }
}

/// Hands out block indices to the tasks of one `blockedProduct` (which task takes a block does not
/// change any result).
private final class BlockCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
