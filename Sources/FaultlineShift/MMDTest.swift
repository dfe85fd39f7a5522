import FaultlineLinalg

/// Kernel two-sample test with the maximum mean discrepancy (Gretton et al. 2012) and a permutation
/// null, as the W6 workload defines it.
///
/// Kernel k(u, v) = exp(−‖u − v‖²/(2s²)) with s² the median of the pooled sample's pairwise squared
/// distances (the median heuristic; or a given s²). Statistic: the unbiased MMD²_u (default), or the biased
/// V-statistic MMD²_b = mean K_xx + mean K_yy − 2·mean K_xy with the diagonals included (`estimator:
/// .biased`, Gretton et al.'s eq. 5; ≥ 0 always, with an O(1/n) positive bias). Null: the same
/// statistic for `permutations` random splits of the pooled sample into groups of sizes n and m;
/// p = (1 + #{null ≥ observed})/(1 + P).
///
/// Work: the kernel matrix once (N = n + m), only its blocks I ≥ J of 512 rows since K is symmetric (a
/// GEMM per block row for the distances, a vectorised exp), then every permutation at once: with A the
/// N×(P+1) matrix of group indicators, aᵀKa = Σ_I a_Iᵀ K_II a_I + 2 Σ_{I>J} a_Iᵀ (K_IJ a_J) is one GEMM
/// per block row and column tile of A — about half the flops of K·A — and each statistic follows from aᵀKa, aᵀK1 and the trace
/// of the group; no permuted kernel matrix is ever formed. The median comes from a histogram of the top
/// 16 bits filled during the distance pass and one more scan for the middle bucket. Memory N² floats
/// (half of them touched). Accumulations of the statistics in Double.
///
/// `backend` runs every primitive (GEMMs, norms, the exp tier) on that backend.
///
/// The permutation product runs in column tiles of a width fixed by P alone (`tileColumns(statistics:)`,
/// 64 for P = 500): one GEMM per block row and tile. `DistributedDrift.mmd` splits those tiles over the
/// ranks of a job and gets every statistic bit for bit.
///
/// Determinism: the result is bit-identical for any `FAULTLINE_THREADS` on every backend. Faultline's own
/// passes use fixed blocks and a fixed task count, and both products go through `Linalg.blockedProduct`,
/// whose per-block GEMMs run with OpenBLAS on one thread: OpenBLAS's sgemm itself rounds differently with
/// 1 and 2 threads (Debian 0.3.21, Haswell kernels: 3,294 of 10,752 elements of a 512×512×21 product
/// differ), which made MMD² change in its last float32 digits with the thread count before.
public enum MMDTest {
    /// Which MMD² estimate the test reports (and permutes).
    public enum Estimator: String, Sendable, Codable, CaseIterable {
        /// MMD²_u: the within-group sums exclude the diagonal, normalised by n(n − 1) and m(m − 1).
        case unbiased
        /// MMD²_b: all pairs including i = j, normalised by n², m² and n·m.
        case biased
    }

    /// The outcome of a test.
    public struct Result: Sendable, Codable {
        /// The kernel's s² (bandwidth squared).
        public var sigma2: Double
        /// The MMD² of the two samples as given (the estimator chosen).
        public var mmd2: Double
        /// MMD² of each permuted split: the null distribution.
        public var null: [Double]
        /// (1 + #{null ≥ observed}) / (1 + permutations).
        public var pValue: Double
    }

    /// Random permutations of 0..<n+m from Philox keyed by (seed, permutation), Fisher–Yates; the
    /// first n entries of each form the group that plays x.
    public static func permutations(count: Int, samples: Int, seed: UInt64) -> [[Int]] {
        permutations(0..<count, samples: samples, seed: seed)
    }

