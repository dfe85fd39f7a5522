import FaultlineLinalg

/// Deep nearest-neighbour OOD score (Sun et al. 2022): the Euclidean distance from the L2-normalised
/// feature to its k-th nearest L2-normalised reference feature (higher = more out-of-distribution;
/// pytorch-ood's `KNN`, norms clamped at 1e-12).
///
/// Exact search in two stages. Ranking: for unit vectors ‖q − r‖² = 2 − 2⟨q, r⟩, so each block of
/// queries meets the references tile by tile through one GEMM and keeps the `k + candidateSlack`
/// largest inner products with their indices by insertion. Distances: the candidates' distances are
/// recomputed from the differences q − r in Double and the k-th smallest is the score, so a duplicate of
/// a reference scores exactly 0 and near neighbours carry float32 rounding of the inputs only (the
/// float32 expansion alone errs by up to ~5e-4 near 0). The slack keeps the true k nearest among the
/// candidates unless more than `candidateSlack` references tie with the k-th within the GEMM's rounding.
/// Cost N·M·d·2 flops for N queries and M references, plus N·(k + slack)·d; memory one block × tile of
/// products.
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

    /// Candidates kept beyond k for the exact recomputation of the distances.
    public static let candidateSlack = 16

    /// The k-th neighbour distance of every row of `x`. Throws on a dimension mismatch or non-finite input.
    public func score(_ x: Matrix<Float>, blockRows: Int = 1024, tileRows: Int = 4096) throws -> [Float] {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the detector \(dimension)") }
        guard x.isFinite else { throw ShiftError.invalidInput("features contain NaN or infinite values") }
        let queries = KNNDetector.normalised(x)
        let n = x.rows, m = reference.rows, d = dimension, kept = min(m, k + Self.candidateSlack)
        var scores = [Float](repeating: 0, count: n)
        let block = max(1, min(blockRows, n)), tile = max(1, min(tileRows, m))
        var products = Matrix<Float>(uninitializedRows: block, columns: tile)
        // best[r·kept …]: the `kept` largest inner products of query r so far, in decreasing order, and their references.
        var best = [Float](repeating: -.infinity, count: block * kept), index = [Int](repeating: 0, count: block * kept)
        var exact = [Double](repeating: 0, count: kept)
        queries.withUnsafeBufferPointer { q in
            reference.withUnsafeBufferPointer { ref in
                for first in stride(from: 0, to: n, by: block) {
                    let rows = min(block, n - first)
                    for r in 0..<(rows * kept) { best[r] = -.infinity }
                    for start in stride(from: 0, to: m, by: tile) {
                        let cols = min(tile, m - start)
                        products.withUnsafeMutableBufferPointer { pp in
                            Linalg.gemm(MatrixPointer(q.baseAddress! + first * d, rows: rows, columns: d),
                                        MatrixPointer(ref.baseAddress! + start * d, rows: cols, columns: d), transB: .transposed,
                                        into: MutableMatrixPointer(pp.baseAddress!, rows: rows, columns: cols))
                            for r in 0..<rows {
                                let row = pp.baseAddress! + r * cols, last = r * kept + kept - 1
                                var floor = best[last]
                                for j in 0..<cols where row[j] > floor {
                                    var slot = kept - 1  // insertion into the sorted candidates
                                    while slot > 0 && best[r * kept + slot - 1] < row[j] {
                                        best[r * kept + slot] = best[r * kept + slot - 1]
                                        index[r * kept + slot] = index[r * kept + slot - 1]
                                        slot -= 1
                                    }
                                    best[r * kept + slot] = row[j]
                                    index[r * kept + slot] = start + j
                                    floor = best[last]
                                }
                            }
                        }
                    }
                    for r in 0..<rows {
                        let query = q.baseAddress! + (first + r) * d
                        for c in 0..<kept {
                            let candidate = ref.baseAddress! + index[r * kept + c] * d
                            exact[c] = (0..<d).reduce(0.0) { s, j in let e = Double(query[j]) - Double(candidate[j]); return s + e * e }
                        }
                        exact.sort()
                        scores[first + r] = Float(exact[k - 1].squareRoot())
                    }
                }
            }
        }
        return scores
    }
}
