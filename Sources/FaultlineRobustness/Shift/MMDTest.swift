import FaultlineLinalg

/// Kernel two-sample test with the maximum mean discrepancy (Gretton et al. 2012) and a permutation
/// null, as the W6 workload defines it.
///
/// Kernel k(u, v) = exp(−‖u − v‖²/(2s²)) with s² the median of the pooled sample's pairwise squared
/// distances (the median heuristic; or a given s²). Statistic: the unbiased MMD²_u. Null: the same
/// statistic for `permutations` random splits of the pooled sample into groups of sizes n and m;
/// p = (1 + #{null ≥ observed})/(1 + P).
///
/// Work: the N×N kernel matrix once (N = n + m; one GEMM for the distances, a vectorised exp), then
/// every permutation at once: with A the N×(P+1) matrix of group indicators, K·A is one GEMM and each
/// statistic follows from aᵀKa, aᵀK1 and the trace of the group — no permuted kernel matrix is ever
/// formed. Memory N² floats. Accumulations of the statistics in Double.
public enum MMDTest {
    public struct Result: Sendable, Codable {
        /// The kernel's s² (bandwidth squared).
        public var sigma2: Double
        public var mmd2: Double
        public var null: [Double]
        public var pValue: Double
    }

    /// Random permutations of 0..<n+m from Philox keyed by (seed, permutation), Fisher–Yates; the
    /// first n entries of each form the group that plays x.
    public static func permutations(count: Int, samples: Int, seed: UInt64) -> [[Int]] {
        (0..<count).map { p in
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
                           seed: UInt64 = 0, sigma2: Double? = nil) throws -> Result {
        let n = x.rows, m = y.rows, total = n + m, d = x.columns
        guard n >= 2, m >= 2 else { throw ShiftError.invalidInput("MMD needs at least 2 rows per sample (got \(n) and \(m))") }
        guard y.columns == d else { throw ShiftError.invalidInput("x has \(d) features, y \(y.columns)") }
        guard x.isFinite, y.isFinite else { throw ShiftError.invalidInput("samples contain NaN or infinite values") }
        let splits = given ?? permutations(count: count, samples: total, seed: seed)
        guard !splits.isEmpty else { throw ShiftError.invalidInput("need at least one permutation") }
        if let bad = splits.firstIndex(where: { $0.count != total }) {
            throw ShiftError.invalidInput("permutation \(bad) has \(splits[bad].count) entries, expected \(total)")
        }
        // Pooled sample and its Gram matrix, turned into squared distances in place.
        var z = Matrix<Float>(uninitializedRows: total, columns: d)
        z.withUnsafeMutableBufferPointer { pz in
            x.withUnsafeBufferPointer { pz.baseAddress!.update(from: $0.baseAddress!, count: n * d) }
            y.withUnsafeBufferPointer { (pz.baseAddress! + n * d).update(from: $0.baseAddress!, count: m * d) }
        }
        var kernel = Matrix<Float>(uninitializedRows: total, columns: total)
        try Linalg.gemm(z, z, transB: .transposed, into: &kernel)
        let pairs = total * (total - 1) / 2
        let upper = UnsafeMutableBufferPointer<Float>.allocate(capacity: pairs)
        defer { upper.deallocate() }
        let s2: Double = try kernel.withUnsafeMutableBufferPointer { k in
            let norms = (0..<total).map { k[$0 * total + $0] }
            let (kp, up) = (UncheckedPointer(k.baseAddress!), UncheckedPointer(upper.baseAddress!))
            norms.withUnsafeBufferPointer { nb in
                let np = UncheckedPointer(UnsafeMutablePointer(mutating: nb.baseAddress!))
                Linalg.parallelForEach(total) { i in
                    let row = kp.value + i * total, ni = np.value[i]
                    for j in 0..<total { row[j] = max(ni + np.value[j] - 2 * row[j], 0) }
                    row[i] = 0
                    // Row i's strictly upper part goes to offset Σ_{r<i} (total − 1 − r).
                    (up.value + (i * (2 * total - i - 1)) / 2).update(from: row + i + 1, count: total - i - 1)
                }
            }
            return try sigma2 ?? median(upper)
        }
        guard s2 > 0, s2.isFinite else { throw ShiftError.invalidInput("bandwidth s² = \(s2) must be positive (are all points equal?)") }
        // K = exp(−D/(2s²)) in place, with row sums and the diagonal in Double.
        let scale = SIMD8<Float>(repeating: Float(-0.5 / s2))
        var rowSums = [Double](repeating: 0, count: total), diagonal = [Double](repeating: 0, count: total)
        kernel.withUnsafeMutableBufferPointer { k in
            rowSums.withUnsafeMutableBufferPointer { sums in
                diagonal.withUnsafeMutableBufferPointer { diag in
                    let (kp, sp, dp) = (UncheckedPointer(k.baseAddress!), UncheckedPointer(sums.baseAddress!), UncheckedPointer(diag.baseAddress!))
                    Linalg.parallelForEach(total) { i in
                        let row = kp.value + i * total
                        var j = 0, s = 0.0
                        while j + 8 <= total {
                            let v = Linalg.exp8(UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) * scale)
                            UnsafeMutableRawPointer(row + j).storeBytes(of: v, as: SIMD8<Float>.self)
                            s += Double(v.sum())
                            j += 8
                        }
                        while j < total { row[j] = Float.exp(row[j] * scale[0]); s += Double(row[j]); j += 1 }
                        sp.value[i] = s
                        dp.value[i] = Double(row[i])
                    }
                }
            }
        }
        // Group indicators: column 0 the observed split, column p + 1 permutation p; then K·A in one GEMM.
        let columns = splits.count + 1
        var indicators = Matrix<Float>(rows: total, columns: columns)
        indicators.withUnsafeMutableBufferPointer { a in
            for i in 0..<n { a[i * columns] = 1 }
            for (p, order) in splits.enumerated() { for i in order.prefix(n) { a[i * columns + p + 1] = 1 } }
        }
        var products = Matrix<Float>(uninitializedRows: total, columns: columns)
        try Linalg.gemm(kernel, indicators, into: &products)
        var aKa = [Double](repeating: 0, count: columns), aK1 = aKa, trX = aKa
        indicators.withUnsafeBufferPointer { a in
            products.withUnsafeBufferPointer { g in
                for i in 0..<total {
                    for p in 0..<columns where a[i * columns + p] == 1 {
                        aKa[p] += Double(g[i * columns + p])
                        aK1[p] += rowSums[i]
                        trX[p] += diagonal[i]
                    }
                }
            }
        }
        let all = rowSums.reduce(0, +), trace = diagonal.reduce(0, +)
        let nn = Double(n), mm = Double(m)
        let values = (0..<columns).map { p -> Double in
            let sXX = aKa[p] - trX[p], sXY = aK1[p] - aKa[p], sYY = all - 2 * aK1[p] + aKa[p] - (trace - trX[p])
            return sXX / (nn * (nn - 1)) + sYY / (mm * (mm - 1)) - 2 * sXY / (nn * mm)
        }
        let observed = values[0], null = Array(values.dropFirst())
        return Result(sigma2: s2, mmd2: observed, null: null,
                      pValue: Double(1 + null.filter { $0 >= observed }.count) / Double(1 + null.count))
    }

