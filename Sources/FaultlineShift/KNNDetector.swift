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
    /// The M × d reference features, each row L2-normalised.
    public let reference: Matrix<Float>  // M × d, rows normalised
    /// Which neighbour's distance is the score (1 = the nearest).
    public let k: Int

    /// Throws for k outside 1…M, empty or non-finite features.
    public init(reference features: Matrix<Float>, k: Int = 50) throws {
        guard features.rows > 0, features.columns > 0 else { throw ShiftError.invalidInput("no reference features") }
        guard k >= 1, k <= features.rows else { throw ShiftError.invalidInput("k = \(k) must lie in 1…\(features.rows) (the reference rows)") }
        guard features.isFinite else { throw ShiftError.invalidInput("reference features contain NaN or infinite values") }
        reference = KNNDetector.normalised(features)
        self.k = k
    }

    /// Features per row.
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
        let k = k
        var scores = [Float](repeating: 0, count: x.rows)
        scores.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            NeighbourSearch.run(rank: queries, against: reference, bias: nil, exact: queries, exactAgainst: reference,
                                kept: min(reference.rows, k + Self.candidateSlack), blockRows: blockRows, tileRows: tileRows,
                                backend: backend) { i, candidates in
                o[i] = Float(candidates[k - 1].squaredDistance.squareRoot())
            }
        }
        return scores
    }
}

/// The exact nearest-neighbour search shared by `KNNDetector` and `TrainTestDuplicates`.
///
/// Ranking: each block of query rows meets the reference rows tile by tile through
/// `Linalg.blockedProduct`, and keeps the `kept` largest ⟨q, r⟩ + bias[r] with their indices by insertion
/// (bias nil = 0: on unit vectors the largest inner products are the nearest; bias[r] = −‖r‖²/2 ranks by
/// Euclidean distance, since ‖q − r‖² = ‖q‖² − 2(⟨q, r⟩ − ‖r‖²/2)). Distances: the candidates' squared
/// distances are recomputed in Double from the differences of the `exact` rows (which may differ from the
/// ranked rows, e.g. centred copies), sorted by (distance, index), and handed to `visit(query, candidates)`
/// once per query from the task that ran its block (visits of distinct queries may run concurrently).
/// The true nearest are among the candidates unless more than `kept` − (wanted) references tie with them
/// within the float32 rounding of the ranking. Bit-identical for any thread count.
enum NeighbourSearch {
    struct Candidate {
        var squaredDistance: Double
        var index: Int
    }

    static func run(rank queries: Matrix<Float>, against reference: Matrix<Float>, bias: [Float]?, exact exactQueries: Matrix<Float>,
                    exactAgainst exactReference: Matrix<Float>, kept: Int, blockRows: Int, tileRows: Int, backend: Backend?,
                    visit: (Int, UnsafeBufferPointer<Candidate>) -> Void) {
        let n = queries.rows, m = reference.rows, d = queries.columns, de = exactQueries.columns
        precondition(m <= Int(Int32.max), "more references than 32-bit candidate indices hold")
        precondition(kept >= 1 && kept <= m && exactQueries.rows == n && exactReference.rows == m && reference.columns == d
                     && exactReference.columns == de && (bias?.count ?? m) == m, "NeighbourSearch: inconsistent shapes")
        if n == 0 { return }
        // best[i·kept …]: the `kept` largest ranking values of query i so far, in decreasing order, and their references.
        var best = [Float](repeating: -.infinity, count: n * kept), index = [Int32](repeating: 0, count: n * kept)
        let biasArray = bias ?? []
        queries.withUnsafeBufferPointer { q in
            reference.withUnsafeBufferPointer { ref in
                exactQueries.withUnsafeBufferPointer { eq in
                    exactReference.withUnsafeBufferPointer { eref in
                        best.withUnsafeMutableBufferPointer { pb in
                            index.withUnsafeMutableBufferPointer { pi in
                                biasArray.withUnsafeBufferPointer { pbias in
                                    let (bp, ip, eqs, erefs) = (pb.baseAddress!, pi.baseAddress!, eq.baseAddress!, eref.baseAddress!)
                                    let biased = bias != nil ? pbias.baseAddress : nil
                                    Linalg.blockedProduct(MatrixPointer(q.baseAddress!, rows: n, columns: d), MatrixPointer(ref.baseAddress!, rows: m, columns: d),
                                                          transB: .transposed, blockRows: max(1, blockRows), tileColumns: max(1, tileRows),
                                                          backend: backend) { tile in
                                        let c0 = tile.columns.lowerBound
                                        for r in 0..<tile.rows.count {
                                            let i = tile.rows.lowerBound + r, row = tile.row(r), best = bp + i * kept, index = ip + i * kept
                                            if let biased { for j in 0..<tile.columns.count { row[j] += biased[c0 + j] } }
                                            var floor = best[kept - 1]
                                            for j in 0..<tile.columns.count where row[j] > floor {
                                                var slot = kept - 1  // insertion into the sorted candidates
                                                while slot > 0 && best[slot - 1] < row[j] {
                                                    best[slot] = best[slot - 1]
                                                    index[slot] = index[slot - 1]
                                                    slot -= 1
                                                }
                                                best[slot] = row[j]
                                                index[slot] = Int32(c0 + j)
                                                floor = best[kept - 1]
                                            }
                                        }
                                        guard tile.columns.upperBound == m else { return }
                                        // Last tile: the candidates' exact distances from the differences, in Double.
                                        var exact = [Candidate](repeating: Candidate(squaredDistance: 0, index: 0), count: kept)
                                        for r in 0..<tile.rows.count {
                                            let i = tile.rows.lowerBound + r, query = eqs + i * de
                                            for c in 0..<kept {
                                                let j = Int(ip[i * kept + c]), candidate = erefs + j * de
                                                var s = 0.0
                                                for t in 0..<de { let e = Double(query[t]) - Double(candidate[t]); s += e * e }
                                                exact[c] = Candidate(squaredDistance: s, index: j)
                                            }
                                            exact.sort { $0.squaredDistance < $1.squaredDistance || ($0.squaredDistance == $1.squaredDistance && $0.index < $1.index) }
                                            exact.withUnsafeBufferPointer { visit(i, $0) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
