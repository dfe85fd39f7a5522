import FaultlineLinalg
import FaultlineNN

/// Batched IBP and CROWN on a layer chain (`LinearizedNetwork`): the work of `BoundPropagation` for a
/// `Sequential` model or a chain graph.
///
/// - **Interval pass** (both methods), in float64 GEMMs over a block of samples: each affine stage's
///   centre (C Wᵀ + b) and radius (R |W|ᵀ) for every sample of the block at once.
/// - **CROWN's backward passes**, in GEMMs of precision `T` over the rows of every sample and every
///   specification at once: the rows of the specification (or, for an intermediate ReLU layer, the rows
///   of the unstable neurons of every sample) are stacked into one matrix and multiplied by each layer's
///   weights on the way down; the ReLU relaxations and the bias terms are applied row by row (each row
///   knows its sample); the lower and upper sides, equal until the first ReLU, are then stacked too.
/// - **Soundness in float32**: every product in `T` is paired with an a-priori bound on its rounding
///   error, carried per row and subtracted from the lower bound (added to the upper): through an affine
///   stage z ↦ W z + b, |A·W − fl(A·W_T)| ≤ |A|·(γ_k(1 + u) + u)·|W| elementwise (k = rows of W, u the
///   unit roundoff of `T`, γ_k = k u / (1 − k u); the second u covers W_T = fl(W)), which times |z| ≤ z̄
///   (the interval of the stage's input) gives the row's budget Σⱼ |Aᵣⱼ| (c |W| z̄)ⱼ, the vector c |W| z̄
///   coming from the interval pass's GEMM; a relaxation product fl(a·s) on an unstable ReLU adds
///   2u |fl(a·s)| max(−l, u). Biases, the budget and the concretisation at the input are summed in
///   float64, rounded to nearest (relative error ~1e-16 of the terms, as the float64 implementation
///   before). With `T = Double` the same code is the float64 reference (its budget is ~1e-13 relative).
/// - **Determinism**: the groups of rows run in parallel, each on one thread with BLAS at one thread, and
///   every row's numbers come from its own row of each product and its own loops, so the bounds are
///   bit-identical for any thread count; for another set of rows they agree to the last bits (BLAS may
///   multiply a product of another height with other kernels).
/// Cost per sample: IBP about two products of each layer's weights (in the block GEMMs); CROWN adds, per
/// ReLU layer k after the first, 2 × (unstable neurons of layer k) × Σ_{j<k} nⱼ nⱼ₋₁ flops in `T`, plus
/// the final pass over the specification rows. Memory: the stacked rows are processed in groups of at
/// most `rowBudget` elements per side (two sides plus the product per running group: ≈ 40 MB at 2²⁰).
struct BoundEngine<T: LinalgScalar>: Sendable {
    typealias Region = BoundPropagation.Region

    let network: LinearizedNetwork
    let region: Region
    /// The region's box per input feature (L∞ only), or nil.
    let box: (lower: [Double], upper: [Double])?
    /// Per stage index of an affine stage: W in `T`, |W| in float64, its bias, the rounding constant c.
    let affine: [Int: Affine]
    /// The stacked rows of a backward pass are processed in groups of at most this many elements per side.
    let rowBudget: Int

    struct Affine: Sendable {
        let weight: Matrix<Double>
        let absolute: Matrix<Double>
        let weightT: Matrix<T>
        let bias: [Double]
        /// c = γ_k (1 + u) + u for k = rows of W (see the type's documentation).
        let rounding: Double
        /// u: the rounding of W to `T` alone (the budget of a row gathered from W_T).
        let gatherRounding: Double
    }

