import FaultlineLinalg

/// Deep nearest-neighbour OOD score (Sun et al. 2022): the Euclidean distance from the L2-normalised
/// feature to its k-th nearest L2-normalised reference feature (higher = more out-of-distribution;
/// pytorch-ood's `KNN`, norms clamped at 1e-12).
///
/// Exact search: for unit vectors ‖q − r‖² = 2 − 2⟨q, r⟩, so each block of queries meets the references
/// tile by tile through one GEMM and keeps its k largest inner products by insertion (k ≪ tile).
/// Cost N·M·d·2 flops for N queries and M references; memory one block × tile of products.
public struct KNNDetector: Sendable {
    public let reference: Matrix<Float>  // M × d, rows normalised
    public let k: Int

    /// Throws for k outside 1…M, empty or non-finite features.
    public init(reference features: Matrix<Float>, k: Int = 50) throws {
        guard features.rows > 0, features.columns > 0 else { throw ShiftError.invalidInput("no reference features") }
        guard k >= 1, k <= features.rows else { throw ShiftError.invalidInput("k = \(k) must lie in 1…\(features.rows) (the reference rows)") }
        guard features.isFinite else { throw ShiftError.invalidInput("reference features contain NaN or infinite values") }
        reference = KNNDetector.normalised(features)
        self.k = k
    }

    public var dimension: Int { reference.columns }

    /// A detector from already normalised reference rows (see `DetectorFile`).
    init(normalisedReference: Matrix<Float>, k: Int) {
        reference = normalisedReference
        self.k = k
    }

    static func normalised(_ x: Matrix<Float>) -> Matrix<Float> {
        var out = x
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<x.rows {
                let row = p.baseAddress! + i * x.columns
                var s = 0.0
                for j in 0..<x.columns { s += Double(row[j]) * Double(row[j]) }
                let scale = Float(1 / max(s.squareRoot(), 1e-12))
                for j in 0..<x.columns { row[j] *= scale }
            }
        }
        return out
    }

    /// The k-th neighbour distance of every row of `x`. Throws on a dimension mismatch or non-finite input.
    public func score(_ x: Matrix<Float>, blockRows: Int = 1024, tileRows: Int = 4096) throws -> [Float] {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the detector \(dimension)") }
        guard x.isFinite else { throw ShiftError.invalidInput("features contain NaN or infinite values") }
        let queries = KNNDetector.normalised(x)
        let n = x.rows, m = reference.rows, d = dimension
        var scores = [Float](repeating: 0, count: n)
        let block = max(1, min(blockRows, n)), tile = max(1, min(tileRows, m))
        var products = Matrix<Float>(uninitializedRows: block, columns: tile)
        // best[r·k …]: the k largest inner products of query r so far, in decreasing order.
        var best = [Float](repeating: -.infinity, count: block * k)
        queries.withUnsafeBufferPointer { q in
            reference.withUnsafeBufferPointer { ref in
                for first in stride(from: 0, to: n, by: block) {
                    let rows = min(block, n - first)
                    for r in 0..<(rows * k) { best[r] = -.infinity }
                    for start in stride(from: 0, to: m, by: tile) {
                        let cols = min(tile, m - start)
                        products.withUnsafeMutableBufferPointer { pp in
                            Linalg.gemm(MatrixPointer(q.baseAddress! + first * d, rows: rows, columns: d),
                                        MatrixPointer(ref.baseAddress! + start * d, rows: cols, columns: d), transB: .transposed,
                                        into: MutableMatrixPointer(pp.baseAddress!, rows: rows, columns: cols))
                            best.withUnsafeMutableBufferPointer { b in
                                for r in 0..<rows {
                                    let top = b.baseAddress! + r * k, row = pp.baseAddress! + r * cols
                                    for j in 0..<cols where row[j] > top[k - 1] {
                                        var slot = k - 1  // insertion into the sorted top-k
                                        while slot > 0 && top[slot - 1] < row[j] { top[slot] = top[slot - 1]; slot -= 1 }
                                        top[slot] = row[j]
                                    }
                                }
                            }
                        }
                    }
                    for r in 0..<rows { scores[first + r] = max(0, 2 - 2 * best[r * k + k - 1]).squareRoot() }
                }
            }
        }
        return scores
    }
}
