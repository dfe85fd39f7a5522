import FaultlineLinalg

/// The Mahalanobis out-of-distribution score: the minimum over classes of the squared Mahalanobis
/// distance to the class mean under the tied covariance (higher = more out-of-distribution).
///
/// Fitted once: Σ (optionally shrunk towards (tr Σ/d)·I) is factored Σ = L·Lᵀ in Double; the
/// whitening W = L⁻¹ (lower triangular) is kept in float32, with the centre c (the mean of every fit
/// row, in Double) and the whitened centred means m_k = W·(μ_k − c). Scoring a block forms x − c in
/// Double (rounded once to float32), then one triangular product Z = (X − c)·Wᵀ (BLAS-3 TRMM: half the
/// flops of a dense whitening GEMM) and one GEMM Z·Mᵀ that ranks the classes by
/// ‖z‖² − 2⟨z, m_k⟩ + ‖m_k‖²; the distance of every class within that expansion's rounding bound of
/// the nearest is then recomputed from the differences z − m_k. So the score is translation invariant
/// (features far from the origin lose nothing to the centring) and never suffers the expansion's
/// cancellation. Accuracy: ~1e-5 relative to a float64 reference (tested ≤ 1e-4 at offsets 0…1000 and
/// on post-ReLU-like features with means ≫ spread); cost N·d² + 2·N·d·K flops, never an N×N matrix.
public struct MahalanobisDetector: Sendable {
    /// L with Σ = L·Lᵀ (d × d, lower triangular), from the Cholesky factorisation in Double.
    public let factor: Matrix<Float>  // L, Σ = L·Lᵀ (d × d, lower triangular)
    /// W = L⁻¹ (lower triangular), computed in Double.
    public let whitening: Matrix<Float>
    /// c: the point features are centred on before whitening (the mean of the fit's rows; zeros for
    /// detector files written before it existed).
    public let centre: [Double]
    /// K × d: row k is W·(μ_k − c).
    public let whitenedMeans: Matrix<Float>  // K × d, rows W·(μ_k − c)
    /// ‖W·(μ_k − c)‖² per class.
    public let meanNorms: [Float]  // ‖m_k‖²
    /// The shrinkage α applied to Σ (0: none).
    public let shrinkage: Double

    /// Fits from a `GaussianFit`. `shrinkage` α in [0, 1): Σ ← (1 − α)Σ + α·(tr Σ/d)·I. Throws
    /// `ShiftError.singular` when Σ is not positive definite (suggesting shrinkage), or when a class
    /// has no samples.
    public init(_ fit: GaussianFit, shrinkage: Double = 0) throws {
        guard shrinkage >= 0 && shrinkage < 1 else { throw ShiftError.invalidInput("shrinkage \(shrinkage) must lie in [0, 1)") }
        if let empty = fit.counts.firstIndex(of: 0) { throw ShiftError.invalidInput("class \(empty) has no samples") }
        let d = fit.dimension
        let sigma = shrinkage > 0 ? CovarianceShrinkage.shrunk(fit.covariance, by: shrinkage) : fit.covariance
        let (l, w) = try Self.whiteningFactors(sigma, of: "the covariance")
        let centre = fit.overallMean
        var centred = fit.means
        for k in 0..<fit.classes { for j in 0..<d { centred[k, j] -= centre[j] } }
        let means = try Linalg.matmul(centred, w, transB: .transposed)  // rows m_k = W (μ_k − c)
        factor = l.converted(to: Float.self)
        whitening = w.converted(to: Float.self)
        self.centre = centre
        whitenedMeans = means.converted(to: Float.self)
        meanNorms = (0..<fit.classes).map { k in Float((0..<d).reduce(0.0) { $0 + means[k, $1] * means[k, $1] }) }
        self.shrinkage = shrinkage
    }

    /// Features per row.
    public var dimension: Int { factor.rows }

    /// L (Σ = L·Lᵀ) and W = L⁻¹ in Double. Throws `ShiftError.singular`, naming `what`, when Σ is not
    /// positive definite.
    static func whiteningFactors(_ sigma: Matrix<Double>, of what: String) throws -> (l: Matrix<Double>, w: Matrix<Double>) {
        let l: Matrix<Double>
        do {
            l = try Linalg.cholesky(sigma)
        } catch LinalgError.notPositiveDefinite(_, let order) {
            throw ShiftError.singular("\(what) is not positive definite at order \(order) (more dimensions than informative samples?); use shrinkage, e.g. 0.01")
        }
        return (l, try Linalg.solveTriangular(l, Matrix<Double>.identity(sigma.rows)))
    }