    init(network: LinearizedNetwork, region: Region, image: ImageShape?, rowBudget: Int = 1 << 20) throws {
        self.network = network
        self.region = region
        self.rowBudget = max(rowBudget, 1)
        if region.norm == .linf, let box = region.box {
            let b = try box.perFeature(features: network.inputFeatures, image: image)
            self.box = (b.lower.map(Double.init), b.upper.map(Double.init))
        } else {
            box = nil
        }
        let u = T.unitRoundoff
        var affine: [Int: Affine] = [:]
        for (s, stage) in network.stages.enumerated() {
            guard case .affine(let w, let b) = stage else { continue }
            let k = Double(w.rows)
            let gamma = k * u / (1 - k * u)
            affine[s] = Affine(weight: w, absolute: w.map { abs($0) }, weightT: w.converted(to: T.self), bias: b,
                               rounding: gamma * (1 + u) + u, gatherRounding: u)
        }
        self.affine = affine
    }

    // MARK: The interval pass

    /// The intervals of one block of samples: `inputs[s]` bounds the input of stage s (after CROWN's
    /// tightening for a ReLU stage), `inputs[stages.count]` the output. For CROWN, per affine stage s:
    /// `centre[s]` the point c each sample's input is expanded around (B × columns of W), `image[s]` = W c
    /// in float64 (B × rows of W, no bias), and `budget[s]` = c_s |W| h, h ≥ |z − c| over the interval
    /// (B × rows of W); per ReLU stage, `relaxation[s]` (`reluRelaxation`) and, when `T` is Float, its float32
    /// copy `relaxation32[s]`; `box` the centre and half-width of the input region (L2: x₀ twice, unused).
    /// Built once per block: every group of a backward pass reads them.
    struct Block {
        let x0: Matrix<Double>
        var inputs: [(lower: Matrix<Double>, upper: Matrix<Double>)] = []
        var centre: [Int: Matrix<Double>] = [:]
        var image: [Int: Matrix<Double>] = [:]
        var budget: [Int: Matrix<Double>] = [:]
        var relaxation: [Int: Matrix<Double>] = [:]
        var relaxation32: [Int: Matrix<Float>] = [:]
        var box: (centre: Matrix<Double>, half: Matrix<Double>)?
    }

    /// The input region of every sample of `x0` as a box (L2: the enclosing box x₀ ± ε), intersected with
    /// the region's box for L∞.
    func inputInterval(_ x0: Matrix<Double>) -> (lower: Matrix<Double>, upper: Matrix<Double>) {
        let e = Double(region.epsilon)
        var lower = x0.map { $0 - e }, upper = x0.map { $0 + e }
        if let box {
            for i in 0..<x0.rows {
                for j in 0..<x0.columns {
                    lower[i, j] = max(lower[i, j], box.lower[j])
                    upper[i, j] = min(upper[i, j], box.upper[j])
                }
            }
        }
        return (lower, upper)
    }

