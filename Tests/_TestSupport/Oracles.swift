import FaultlineLinalg

/// Independent float64 oracles and comparison helpers for the test targets. Nothing here calls a
/// Faultline primitive: these are the textbook definitions, written out again on purpose.
public enum Oracle {
    /// op(A)·op(B) in Double by the triple loop.
    public static func product<T: LinalgScalar>(
        _ a: Matrix<T>, _ b: Matrix<T>, transA: Transpose = .none, transB: Transpose = .none
    ) -> [[Double]] {
        let A = lift(a, transA), B = lift(b, transB)
        let m = A.count, k = B.count, n = B.first?.count ?? (transB == .none ? b.columns : b.rows)
        var c = [[Double]](repeating: [Double](repeating: 0, count: n), count: m)
        for i in 0..<m { for p in 0..<k { let x = A[i][p]; for j in 0..<n { c[i][j] += x * B[p][j] } } }
        return c
    }

    /// op(M) as Double rows.
    public static func lift<T: LinalgScalar>(_ m: Matrix<T>, _ t: Transpose = .none) -> [[Double]] {
        let rows = m.rowArrays.map { $0.map(Double.init) }
        guard t == .transposed else { return rows }
        return (0..<m.columns).map { j in (0..<m.rows).map { i in rows[i][j] } }
    }

    /// ‖x − y‖_F / max(‖y‖_F, tiny).
    public static func relativeError(_ x: [[Double]], _ y: [[Double]]) -> Double {
        precondition(x.count == y.count, "row count \(x.count) vs \(y.count)")
        var num = 0.0, den = 0.0
        for (rx, ry) in zip(x, y) {
            precondition(rx.count == ry.count, "column count")
            for (a, b) in zip(rx, ry) { num += (a - b) * (a - b); den += b * b }
        }
        return (num / max(den, 1e-300)).squareRoot()
    }

    public static func relativeError<T: LinalgScalar>(_ x: Matrix<T>, _ y: [[Double]]) -> Double {
        relativeError(lift(x), y)
    }

    public static func relativeError<T: LinalgScalar>(_ x: Matrix<T>, _ y: Matrix<T>) -> Double {
        relativeError(lift(x), lift(y))
    }

    /// Largest |x − y| / max(|y|, floor) over vectors.
    public static func maxRelativeDifference(_ x: [Double], _ y: [Double], floor: Double = 1e-30) -> Double {
        precondition(x.count == y.count)
        return zip(x, y).map { abs($0 - $1) / max(abs($1), floor) }.max() ?? 0
    }

    /// A symmetric positive-definite matrix XᵀX/k + ridge·I from seeded uniform X (k×n).
    public static func spd<T: LinalgScalar>(_ n: Int, seed: UInt64, ridge: Double = 0.05) -> Matrix<T> {
        var rng = Philox(seed: seed)
        let k = n + 3
        let x: [[Double]] = (0..<k).map { _ in (0..<n).map { _ in rng.uniform() - 0.5 } }
        var m = Matrix<T>(rows: n, columns: n)
        for i in 0..<n {
            for j in 0...i where n > 0 {
                var s = 0.0
                for p in 0..<k { s += x[p][i] * x[p][j] }
                let v = T(s / Double(k) + (i == j ? ridge : 0))
                m[i, j] = v
                m[j, i] = v
            }
        }
        return m
    }

    /// Seeded uniform(−1, 1) matrix.
    public static func random<T: LinalgScalar>(_ rows: Int, _ columns: Int, seed: UInt64) -> Matrix<T> {
        var rng = Philox(seed: seed)
        return rng.matrix(rows: rows, columns: columns, .uniform(-1, 1))
    }
}

/// Tolerances stated once: relative Frobenius error allowed for a result accumulated over `k` terms.
public enum Tolerance {
    public static func accumulated<T: LinalgScalar>(_: T.Type, k: Int) -> Double {
        // ~√k·u growth for random-sign data, with a safety factor of 8 and a floor of 64 u.
        let u = T.unitRoundoff
        return max(64 * u, 8 * Double(max(k, 1)).squareRoot() * u * 4)
    }
}
