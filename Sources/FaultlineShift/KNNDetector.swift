import FaultlineLinalg

/// Deep nearest-neighbour OOD score (Sun et al. 2022): the Euclidean distance from the L2-normalised
/// feature to its k-th nearest L2-normalised reference feature (higher = more out-of-distribution;
/// pytorch-ood's `KNN`, norms clamped at 1e-12).
///
/// Exact search in two stages. Ranking: for unit vectors ‖q − r‖² = 2 − 2⟨q, r⟩, so each block of
/// queries meets the references tile by tile through `Linalg.blockedProduct` and keeps the
/// `k + candidateSlack` largest inner products with their indices by insertion. Distances: the candidates' distances are
/// recomputed from the differences q − r in Double and the k-th smallest is the score, so a duplicate of
/// a reference scores exactly 0 and near neighbours carry float32 rounding of the inputs only (the
/// float32 expansion alone errs by up to ~5e-4 near 0). The slack keeps the true k nearest among the
/// candidates unless more than `candidateSlack` references tie with the k-th within the GEMM's rounding.
/// Cost N·M·d·2 flops for N queries and M references, plus N·(k + slack)·d; memory N·(k + slack)
/// candidates and one block × tile of products per task. Bit-identical for any thread count.
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
    /// Blocks of `blockRows` queries run in parallel through `Linalg.blockedProduct`, meeting the
    /// references `tileRows` at a time (so the scores are bit-identical for any thread count); `backend`
    /// runs the GEMMs on that backend. Memory: (k + slack) candidates per query, blockRows × tileRows
    /// products per task.
    public func score(_ x: Matrix<Float>, blockRows: Int = 256, tileRows: Int = 4096, backend: Backend? = nil) throws -> [Float] {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the detector \(dimension)") }
        guard x.isFinite else { throw ShiftError.invalidInput("features contain NaN or infinite values") }
        let queries = KNNDetector.normalised(x)
        let n = x.rows, m = reference.rows, d = dimension, kept = min(m, k + Self.candidateSlack), k = k
        precondition(m <= Int(Int32.max), "more references than 32-bit candidate indices hold")
        var scores = [Float](repeating: 0, count: n)
        // best[i·kept …]: the `kept` largest inner products of query i so far, in decreasing order, and their references.
        var best = [Float](repeating: -.infinity, count: n * kept), index = [Int32](repeating: 0, count: n * kept)
        queries.withUnsafeBufferPointer { q in
            reference.withUnsafeBufferPointer { ref in
                scores.withUnsafeMutableBufferPointer { out in
                    best.withUnsafeMutableBufferPointer { pb in
                        index.withUnsafeMutableBufferPointer { pi in
                            let (refs, o, bp, ip) = (ref.baseAddress!, out.baseAddress!, pb.baseAddress!, pi.baseAddress!)
                            Linalg.blockedProduct(MatrixPointer(q.baseAddress!, rows: n, columns: d), MatrixPointer(refs, rows: m, columns: d),
                                                  transB: .transposed, blockRows: max(1, blockRows), tileColumns: max(1, tileRows),
                                                  backend: backend) { tile in
                                for r in 0..<tile.rows.count {
                                    let i = tile.rows.lowerBound + r, row = tile.row(r), best = bp + i * kept, index = ip + i * kept
                                    var floor = best[kept - 1]
                                    for j in 0..<tile.columns.count where row[j] > floor {
                                        var slot = kept - 1  // insertion into the sorted candidates
                                        while slot > 0 && best[slot - 1] < row[j] {
                                            best[slot] = best[slot - 1]
                                            index[slot] = index[slot - 1]
                                            slot -= 1
                                        }
                                        best[slot] = row[j]
                                        index[slot] = Int32(tile.columns.lowerBound + j)
                                        floor = best[kept - 1]
                                    }
                                }
                                guard tile.columns.upperBound == m else { return }
                                // Last tile: the candidates' exact distances from the differences, in Double.
                                var exact = [Double](repeating: 0, count: kept)
                                for r in 0..<tile.rows.count {
                                    let i = tile.rows.lowerBound + r, query = tile.a.base + r * tile.a.rowStride
                                    for c in 0..<kept {
                                        let candidate = refs + Int(ip[i * kept + c]) * d
                                        exact[c] = (0..<d).reduce(0.0) { s, j in let e = Double(query[j]) - Double(candidate[j]); return s + e * e }
                                    }
                                    exact.sort()
                                    o[i] = Float(exact[k - 1].squareRoot())
                                }
                            }
                        }
                    }
                }
            }
        }
        return scores
    }
}