    /// Runs the interval pass over the block `x0` (B × inputs); with `crown`, tightens the input bounds
    /// of every ReLU after the first by a backward pass over the neurons the interval leaves unstable,
    /// and records the rounding budgets the backward passes need.
    func forward(_ x0: Matrix<Double>, crown: Bool) throws -> Block {
        var block = Block(x0: x0)
        var (lower, upper) = inputInterval(x0)
        if crown {
            block.box = region.norm == .l2 ? (x0, x0)
                : (BoundEngine.combine(lower, upper) { 0.5 * ($0 + $1) }, BoundEngine.combine(lower, upper) { 0.5 * ($1 - $0) })
        }
        for (s, stage) in network.stages.enumerated() {
            switch stage {
            case .affine:
                let a = affine[s]!
                block.inputs.append((lower, upper))
                if crown {
                    // Expand around c; h ≥ |z − c| over the interval (the L2 ball's first stage: c = x₀, h = ε).
                    let ball = s == 0 && region.norm == .l2
                    let c = ball ? x0 : BoundEngine.combine(lower, upper) { 0.5 * ($0 + $1) }
                    let h = ball ? x0.map { _ in Double(region.epsilon) } : BoundEngine.combine(lower, upper) { l, u in
                        let m = 0.5 * (l + u)
                        return max(u - m, m - l)
                    }
                    let image = try Linalg.matmul(c, a.weight, transB: .transposed)
                    let spread = try Linalg.matmul(h, a.absolute, transB: .transposed)
                    (block.centre[s], block.image[s], block.budget[s]) = (c, image, spread.map { $0 * a.rounding })
                    if ball {
                        (lower, upper) = try BoundEngine.affineInterval(a, lower, upper, ball: (x0, Double(region.epsilon)))
                    } else {
                        (lower, upper) = BoundEngine.interval(centre: image, radius: spread, bias: a.bias)
                    }
                } else {
                    (lower, upper) = try BoundEngine.affineInterval(a, lower, upper,
                                                                   ball: s == 0 && region.norm == .l2 ? (x0, Double(region.epsilon)) : nil)
                }
            case .activation(let kind, _):
                if crown, kind == .relu, s > 1, affine[s - 1] != nil {
                    try tightenUnstable(stage: s, &lower, &upper, block: block)
                }
                block.inputs.append((lower, upper))
                if crown, kind == .relu {
                    block.relaxation[s] = BoundEngine.reluRelaxation((lower, upper))
                    if T.self == Float.self { block.relaxation32[s] = BoundEngine.float32(block.relaxation[s]!) }
                }
                lower = lower.map { BoundPropagation.apply(kind, $0) }
                upper = upper.map { BoundPropagation.apply(kind, $0) }
            case .maxPool(let pool, _):
                block.inputs.append((lower, upper))
                lower = try BoundEngine.rowwise(lower) { BoundPropagation.maxPool(pool, $0) }
                upper = try BoundEngine.rowwise(upper) { BoundPropagation.maxPool(pool, $0) }
            }
        }
        block.inputs.append((lower, upper))
        return block
    }

    /// y = W x + b over the box [l, u] of every row: centre W c + b ± |W| r, or on an L2 ball (the first
    /// stage) W x₀ + b ± ε ‖wᵢ‖₂ exactly.
    static func affineInterval(_ a: Affine, _ l: Matrix<Double>, _ u: Matrix<Double>,
                               ball: (x0: Matrix<Double>, epsilon: Double)?) throws -> (Matrix<Double>, Matrix<Double>) {
        let n = a.weight.rows
        var centre: Matrix<Double>, radius: Matrix<Double>
        if let ball {
            centre = try Linalg.matmul(ball.x0, a.weight, transB: .transposed)
            let norms = (0..<n).map { i in a.weight.row(i).reduce(0) { $0 + $1 * $1 }.squareRoot() * ball.epsilon }
            radius = Matrix(rows: l.rows, columns: n)
            for r in 0..<l.rows { for i in 0..<n { radius[r, i] = norms[i] } }
        } else {
            centre = try Linalg.matmul(combine(l, u) { 0.5 * ($0 + $1) }, a.weight, transB: .transposed)
            radius = try Linalg.matmul(combine(l, u) { 0.5 * ($1 - $0) }, a.absolute, transB: .transposed)
        }
        return interval(centre: centre, radius: radius, bias: a.bias)
    }

    /// (centre + b − radius, centre + b + radius), b added to every row.
    static func interval(centre: Matrix<Double>, radius: Matrix<Double>, bias: [Double]) -> (Matrix<Double>, Matrix<Double>) {
        var lower = centre, upper = centre
        for r in 0..<centre.rows {
            for i in 0..<centre.columns {
                let m = centre[r, i] + bias[i]
                lower[r, i] = m - radius[r, i]
                upper[r, i] = m + radius[r, i]
            }
        }
        return (lower, upper)
    }

