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
        let z = try Matrix(rows: total, columns: d, elements: x.elements + y.elements)
        var kernel = try Linalg.matmul(z, z, transB: .transposed)  // Gram, then squared distances in place
        let norms = (0..<total).map { kernel[$0, $0] }
        var upper = [Float]()
        upper.reserveCapacity(total * (total - 1) / 2)
        kernel.withUnsafeMutableBufferPointer { k in
            for i in 0..<total {
                for j in 0..<total {
                    let v = i == j ? 0 : max(norms[i] + norms[j] - 2 * k[i * total + j], 0)
                    k[i * total + j] = v
                    if j > i { upper.append(v) }
                }
            }
        }
        let s2 = try sigma2 ?? median(&upper)
        guard s2 > 0, s2.isFinite else { throw ShiftError.invalidInput("bandwidth s² = \(s2) must be positive (are all points equal?)") }
        let scale = Float(-0.5 / s2)
        kernel = Linalg.exp(kernel.map { $0 * scale })
        // Group indicators: column 0 the observed split, column p + 1 permutation p.
        var indicators = Matrix<Float>(rows: total, columns: splits.count + 1)
        for i in 0..<n { indicators[i, 0] = 1 }
        for (p, order) in splits.enumerated() { for i in order.prefix(n) { indicators[i, p + 1] = 1 } }
        let products = try Linalg.matmul(kernel, indicators)
        var rowSums = [Double](repeating: 0, count: total), diagonal = [Double](repeating: 0, count: total)
        kernel.withUnsafeBufferPointer { k in
            for i in 0..<total {
                var s = 0.0
                for j in 0..<total { s += Double(k[i * total + j]) }
                rowSums[i] = s
                diagonal[i] = Double(k[i * total + i])
            }
        }
        let all = rowSums.reduce(0, +), trace = diagonal.reduce(0, +)
        let nn = Double(n), mm = Double(m)
        let values = (0...splits.count).map { p -> Double in
            var aKa = 0.0, aK1 = 0.0, trX = 0.0
            for i in 0..<total where indicators[i, p] == 1 {
                aKa += Double(products[i, p])
                aK1 += rowSums[i]
                trX += diagonal[i]
            }
            let sXX = aKa - trX, sXY = aK1 - aKa, sYY = all - 2 * aK1 + aKa - (trace - trX)
            return sXX / (nn * (nn - 1)) + sYY / (mm * (mm - 1)) - 2 * sXY / (nn * mm)
        }
        let observed = values[0], null = Array(values.dropFirst())
        return Result(sigma2: s2, mmd2: observed, null: null,
                      pValue: Double(1 + null.filter { $0 >= observed }.count) / Double(1 + null.count))
    }

    /// The median (mean of the two middle values for an even count) by quickselect; reorders `v`.
    static func median(_ v: inout [Float]) throws -> Double {
        guard !v.isEmpty else { throw ShiftError.invalidInput("no distances") }
        let upperMiddle = select(&v, v.count / 2)
        if v.count % 2 == 1 { return Double(upperMiddle) }
        // After selecting index c/2, the lower half holds the rest: its maximum is the lower middle.
        let lowerMiddle = v[0..<(v.count / 2)].max()!
        return (Double(lowerMiddle) + Double(upperMiddle)) / 2
    }

    /// The k-th smallest element (0-based), leaving smaller elements before index k (Hoare quickselect
    /// with median-of-three pivots).
    static func select(_ v: inout [Float], _ k: Int) -> Float {
        var lo = 0, hi = v.count - 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            let pivot = max(min(v[lo], v[mid]), min(max(v[lo], v[mid]), v[hi]))
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        return v[k]
    }
}