    /// A detector from its stored parts (see `DetectorFile`).
    init(factor: Matrix<Float>, whitening: Matrix<Float>, centre: [Double], whitenedMeans: Matrix<Float>, meanNorms: [Float], shrinkage: Double) {
        self.whitening = whitening
        self.centre = centre
        self.factor = factor
        self.whitenedMeans = whitenedMeans
        self.meanNorms = meanNorms
        self.shrinkage = shrinkage
    }

    /// The detector with the OAS shrinkage of the tied covariance (scikit-learn's formula, n = all rows).
    public static func oas(_ fit: GaussianFit) throws -> MahalanobisDetector {
        try MahalanobisDetector(fit, shrinkage: min(CovarianceShrinkage.oas(covariance: fit.covariance, samples: fit.total), 0.999_999))
    }

    /// The detector with the Ledoit–Wolf shrinkage of the tied covariance, i.e. of the class-centred
    /// rows xᵢ − μ_yᵢ (scikit-learn's `LedoitWolf(assume_centered=True)` on them). Needs one more pass
    /// over the fit data for Σᵢ‖xᵢ − μ_yᵢ‖⁴ (in blocks, Double).
    public static func ledoitWolf(_ fit: GaussianFit, x: Matrix<Float>, labels: [Int]) throws -> MahalanobisDetector {
        guard x.columns == fit.dimension, labels.count == x.rows else { throw ShiftError.invalidInput("x and labels must be the data the fit saw") }
        let means = fit.means, d = fit.dimension
        var fourth = 0.0
        for i in 0..<x.rows {
            let y = labels[i]
            guard y >= 0 && y < fit.classes else { throw ShiftError.invalidInput("label \(y) at row \(i) is outside 0..<\(fit.classes)") }
            var norm = 0.0
            for j in 0..<d { let r = Double(x[i, j]) - means[y, j]; norm += r * r }
            fourth += norm * norm
        }
        let s = CovarianceShrinkage.ledoitWolf(covariance: fit.covariance, samples: fit.total, fourthMoment: fourth)
        return try MahalanobisDetector(fit, shrinkage: min(s, 0.999_999))
    }

    /// Scores every row of `x`. Throws on a dimension mismatch or non-finite features (detected from
    /// the distances, which NaN and ±∞ make non-finite: no separate scan of the input). Blocks of
    /// `blockRows` rows run in parallel through `Linalg.blockedProduct` (whitening in its prologue, the
    /// nearest mean in its epilogue), so the scores are bit-identical for any thread count; `backend` runs
    /// the TRMM and GEMM on that backend.
    public func score(_ x: Matrix<Float>, blockRows: Int = Linalg.productBlockRows, backend: Backend? = nil) throws -> [Float] {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the detector \(dimension)") }
        var scores = [Float](repeating: 0, count: x.rows)
        let largestMean = meanNorms.max() ?? 0, zeros = [Float](repeating: 0, count: dimension)
        scores.withUnsafeMutableBufferPointer { out in
            whitenedMeans.withUnsafeBufferPointer { pm in
                meanNorms.withUnsafeBufferPointer { pn in
                    zeros.withUnsafeBufferPointer { pz in
                        let (o, means, norms, origin) = (out.baseAddress!, pm.baseAddress!, pn.baseAddress!, pz.baseAddress!)
                        Self.whitenedProduct(x, by: whitening, centre: centre, against: MatrixPointer(means, rows: whitenedMeans.rows, columns: dimension),
                                             blockRows: blockRows, backend: backend) { tile in
                            Self.nearestSquaredDistances(tile, to: means, meanNorms: norms, largestMean: largestMean, origin: origin,
                                                         into: o + tile.rows.lowerBound)
                        }
                    }
                }
            }
        }
        try MahalanobisDetector.requireFinite(scores)
        return scores
    }

    /// Throws naming the first row whose distance is not finite.
    static func requireFinite(_ scores: [Float]) throws {
        if let row = scores.firstIndex(where: { !$0.isFinite }) {
            throw ShiftError.invalidInput("features contain NaN or infinite values, or values too large for float32 (row \(row))")
        }
    }