    /// The median (mean of the two middle values for an even count) of non-negative floats, by a
    /// radix select: one pass histograms the top 16 bits (which order non-negative floats), a second
    /// gathers the bucket holding the middle ranks, which is sorted. O(n) and no reordering of `v`.
    static func median(_ v: UnsafeMutableBufferPointer<Float>) throws -> Double {
        guard !v.isEmpty else { throw ShiftError.invalidInput("no distances") }
        let n = v.count
        let ranks = n % 2 == 1 ? [n / 2] : [n / 2 - 1, n / 2]
        var histogram = [Int](repeating: 0, count: 1 << 16)
        let bits = UnsafeBufferPointer(start: UnsafeRawPointer(v.baseAddress!).assumingMemoryBound(to: UInt32.self), count: n)
        for b in bits { histogram[Int(b >> 16)] += 1 }
        var values: [Double] = []
        for rank in ranks {
            var bucket = 0, below = 0
            while below + histogram[bucket] <= rank { below += histogram[bucket]; bucket += 1 }
            var members: [Float] = []
            members.reserveCapacity(histogram[bucket])
            for (i, b) in bits.enumerated() where Int(b >> 16) == bucket { members.append(v[i]) }
            members.sort()
            values.append(Double(members[rank - below]))
        }
        return values.reduce(0, +) / Double(values.count)
    }
}

/// A pointer captured by the fork–join loop above; each task writes only its own rows.
struct UncheckedPointer<T>: @unchecked Sendable {
    let value: UnsafeMutablePointer<T>
    init(_ value: UnsafeMutablePointer<T>) { self.value = value }
}