    /// f(x, y) elementwise over two matrices of one shape.
    static func combine(_ x: Matrix<Double>, _ y: Matrix<Double>, _ f: (Double, Double) -> Double) -> Matrix<Double> {
        var out = Matrix<Double>(uninitializedRows: x.rows, columns: x.columns)
        x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                out.withUnsafeMutableBufferPointer { po in for i in 0..<po.count { po[i] = f(px[i], py[i]) } }
            }
        }
        return out
    }

    static func rowwise(_ m: Matrix<Double>, _ f: ([Double]) -> [Double]) throws -> Matrix<Double> {
        try Matrix(m.rowArrays.map(f))
    }

    /// CROWN bounds for the neurons of ReLU stage `s` the interval [lower, upper] leaves unstable, from a
    /// backward pass starting at the rows of the affine stage below (`s − 1`), written over the interval.
    func tightenUnstable(stage s: Int, _ lower: inout Matrix<Double>, _ upper: inout Matrix<Double>, block: Block) throws {
        let a = affine[s - 1]!
        var targets: [(sample: Int, neuron: Int)] = []
        for i in 0..<lower.rows {
            for j in 0..<lower.columns where lower[i, j] < 0 && upper[i, j] > 0 { targets.append((i, j)) }
        }
        let (budgetBelow, image, centre) = (block.budget[s - 1]!, block.image[s - 1]!, block.centre[s - 1]!)
        let width = a.weight.columns
        let (l, u) = try inGroups(targets.count, width: width) { group in
            let part = Array(targets[group])
            var rows = Matrix<T>(uninitializedRows: part.count, columns: width)
            var bias = [Double](repeating: 0, count: part.count), start = bias
            for (r, t) in part.enumerated() {
                // Row j of W in `T`, exact at the centre: b_j + (W c)_j − W_T[j]·c; the rounding of W to `T`
                // elsewhere in the interval, u |W[j]| h, goes to the budget.
                var shift = image[t.sample, t.neuron]
                for c in 0..<width {
                    let w = a.weightT[t.neuron, c]
                    rows[r, c] = w
                    shift -= Double(w) * centre[t.sample, c]
                }
                bias[r] = a.bias[t.neuron] + shift
                start[r] = budgetBelow[t.sample, t.neuron] / a.rounding * a.gatherRounding
            }
            return try backward(below: s - 1, rows: rows, bias: bias, budget: start, sampleOf: part.map(\.sample), block: block)
        }
        for (r, t) in targets.enumerated() { (lower[t.sample, t.neuron], upper[t.sample, t.neuron]) = (l[r], u[r]) }
    }

    /// `body(range)` for consecutive ranges of `count` rows (at most `rowBudget / width` rows each), the
    /// ranges in parallel, each on one thread with BLAS at one thread (no BLAS threads spinning against
    /// the row loops); the results concatenated in order. Rethrows the first range's error.
    func inGroups(_ count: Int, width: Int, _ body: (Range<Int>) throws -> ([Double], [Double])) throws -> ([Double], [Double]) {
        let ranges = BoundEngine.groups(count, width: width, budget: rowBudget)
        var results = [([Double], [Double])](repeating: ([], []), count: ranges.count)
        var errors = [(any Error)?](repeating: nil, count: ranges.count)
        results.withUnsafeMutableBufferPointer { out in
            errors.withUnsafeMutableBufferPointer { failed in
                let (out, failed) = (out.baseAddress!, failed.baseAddress!)
                NativeBLAS.withSingleThread {
                    Linalg.parallelForEach(ranges.count) { g in
                        do { out[g] = try body(ranges[g]) } catch { failed[g] = error }
                    }
                }
            }
        }
        if let error = errors.lazy.compactMap({ $0 }).first { throw error }
        return (results.flatMap(\.0), results.flatMap(\.1))
    }

    /// Consecutive ranges of `count` rows of `width` elements each, at most `budget` elements per range
    /// (at least one row).
    static func groups(_ count: Int, width: Int, budget: Int) -> [Range<Int>] {
        let size = max(1, budget / max(width, 1))
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }

    // MARK: Final bounds

    /// Bounds on specᵦ · logits for every sample b of the block, the specification rows of all samples
    /// stacked (`spec` ΣRᵦ × outputs, `sampleOf` the sample of each row).
    func specificationBounds(_ spec: Matrix<Double>, sampleOf: [Int], block: Block, method: BoundPropagation.Method)
        throws -> (lower: [Double], upper: [Double]) {
        let last = network.stages.count - 1
        switch method {
        case .crown:
            return try inGroups(spec.rows, width: max(spec.columns, widestInput)) { group in
                let zero = [Double](repeating: 0, count: group.count)
                return try backward(below: network.stages.count, rows: spec.sliceRows(group).converted(to: T.self), bias: zero, budget: zero,
                                    sampleOf: Array(sampleOf[group]), block: block)
            }
        case .ibp:
            guard last >= 0, let a = affine[last] else {
                // The last stage is not affine: the specification applied to the output interval.
                let (l, u) = block.inputs[network.stages.count]
                var lower = [Double](repeating: 0, count: spec.rows), upper = lower
                for r in 0..<spec.rows {
                    let b = sampleOf[r]
                    for j in 0..<spec.columns {
                        let c = spec[r, j]
                        lower[r] += c >= 0 ? c * l[b, j] : c * u[b, j]
                        upper[r] += c >= 0 ? c * u[b, j] : c * l[b, j]
                    }
                }
                return (lower, upper)
            }
            // The specification merged into the last affine stage (tighter than bounding the logits).
            let merged = try Linalg.matmul(spec, a.weight)
            let bias = try Linalg.matmul(spec, Matrix(rows: a.bias.count, columns: 1, elements: a.bias)).elements
            let (l, u) = block.inputs[last]
            var lower = bias, upper = bias
            for r in 0..<spec.rows {
                let b = sampleOf[r]
                if last == 0 && region.norm == .l2 {
                    var centre = 0.0, norm = 0.0
                    for j in 0..<merged.columns {
                        centre += merged[r, j] * block.x0[b, j]
                        norm += merged[r, j] * merged[r, j]
                    }
                    lower[r] += centre - Double(region.epsilon) * norm.squareRoot()
                    upper[r] += centre + Double(region.epsilon) * norm.squareRoot()
                } else {
                    var centre = 0.0, radius = 0.0
                    for j in 0..<merged.columns {
                        centre += merged[r, j] * 0.5 * (l[b, j] + u[b, j])
                        radius += abs(merged[r, j]) * 0.5 * (u[b, j] - l[b, j])
                    }
                    lower[r] += centre - radius
                    upper[r] += centre + radius
                }
            }
            return (lower, upper)
        }
    }

    /// The widest input of any stage (the width of the stacked rows in a backward pass).
    var widestInput: Int {
        network.stages.indices.map { s in affine[s]?.weight.columns ?? 0 }.max() ?? network.inputFeatures
    }

    // MARK: CROWN's backward pass

    /// Linear bounds `rows`·v + bias on the input v of stage `node`, for rows of several samples at once,
    /// propagated back through the stages below it to the input and concretised over each row's sample's
    /// region. `budget` is each row's rounding budget so far. Returns (lower, upper) per row.
    func backward(below node: Int, rows start: Matrix<T>, bias: [Double], budget: [Double], sampleOf: [Int],
                  block: Block) throws -> ([Double], [Double]) {
        let m = start.rows
        guard m > 0 else { return ([], []) }
        // Rows 0..<m are the lower side; after the first ReLU, rows m..<2m the upper side.
        var a = start
        var sides = 1
        var bias = bias, budget = budget
        for s in stride(from: node - 1, through: 0, by: -1) {
            switch network.stages[s] {
            case .affine:
                // A·(W z + b) = Ã z + A b + E z with Ã = fl(A W_T), E = A W − Ã; E z = E c + E (z − c) where
                // E c = A (W c) − Ã c is computed (float64) and |E (z − c)| ≤ |A| c_s |W| h is budgeted.
                let stage = affine[s]!
                let (width, count) = (a.columns, a.rows)
                var constant = block.image[s]!
                for b in 0..<constant.rows { for j in 0..<width { constant[b, j] += stage.bias[j] } }
                BoundEngine.update(&a, &bias, &budget) { pa, pb, pg in
                    block.budget[s]!.withUnsafeBufferPointer { pz in
                        constant.withUnsafeBufferPointer { pw in
                            let (pz, pw) = (pz.baseAddress!, pw.baseAddress!)
                            BoundEngine.rows(count) { r in
                                let b = sampleOf[r % m]
                                let (dot, slack) = BoundEngine.dots(pa + r * width, pw + b * width, pz + b * width, width)
                                pb[r] += dot
                                pg[r] += slack
                            }
                        }
                    }
                }
                var product = Matrix<T>(uninitializedRows: a.rows, columns: stage.weightT.columns)  // beta 0: never read
                try Linalg.gemm(a, stage.weightT, into: &product)
                a = product
                let columns = a.columns
                BoundEngine.update(&a, &bias, &budget) { pa, pb, _ in
                    block.centre[s]!.withUnsafeBufferPointer { pc in
                        let pc = pc.baseAddress!
                        BoundEngine.rows(count) { r in
                            pb[r] -= BoundEngine.dots(pa + r * columns, pc + sampleOf[r % m] * columns, nil, columns).0
                        }
                    }
                }
            case .activation:
                if sides == 1 {
                    // The two sides part here: stack a copy of the rows for the upper side.
                    var both = Matrix<T>(uninitializedRows: 2 * m, columns: a.columns)
                    a.withUnsafeBufferPointer { src in
                        both.withUnsafeMutableBufferPointer { dst in
                            _ = UnsafeMutableBufferPointer(rebasing: dst[0..<src.count]).initialize(from: src)
                            _ = UnsafeMutableBufferPointer(rebasing: dst[src.count...]).initialize(from: src)
                        }
                    }
                    a = both
                    bias += bias
                    budget += budget
                    sides = 2
                }
                let width = a.columns
                let (relaxation, relaxation32) = (block.relaxation[s]!, block.relaxation32[s])
                BoundEngine.update(&a, &bias, &budget) { pa, pb, pg in
                    relaxation.withUnsafeBufferPointer { px in
                        (relaxation32 ?? Matrix<Float>(rows: 0, columns: 0)).withUnsafeBufferPointer { px32 in
                            BoundEngine.rows(2 * m) { r in
                                let b = sampleOf[r % m], upperSide = r >= m
                                let (shift, slack) = px32.isEmpty
                                    ? BoundEngine.relax(pa + r * width, width, px.baseAddress! + 4 * b * width, upperSide: upperSide)
                                    : BoundEngine.relax32(UnsafeMutableRawPointer(pa + r * width).assumingMemoryBound(to: Float.self), width,
                                                          px32.baseAddress! + 4 * b * width, upperSide: upperSide)
                                pb[r] += shift
                                pg[r] += slack
                            }
                        }
                    }
                }
            case .maxPool:
                throw CertificationError.unsupportedLayer("CROWN has no max-pooling relaxation")
            }
        }
        // Concretise at the input: L∞ Σ aⱼ cⱼ ∓ |aⱼ| hⱼ over the box; L2 a·x₀ ∓ ε ‖a‖₂.
        var lower = [Double](repeating: 0, count: m), upper = lower
        var centre = [Double](repeating: 0, count: a.rows), spread = centre
        let (width, count) = (a.columns, a.rows), e = Double(region.epsilon), norm = region.norm
        let (mid, half) = block.box!
        a.withUnsafeBufferPointer { pa in
            mid.withUnsafeBufferPointer { pm in
                half.withUnsafeBufferPointer { ph in
                    centre.withUnsafeMutableBufferPointer { pc in
                        spread.withUnsafeMutableBufferPointer { ps in
                            let (pa, pm, ph, pc, ps) = (pa.baseAddress!, pm.baseAddress!, ph.baseAddress!, pc.baseAddress!, ps.baseAddress!)
                            BoundEngine.rows(count) { r in
                                let b = sampleOf[r % m], row = pa + r * width
                                switch norm {
                                case .linf:
                                    (pc[r], ps[r]) = BoundEngine.dots(row, pm + b * width, ph + b * width, width)
                                case .l2:
                                    pc[r] = BoundEngine.dots(row, pm + b * width, nil, width).0
                                    ps[r] = e * BoundEngine.dots(row, nil, nil, width).1.squareRoot()
                                }
                            }
                        }
                    }
                }
            }
        }
        for r in 0..<m {
            let upperRow = sides == 1 ? r : r + m
            lower[r] = bias[r] + centre[r] - spread[r] - budget[r]
            upper[r] = bias[upperRow] + centre[upperRow] + spread[upperRow] + budget[upperRow]
        }
        return (lower, upper)
    }

    /// (Σ aⱼ xⱼ, Σ |aⱼ| yⱼ) over a row of n coefficients in float64, four partial sums each; x nil: the
    /// first sum is 0; y nil: the second is Σ aⱼ².
    @inline(__always)
    static func dots(_ a: UnsafePointer<T>, _ x: UnsafePointer<Double>?, _ y: UnsafePointer<Double>?, _ n: Int) -> (Double, Double) {
        var first = SIMD4<Double>(), second = SIMD4<Double>()
        var j = 0
        while j + 4 <= n {
            let v = SIMD4<Double>(Double(a[j]), Double(a[j + 1]), Double(a[j + 2]), Double(a[j + 3]))
            if let x { first += v * UnsafeRawPointer(x + j).loadUnaligned(as: SIMD4<Double>.self) }
            if let y { second += magnitude(v) * UnsafeRawPointer(y + j).loadUnaligned(as: SIMD4<Double>.self) } else { second += v * v }
            j += 4
        }
        var (s, t) = (first.sum(), second.sum())
        while j < n {
            let v = Double(a[j])
            if let x { s += v * x[j] }
            if let y { t += abs(v) * y[j] } else { t += v * v }
            j += 1
        }
        return (s, t)
    }

    @inline(__always)
    static func magnitude(_ v: SIMD4<Double>) -> SIMD4<Double> { v.replacing(with: -v, where: v .< 0) }

    /// One row through a ReLU's relaxation (`relax`: the sample's four blocks of `reluRelaxation`): the
    /// lower side takes the upper line where its coefficient is negative, the upper side where it is
    /// positive (stable neurons: both slopes 0 or 1, no shift, no slack). Returns the constant the line's
    /// intercepts add and the rounding budget of the products, 2u Σ |fl(a·s)| max(−l, u), in float64.
    @inline(__always)
    static func relax(_ row: UnsafeMutablePointer<T>, _ width: Int, _ relax: UnsafePointer<Double>, upperSide: Bool) -> (Double, Double) {
        let (up, low, intercept, size) = (relax, relax + width, relax + 2 * width, relax + 3 * width)
        var shift = 0.0, slack = 0.0
        for j in 0..<width {
            let v = Double(row[j])
            let takesLine = upperSide ? v > 0 : v < 0
            let product = T(v * (takesLine ? up[j] : low[j]))
            row[j] = product
            if takesLine {
                shift += v * intercept[j]
                slack += abs(Double(product)) * size[j]
            }
        }
        return (shift, 2 * T.unitRoundoff * slack)
    }

    /// `relax` for float32 rows in float32 SIMD arithmetic, `relax` the float32 blocks of `float32(_:)`.
    /// The slope's and the product's roundings (≤ 2u(1 + u)|p| per product p) are budgeted as 3u |p|
    /// max(−l, u); the intercept terms are summed in float32 in eight lanes of at most n/8 + 16 terms
    /// each, whose error γ_k Σ |v·icpt| (k = n/8 + 16) and the intercept's rounding u |v·icpt| are budgeted
    /// too, every budget sum inflated by (1 + 2γ_k) for its own rounding.
    @inline(__always)
    static func relax32(_ row: UnsafeMutablePointer<Float>, _ width: Int, _ relax: UnsafePointer<Float>, upperSide: Bool) -> (Double, Double) {
        typealias V = SIMD8<Float>
        let (up, low, intercept, size) = (relax, relax + width, relax + 2 * width, relax + 3 * width)
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func magnitude(_ v: V) -> V { v.replacing(with: -v, where: v .< 0) }
        var shifts = V(), terms = V(), products = V()
        let zero = V()
        var j = 0
        while j + 8 <= width {
            let v = load(row + j)
            let takesLine = upperSide ? v .> zero : v .< zero
            let p = v * load(low + j).replacing(with: load(up + j), where: takesLine)
            UnsafeMutableRawPointer(row + j).storeBytes(of: p, as: V.self)
            let t = zero.replacing(with: v * load(intercept + j), where: takesLine)
            shifts += t
            terms += magnitude(t)
            products += zero.replacing(with: magnitude(p) * load(size + j), where: takesLine)
            j += 8
        }
        var (shift, term, product) = (Double(shifts.sum()), Double(terms.sum()), Double(products.sum()))
        while j < width {
            let v = row[j]
            let takesLine = upperSide ? v > 0 : v < 0
            let p = v * (takesLine ? up[j] : low[j])
            row[j] = p
            if takesLine {
                let t = Double(v) * Double(intercept[j])
                (shift, term, product) = (shift + t, term + abs(t), product + Double(abs(p) * size[j]))
            }
            j += 1
        }
        let u = Float.unitRoundoff, k = Double(width / 8 + 16)
        let gamma = k * u / (1 - k * u)
        return (shift, (3 * u * product + (gamma + 2 * u) * term) * (1 + 2 * gamma))
    }

    /// The float32 blocks for `relax32`: slopes and intercepts rounded to nearest, max(−l, u) rounded up.
    static func float32(_ relaxation: Matrix<Double>) -> Matrix<Float> {
        let width = relaxation.columns / 4
        var out = relaxation.converted(to: Float.self)
        for b in 0..<relaxation.rows {
            for j in (3 * width)..<(4 * width) where Double(out[b, j]) < relaxation[b, j] { out[b, j] = out[b, j].nextUp }
        }
        return out
    }

    /// Per sample (B × 4·width, four blocks of width): the upper line's slope s = u/(u − l), the lower
    /// slope (1 if u > −l, else 0), the upper line's intercept −l·s, and max(−l, u) on unstable neurons
    /// (l < 0 < u); 1, 1, 0, 0 on active ones (l ≥ 0) and 0, 0, 0, 0 on dead ones (u ≤ 0).
    static func reluRelaxation(_ bounds: (lower: Matrix<Double>, upper: Matrix<Double>)) -> Matrix<Double> {
        let width = bounds.lower.columns
        var out = Matrix<Double>(rows: bounds.lower.rows, columns: 4 * width)
        for b in 0..<bounds.lower.rows {
            for j in 0..<width {
                let (l, u) = (bounds.lower[b, j], bounds.upper[b, j])
                if l >= 0 {
                    (out[b, j], out[b, width + j]) = (1, 1)
                } else if u > 0 {
                    let slope = u / (u - l)
                    (out[b, j], out[b, width + j]) = (slope, u > -l ? 1 : 0)
                    (out[b, 2 * width + j], out[b, 3 * width + j]) = (-l * slope, max(-l, u))
                }
            }
        }
        return out
    }

    /// `body` on the base addresses of the rows, their biases and their budgets (all made unique first).
    static func update(_ a: inout Matrix<T>, _ bias: inout [Double], _ budget: inout [Double],
                       _ body: (UnsafeMutablePointer<T>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        a.withUnsafeMutableBufferPointer { pa in
            bias.withUnsafeMutableBufferPointer { pb in
                budget.withUnsafeMutableBufferPointer { pg in body(pa.baseAddress!, pb.baseAddress!, pg.baseAddress!) }
            }
        }
    }

    /// `body(r)` for every row r, in parallel over fixed contiguous parts (a row's work depends on that row
    /// alone, so the results do not depend on the thread count).
    static func rows(_ count: Int, _ body: (Int) -> Void) {
        let parts = min(Linalg.reductionParts, count)
        guard parts > 1 else { for r in 0..<count { body(r) }; return }
        Linalg.parallelForEach(parts) { p in
            for r in Linalg.partition(count, parts: parts, part: p) { body(r) }
        }
    }
}