    /// `Linalg.blockedProduct` of Z = (X − c)·Wᵀ against `means` (K × d, used transposed): per block of
    /// rows the prologue forms the centred rows and whitens them with one TRMM in place in the task's
    /// workspace, the epilogue receives Z's block (`tile.a`) and Z·meansᵀ (`tile.product`; no columns for
    /// a 0 × d `means`). The centre is split into float32 parts c = c_hi + c_lo and each element is formed
    /// as (x − c_hi) − c_lo, whose first subtraction is exact for x near c_hi (Sterbenz): the centred value
    /// carries one float32 rounding of itself, as if x − c were formed in Double and rounded. Bit-identical
    /// for any thread count (see `blockedProduct`).
    static func whitenedProduct(_ x: Matrix<Float>, by w: Matrix<Float>, centre: [Double], against means: MatrixPointer<Float>,
                                blockRows: Int, backend: Backend?, _ epilogue: (Linalg.ProductTile<Float>) -> Void) {
        let d = x.columns
        precondition(centre.count == d && w.rows == d, "centre of \(centre.count) values and a \(w.rows)-row whitening for \(d) features")
        let high = centre.map { Float($0) }, low = zip(centre, high).map { Float($0 - Double($1)) }
        x.withUnsafeBufferPointer { src in
            w.withUnsafeBufferPointer { pw in
                high.withUnsafeBufferPointer { ch in
                    low.withUnsafeBufferPointer { cl in
                        let (from, hp, lp) = (src.baseAddress!, ch.baseAddress!, cl.baseAddress!)
                        let whitening = MatrixPointer(pw.baseAddress!, rows: d, columns: d)
                        Linalg.blockedProduct(rows: x.rows, depth: d, prologue: { rows, z, backend in
                            for r in 0..<rows.count {
                                let a = from + (rows.lowerBound + r) * d, b = z.base + r * z.rowStride
                                for j in 0..<d { b[j] = (a[j] - hp[j]) - lp[j] }
                            }
                            Linalg.multiplyTriangular(whitening, z, side: .right, transL: .transposed, backend: backend)
                        }, means, transB: .transposed, blockRows: max(1, blockRows), backend: backend, epilogue: epilogue)
                    }
                }
            }
        }
    }

    /// min_c ‖z_r − m_c‖² for every row r of a tile of `whitenedProduct` (its product holds ⟨z_r, m_c⟩),
    /// written to `out[r]`. The GEMM expansion ‖z‖² − 2⟨z, m⟩ + ‖m‖² ranks the means; its absolute error
    /// is below 2·d·u·(‖z‖² + max_c ‖m_c‖²) (u = 2⁻²⁴), so every mean within that bound of the smallest
    /// expanded value is a candidate whose distance is recomputed from the differences
    /// (`squaredDistance`). The result is the nearest distance of the float32 whitened vectors to ~d·u/8
    /// relative, whatever the cancellation in the expansion; NaN for a row with a non-finite value.
    /// `origin`: d zeros (‖z‖² = ‖z − 0‖²). Cost O(K) per row and O(d) per candidate (usually one).
    static func nearestSquaredDistances(_ tile: Linalg.ProductTile<Float>, to means: UnsafePointer<Float>, meanNorms: UnsafePointer<Float>,
                                        largestMean: Float, origin: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let k = tile.columns.count, d = tile.a.columns, bound = 2 * Float(d) * Float.ulpOfOne / 2
        for r in 0..<tile.rows.count {
            let z = tile.a.base + r * tile.a.rowStride, expanded = tile.row(r)
            let norm = squaredDistance(z, origin, d)
            var best = Float.infinity
            for c in 0..<k { best = min(best, norm - 2 * expanded[c] + meanNorms[c]) }
            guard norm.isFinite, best.isFinite else { out[r] = .nan; continue }
            let cut = best + bound * (norm + largestMean)
            var exact = Float.infinity
            for c in 0..<k where norm - 2 * expanded[c] + meanNorms[c] <= cut {
                exact = min(exact, squaredDistance(z, means + c * d, d))
            }
            out[r] = exact
        }
    }

    /// ‖a − b‖² over `count` floats: differences and squares in float32 over eight lanes (an error of at
    /// most ~count/8·u relative, ~1e-6 at d = 512), the lanes added at the end.
    @inline(__always)
    static func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD8<Float>(repeating: 0), j = 0
        while j + 8 <= count {
            let e = UnsafeRawPointer(a + j).loadUnaligned(as: SIMD8<Float>.self) - UnsafeRawPointer(b + j).loadUnaligned(as: SIMD8<Float>.self)
            lanes = lanes + e * e  // not addingProduct: without FMA in the target it becomes one libm fmaf call per lane
            j += 8
        }
        var s = lanes.sum()
        while j < count { let e = a[j] - b[j]; s += e * e; j += 1 }
        return s
    }
}