    /// Permutations `range` of `permutations(count:samples:seed:)`: permutation p depends on (seed, p)
    /// alone, so any rank can draw any subset of them.
    static func permutations(_ range: Range<Int>, samples: Int, seed: UInt64) -> [[Int]] {
        range.map { p in
            var rng = Philox(seed: seed, stream: UInt64(p))
            var order = Array(0..<samples)
            for i in stride(from: samples - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.uniform() * Double(i + 1))) }
            return order
        }
    }

    /// Runs the test. `permutations` give explicit splits (each a permutation of 0..<n+m whose first n
    /// entries form the x group); nil draws `count` of them from `seed`. `sigma2` nil: the median
    /// heuristic. Throws for fewer than 2 rows in a sample, mismatched dimensions, non-finite data or
    /// malformed permutations.
    public static func run(_ x: Matrix<Float>, _ y: Matrix<Float>, permutations given: [[Int]]? = nil, count: Int = 500,
                           seed: UInt64 = 0, sigma2: Double? = nil, estimator: Estimator = .unbiased, backend: Backend? = nil) throws -> Result {
        let n = x.rows, m = y.rows, total = n + m, d = x.columns
        guard n >= 2, m >= 2 else { throw ShiftError.invalidInput("MMD needs at least 2 rows per sample (got \(n) and \(m))") }
        guard y.columns == d else { throw ShiftError.invalidInput("x has \(d) features, y \(y.columns)") }
        guard x.isFinite, y.isFinite else { throw ShiftError.invalidInput("samples contain NaN or infinite values") }
        let splits = given ?? permutations(count: count, samples: total, seed: seed)
        guard !splits.isEmpty else { throw ShiftError.invalidInput("need at least one permutation") }
        if let bad = splits.firstIndex(where: { $0.count != total }) {
            throw ShiftError.invalidInput("permutation \(bad) has \(splits[bad].count) entries, expected \(total)")
        }
        let (s2, values) = try statistics(x, y, groups: [Array(0..<n)] + splits.map { Array($0.prefix(n)) }, sigma2: sigma2, estimator: estimator,
                                          tileColumns: tileColumns(statistics: splits.count + 1), backend: backend)
        let observed = values[0], null = Array(values.dropFirst())
        return Result(sigma2: s2, mmd2: observed, null: null,
                      pValue: Double(1 + null.filter { $0 >= observed }.count) / Double(1 + null.count))
    }

    /// The width of the column tiles of the permutation product for `statistics` columns (the observed split
    /// and the permutations): ⌈statistics/8⌉ rounded up to a multiple of 16, within 16…256. A function of
    /// the statistic count alone, so that the tiles, and so every GEMM call and every statistic, are the same
    /// whichever rank (`DistributedDrift.mmd`) or process computes them; 8 tiles or more for P ≥ 127 share the
    /// permutations among up to 8 ranks.
    static func tileColumns(statistics: Int) -> Int {
        min(256, max(16, ((statistics + 7) / 8 + 15) / 16 * 16))
    }

    /// The kernel's s² and the MMD² of each x group in `groups` (each n indices into the pooled sample, the
    /// rest being the y group), x and y checked by the caller. The groups are the product's columns, formed in
    /// tiles of `tileColumns` columns (one GEMM per block row and tile): a column's statistic depends only on
    /// the data, its group and its place in its tile, never on the other tiles, which is what lets ranks split
    /// the columns by whole tiles and get the one-process values bit for bit. No groups: the s² alone.
    static func statistics(_ x: Matrix<Float>, _ y: Matrix<Float>, groups: [[Int]], sigma2: Double?, estimator: Estimator,
                           tileColumns: Int, backend: Backend?) throws -> (sigma2: Double, values: [Double]) {
        let n = x.rows, m = y.rows, total = n + m, d = x.columns
        var phases = PhaseClock()
        // Pooled sample and its squared row norms.
        var z = Matrix<Float>(uninitializedRows: total, columns: d)
        z.withUnsafeMutableBufferPointer { pz in
            x.withUnsafeBufferPointer { pz.baseAddress!.update(from: $0.baseAddress!, count: n * d) }
            y.withUnsafeBufferPointer { (pz.baseAddress! + n * d).update(from: $0.baseAddress!, count: m * d) }
        }
        let norms = try Linalg.reduceRows(z, .squaredNorm, backend: backend)
        // K is symmetric: only its blocks I ≥ J (of `block` rows) are formed, in an N×N buffer.
        let block = 512, blocks = (total + block - 1) / block
        func rows(_ b: Int) -> Range<Int> { (b * block)..<min((b + 1) * block, total) }
        var kernel = Matrix<Float>(uninitializedRows: total, columns: total)
        // Per-block histograms of the top 16 bits of the strictly lower distances (for the median).
        var histograms = [UInt32](repeating: 0, count: blocks << 16)
        // The lower block triangle of the Gram matrix Z·Zᵀ, each block row turned into squared distances by
        // the epilogue while it is in cache, counting the strictly lower ones into the block's histogram.
        z.withUnsafeBufferPointer { pz in
            kernel.withUnsafeMutableBufferPointer { pk in
                histograms.withUnsafeMutableBufferPointer { ph in
                    norms.withUnsafeBufferPointer { nb in
                        let (kp, hp, np) = (pk.baseAddress!, ph.baseAddress!, nb.baseAddress!)
                        let pooled = MatrixPointer(pz.baseAddress!, rows: total, columns: d)
                        Linalg.blockedProduct(pooled, pooled, transB: .transposed, region: .lowerProduct, blockRows: block,
                                              backend: backend) { tile in
                            let histogram = hp + (tile.block << 16), first = tile.columns.lowerBound
                            for t in 0..<tile.rows.count {
                                let r = tile.rows.lowerBound + t, gram = tile.row(t) - first, row = kp + r * total, nr = np[r]
                                for c in tile.columns { row[c] = max(nr + np[c] - 2 * gram[c], 0) }
                                if tile.columns.contains(r) { row[r] = 0 }
                                for c in first..<max(first, min(r, tile.columns.upperBound)) { histogram[Int(row[c].bitPattern >> 16)] += 1 }
                            }
                        }
                    }
                }
            }
        }
        phases.mark("distances")
        let s2: Double = try sigma2 ?? kernel.withUnsafeBufferPointer { pk in
            var merged = [Int](repeating: 0, count: 1 << 16)
            for b in 0..<blocks { for bucket in 0..<(1 << 16) { merged[bucket] += Int(histograms[(b << 16) + bucket]) } }
            return try median(histogram: merged) { buckets in
                // One scan of the strictly lower pairs for the middle bucket(s), split over fixed row
                // ranges of equal triangle area; the lists are sorted afterwards, so the split does not matter.
                let parts = 8, kp = UncheckedPointer(UnsafeMutablePointer(mutating: pk.baseAddress!))
                let bounds = (0...parts).map { Int((Double(total) * (Double($0) / Double(parts)).squareRoot()).rounded()) }
                let wanted = buckets.sorted(), (lo, hi) = (UInt32(wanted.first!), UInt32(wanted.last!))  // one or two buckets
                var lists = [[Float]](repeating: [], count: parts)
                lists.withUnsafeMutableBufferPointer { lp in
                    let out = UncheckedPointer(lp.baseAddress!)
                    Linalg.parallelForEach(parts) { part in
                        var mine: [Float] = []
                        for r in max(bounds[part], 1)..<bounds[part + 1] {
                            let row = kp.value + r * total
                            for c in 0..<r {
                                let bucket = row[c].bitPattern >> 16
                                if bucket == lo || bucket == hi { mine.append(row[c]) }
                            }
                        }
                        out.value[part] = mine
                    }
                }
                return lists.flatMap { $0 }
            }
        }
        phases.mark("median")
        // Group indicators: column c is group c (for `run`: column 0 the observed split, column p + 1 permutation p).
        let columns = groups.count
        guard columns > 0 else { return (s2, []) }
        var indicators = Matrix<Float>(rows: total, columns: columns)
        indicators.withUnsafeMutableBufferPointer { a in
            for (c, group) in groups.enumerated() { for i in group { a[i * columns + c] = 1 } }
        }
        phases.mark("indicators")
        // K = exp(−D/(2s²)) and aᵀKa for every column at once, in one blocked product whose prologue forms
        // block row I of K from the stored distances (the exp runs in the block's task, overlapping the
        // GEMMs of the other task): it adds the block row's sums to the row sums of I (Double) and its
        // columns left of the diagonal block to block I's own column-sum slot (merged in block order
        // afterwards), and halves the diagonal block (exact: a power of two). Then
        // aᵀKa = Σ_I a_Iᵀ K_II a_I + 2 Σ_{I>J} a_Iᵀ K_IJ a_J = 2 Σ_I a_Iᵀ (Σ_{J≤I} K'_IJ a_J): one product of
        // K's block row I with A per block (about half the flops of K·A), summed per block in Double and the
        // blocks added in order. Every sum has a fixed order, so nothing depends on the thread count.
        let scale = Float(-0.5 / s2), tier = Linalg.kernelTier(backend)
        var rowSums = [Double](repeating: 0, count: total), diagonal = [Double](repeating: 0, count: total)
        var columnParts = [Double](repeating: 0, count: blocks * total)
        var partials = [Double](repeating: 0, count: blocks * columns)
        kernel.withUnsafeBufferPointer { pk in
            indicators.withUnsafeBufferPointer { a in
                partials.withUnsafeMutableBufferPointer { q in
                    rowSums.withUnsafeMutableBufferPointer { rs in
                        diagonal.withUnsafeMutableBufferPointer { dg in
                            columnParts.withUnsafeMutableBufferPointer { cp in
                                let (ap, qp, kp) = (a.baseAddress!, q.baseAddress!, pk.baseAddress!)
                                let (sp, dp, cpp) = (UncheckedPointer(rs.baseAddress!), UncheckedPointer(dg.baseAddress!), UncheckedPointer(cp.baseAddress!))
                                Linalg.blockedProduct(rows: total, depth: total, prologue: { (range: Range<Int>, into: MutableMatrixPointer<Float>, _) in
                                    let b = range.lowerBound / block, width = range.upperBound, left = range.lowerBound
                                    let columnSums = cpp.value + b * total
                                    for t in 0..<range.count {
                                        let r = range.lowerBound + t, row = into.base + t * into.rowStride
                                        row.update(from: kp + r * total, count: width)
                                        sp.value[r] = Linalg.expScaledInPlace(row, count: width, scale: scale, tier: tier)
                                        for c in 0..<left { columnSums[c] += Double(row[c]) }
                                        dp.value[r] = Double(row[r])
                                        for c in left..<width { row[c] *= 0.5 }
                                    }
                                }, MatrixPointer(ap, rows: total, columns: columns), region: .lowerOperand, blockRows: block,
                                tileColumns: tileColumns, backend: backend) { tile in
                                    let sums = qp + tile.block * columns + tile.columns.lowerBound
                                    for t in 0..<tile.rows.count {
                                        let ar = ap + (tile.rows.lowerBound + t) * columns + tile.columns.lowerBound, gr = tile.row(t)
                                        for p in 0..<tile.columns.count { sums[p] += Double(ar[p] * gr[p]) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for b in 0..<blocks { for c in 0..<(b * block) { rowSums[c] += columnParts[b * total + c] } }
        phases.mark("exp and block GEMMs")
        var aKa = [Double](repeating: 0, count: columns)
        for b in 0..<blocks { for p in 0..<columns { aKa[p] += 2 * partials[b * columns + p] } }
        // aᵀK1 and the group's trace straight from the group members.
        let aK1 = groups.map { $0.reduce(0.0) { $0 + rowSums[$1] } }, trX = groups.map { $0.reduce(0.0) { $0 + diagonal[$1] } }
        let all = rowSums.reduce(0, +), trace = diagonal.reduce(0, +)
        let nn = Double(n), mm = Double(m)
        let values = (0..<columns).map { p -> Double in
            let sXY = aK1[p] - aKa[p]
            switch estimator {
            case .unbiased:
                let sXX = aKa[p] - trX[p], sYY = all - 2 * aK1[p] + aKa[p] - (trace - trX[p])
                return sXX / (nn * (nn - 1)) + sYY / (mm * (mm - 1)) - 2 * sXY / (nn * mm)
            case .biased:
                let sXX = aKa[p], sYY = all - 2 * aK1[p] + aKa[p]
                return sXX / (nn * nn) + sYY / (mm * mm) - 2 * sXY / (nn * mm)
            }
        }
        phases.mark("statistics")
        phases.publish()
        return (s2, values)
    }

    /// The median (mean of the two middle values for an even count) of non-negative floats by a radix
    /// select: `histogram` counts the values by their top 16 bits (which order non-negative floats);
    /// `members(buckets)` returns the values of those buckets (any order; one call for both middle
    /// ranks). O(n), no copy of the values.
    static func median(histogram: [Int], members: (Set<Int>) -> [Float]) throws -> Double {
        let n = histogram.reduce(0, +)
        guard n > 0 else { throw ShiftError.invalidInput("no distances") }
        let ranks = n % 2 == 1 ? [n / 2] : [n / 2 - 1, n / 2]
        var located: [(bucket: Int, below: Int)] = []
        for rank in ranks {
            var bucket = 0, below = 0
            while below + histogram[bucket] <= rank { below += histogram[bucket]; bucket += 1 }
            located.append((bucket, below))
        }
        let list = members(Set(located.map(\.bucket))).sorted()
        var values: [Double] = []
        for (rank, place) in zip(ranks, located) {
            // The bucket's values come after those of lower buckets in the sorted list.
            let before = list.firstIndex { Int($0.bitPattern >> 16) >= place.bucket } ?? list.count
            values.append(Double(list[before + rank - place.below]))
        }
        return values.reduce(0, +) / Double(values.count)
    }
}

/// A pointer captured by the fork–join loop above; each task writes only its own rows.
struct UncheckedPointer<T>: @unchecked Sendable {
    let value: UnsafeMutablePointer<T>
    init(_ value: UnsafeMutablePointer<T>) { self.value = value }
}
