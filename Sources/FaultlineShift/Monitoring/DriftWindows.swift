import FaultlineIO
import FaultlineLinalg

/// One window of a long stream of rows tested against a `DriftReference`: rows
/// firstRow..<firstRow + rows, how many features drifted (adjusted p < α) and the worst one.
public struct DriftWindow: Sendable, Codable, Equatable {
    /// 0-based: window i covers rows i·stride ..< i·stride + window.
    public var index: Int
    /// The window's first row in the stream.
    public var firstRow: Int
    /// Rows in the window (every window is complete: `window` rows).
    public var rows: Int
    /// How many features drifted (adjusted p < α).
    public var driftedFeatures: Int
    /// The smallest adjusted p-value over the features, and its feature.
    public var smallestAdjustedPValue: Double
    /// The worst feature's name.
    public var worstFeature: String
    /// The worst feature's KS statistic D.
    public var worstStatistic: Double
    /// Whether any feature drifted.
    public var drift: Bool

    init(index: Int, firstRow: Int, _ check: DriftCheck) {
        let worst = check.worst
        (self.index, self.firstRow, rows, driftedFeatures) = (index, firstRow, check.rows, check.driftedCount)
        (smallestAdjustedPValue, worstFeature, worstStatistic, drift) = (worst.adjustedPValue, worst.name, worst.statistic, check.drift)
    }
}

extension DriftReference {
    /// The number of complete windows of `window` rows, `stride` apart, in `rows` rows:
    /// ⌊(rows − window)/stride⌋ + 1, or 0 when rows < window.
    public static func windowCount(rows: Int, window: Int, stride: Int) -> Int {
        guard window >= 1, stride >= 1, rows >= window else { return 0 }
        return (rows - window) / stride + 1
    }

    static func checkWindow(_ window: Int, _ stride: Int, rows: Int, source: String) throws {
        guard window >= 1 else { throw ShiftError.invalidInput("the window must hold at least 1 row, not \(window)") }
        guard stride >= 1 else { throw ShiftError.invalidInput("the stride must be at least 1 row, not \(stride)") }
        guard rows >= window else {
            throw ShiftError.invalidInput("\(source) has \(rows) rows, fewer than one window of \(window); use a smaller window")
        }
    }

    /// Every complete window of `window` rows, `stride` rows apart, of a matrix in memory, each tested
    /// as `check` tests a batch. Throws for a width other than D, non-finite values, a window or
    /// stride < 1, or fewer rows than one window. O(windows · D · window log window).
    public func windows(_ current: Matrix<Float>, window: Int, stride: Int) throws -> [DriftWindow] {
        guard current.columns == features else {
            throw ShiftError.invalidInput("the current data has \(current.columns) features per row, the reference \(features)")
        }
        try Self.checkWindow(window, stride, rows: current.rows, source: "the current data")
        return try current.withUnsafeBufferPointer { p in
            if let bad = p.firstIndex(where: { !$0.isFinite }) {
                throw ShiftError.invalidInput("current row \(bad / features), column \(bad % features) is \(p[bad]); values must be finite")
            }
            return (0..<Self.windowCount(rows: current.rows, window: window, stride: stride)).map { i in
                DriftWindow(index: i, firstRow: i * stride, check(rows: p.baseAddress! + i * stride * features, count: window))
            }
        }
    }

    /// Streams a `.npy` file of rows (any numeric dtype, C order; rank ≥ 1, higher ranks flattened per
    /// row) through the memory-mapped reader in blocks of at most `blockRows` rows, keeping only the last
    /// `window` rows (a ring buffer: window × D float32) and calling `body` with each complete window
    /// in order. The resident memory is the ring, one block, one scratch column per thread and the
    /// reference; the file's pages are released as each block is copied (`NPY.rowBlocks`), so files
    /// larger than memory stream in bounded memory. Returns the number of windows. Throws the reader's
    /// `IOError`s, and `ShiftError.invalidInput` for a width other than D, a non-finite value (naming
    /// its row and column), a window or stride < 1, or a file shorter than one window; the window is
    /// checked against the file's row count before the ring is allocated.
    @discardableResult
    public func windows(npy path: String, window: Int, stride: Int, blockRows: Int = 4096,
                        _ body: (DriftWindow) throws -> Void) throws -> Int {
        guard blockRows >= 1 else { throw ShiftError.invalidInput("blockRows must be at least 1, not \(blockRows)") }
        let blocks = try NPY.rowBlocks(path, blockRows: min(blockRows, max(window, 1)), as: Float.self)
        let (rows, columns) = blocks.shape
        guard columns == features else {
            throw ShiftError.invalidInput("\(path) has \(columns) features per row, the reference \(features)")
        }
        try Self.checkWindow(window, stride, rows: rows, source: path)
        let d = features
        let ring = UnsafeMutablePointer<Float>.allocate(capacity: window * d)
        defer { ring.deallocate() }
        var row = 0, emitted = 0
        for block in blocks {
            try block.withUnsafeBufferPointer { p in
                for i in 0..<block.rows {
                    let src = p.baseAddress! + i * d
                    for f in 0..<d where !src[f].isFinite {
                        throw ShiftError.invalidInput("\(path): row \(row), column \(f) is \(src[f]); values must be finite")
                    }
                    (ring + (row % window) * d).update(from: src, count: d)
                    row += 1
                    if row >= window && (row - window) % stride == 0 {
                        try body(DriftWindow(index: emitted, firstRow: row - window, check(rows: ring, count: window)))
                        emitted += 1
                    }
                }
            }
        }
        return emitted
    }
}
