import FaultlineLinalg

/// Class-conditional Gaussians with one shared (tied) covariance, the model behind the Mahalanobis
/// out-of-distribution score (Lee et al. 2018).
///
/// The fit keeps mergeable sufficient statistics in Double: per-class counts and sums and the total
/// second-moment matrix Σ x xᵀ (one SYRK per block of rows). Fitting on chunks, or merging two fits,
/// gives the same state as fitting on the union. The tied covariance is normalised by n (the MLE):
/// Σ = (Σ x xᵀ − Σ_k s_k s_kᵀ / n_k) / N.
public struct GaussianFit: Sendable {
    public let dimension: Int
    public let classes: Int
    public private(set) var counts: [Int]
    /// classes × dimension sums.
    public private(set) var sums: Matrix<Double>
    /// Σ x xᵀ over every row seen.
    public private(set) var secondMoment: Matrix<Double>

    public init(dimension: Int, classes: Int) {
        precondition(dimension > 0 && classes > 0, "GaussianFit needs a positive dimension and class count")
        self.dimension = dimension
        self.classes = classes
        counts = [Int](repeating: 0, count: classes)
        sums = Matrix(rows: classes, columns: dimension)
        secondMoment = Matrix(rows: dimension, columns: dimension)
    }

    public var total: Int { counts.reduce(0, +) }

    /// Adds a block of rows. Throws `ShiftError.invalidInput` on a dimension mismatch, non-finite
    /// features or labels out of range.
    public mutating func update(_ x: Matrix<Float>, labels: [Int]) throws {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the fit has \(dimension)") }
        guard labels.count == x.rows else { throw ShiftError.invalidInput("\(x.rows) rows but \(labels.count) labels") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw ShiftError.invalidInput("label \(labels[bad]) at row \(bad) is outside 0..<\(classes)")
        }
        guard x.isFinite else { throw ShiftError.invalidInput("features contain NaN or infinite values") }
        // Blocks of rows promoted to Double: the second moments accumulate in Double without a full copy.
        let block = 4096
        try sums.withUnsafeMutableBufferPointer { s in
            try x.withUnsafeBufferPointer { px in
                for start in stride(from: 0, to: x.rows, by: block) {
                    let rows = min(block, x.rows - start)
                    var xd = Matrix<Double>(uninitializedRows: rows, columns: dimension)
                    xd.withUnsafeMutableBufferPointer { d in
                        for i in 0..<(rows * dimension) { d[i] = Double(px[start * dimension + i]) }
                        for r in 0..<rows {
                            let y = labels[start + r]
                            counts[y] += 1
                            for j in 0..<dimension { s[y * dimension + j] += d[r * dimension + j] }
                        }
                    }
                    try Linalg.syrk(xd, transA: .transposed, alpha: 1, beta: 1, into: &secondMoment)
                }
            }
        }
    }

    /// The fit on the union of both fits' data.
    public func merged(with other: GaussianFit) throws -> GaussianFit {
        guard other.dimension == dimension, other.classes == classes else {
            throw ShiftError.invalidInput("cannot merge a \(other.dimension)-d, \(other.classes)-class fit into a \(dimension)-d, \(classes)-class fit")
        }
        var out = self
        for k in 0..<classes { out.counts[k] += other.counts[k] }
        out.sums = sums.zipSum(other.sums)
        out.secondMoment = secondMoment.zipSum(other.secondMoment)
        return out
    }

    /// All classes pooled into one: the background Gaussian of the relative Mahalanobis distance.
    public func pooled() -> GaussianFit {
        var out = GaussianFit(dimension: dimension, classes: 1)
        out.counts = [total]
        var sum = Matrix<Double>(rows: 1, columns: dimension)
        for k in 0..<classes { for j in 0..<dimension { sum[0, j] += sums[k, j] } }
        out.sums = sum
        out.secondMoment = secondMoment
        return out
    }

    /// Class means (classes × dimension); a class with no samples has a zero row.
    public var means: Matrix<Double> {
        var m = sums
        for k in 0..<classes where counts[k] > 0 { for j in 0..<dimension { m[k, j] /= Double(counts[k]) } }
        return m
    }

    /// The tied covariance, normalised by n.
    public var covariance: Matrix<Double> {
        var c = secondMoment
        let n = Double(total)
        for k in 0..<classes where counts[k] > 0 {
            let inverse = 1 / Double(counts[k])
            for a in 0..<dimension { for b in 0..<dimension { c[a, b] -= sums[k, a] * sums[k, b] * inverse } }
        }
        return c.map { $0 / n }
    }
}

extension Matrix {
    func zipSum(_ other: Matrix) -> Matrix {
        var out = self
        out.withUnsafeMutableBufferPointer { o in other.withUnsafeBufferPointer { b in for i in o.indices { o[i] += b[i] } } }
        return out
    }
}
