/// Which rows of a data set each rank of a job owns: contiguous ranges in rank order that cover
/// 0 ..< rows exactly once (a rank may own none when there are fewer rows than ranks).
public enum RowSplit {
    /// Rank `rank` of `size`'s rows when they are split as evenly as possible: the first rows % size
    /// ranks get one row more (`Linalg.partition`). O(1).
    public static func even(rows: Int, rank: Int, size: Int) -> Range<Int> {
        precondition(rows >= 0 && size >= 1 && rank >= 0 && rank < size, "RowSplit.even(rows: \(rows), rank: \(rank), size: \(size))")
        return Linalg.partition(rows, parts: size, part: rank)
    }

    /// Rank `rank` of `size`'s rows when they are split along the `blocks` fixed reduction blocks of the
    /// single-process kernels (`Linalg.partition(rows, parts: min(rows, blocks))`, 64 by default): each
    /// rank owns whole blocks, min(rows, blocks) split evenly over the ranks. A distributed sum that
    /// gathers the per-block partial sums and adds them in block order is then bit-identical to the
    /// one-process sum. Load balance: ranks differ by at most one block (with 64 blocks and K ranks,
    /// ⌈64/K⌉ / (64/K) of the mean: 3 % at K = 3, 50 % at K = 48). O(1).
    public static func blockAligned(rows: Int, rank: Int, size: Int, blocks: Int = Linalg.reductionParts) -> Range<Int> {
        precondition(rows >= 0 && size >= 1 && rank >= 0 && rank < size && blocks >= 1,
                     "RowSplit.blockAligned(rows: \(rows), rank: \(rank), size: \(size), blocks: \(blocks))")
        let parts = Swift.min(rows, blocks)
        guard parts > 0 else { return 0..<0 }
        let mine = Linalg.partition(parts, parts: size, part: rank)
        return blockStart(mine.lowerBound, rows: rows, parts: parts)..<blockStart(mine.upperBound, rows: rows, parts: parts)
    }

    /// The blocks (of `Linalg.partition(rows, parts: min(rows, blocks))`) that `blockAligned` gives `rank`.
    public static func blockRange(rows: Int, rank: Int, size: Int, blocks: Int = Linalg.reductionParts) -> Range<Int> {
        let parts = Swift.min(rows, blocks)
        guard parts > 0 else { return 0..<0 }
        return Linalg.partition(parts, parts: size, part: rank)
    }

    /// First row of block `j` of `Linalg.partition(rows, parts: parts)` (j = parts gives rows).
    static func blockStart(_ j: Int, rows: Int, parts: Int) -> Int {
        let (q, r) = rows.quotientAndRemainder(dividingBy: parts)
        return j * q + Swift.min(j, r)
    }
}
