import FaultlineLinalg

/// Class-conditional Gaussians — class means with one shared (tied) covariance, and optionally one
/// covariance per class — the model behind the Mahalanobis out-of-distribution scores (Lee et al. 2018).
///
/// The state is mergeable sufficient statistics in Double: per-class counts and sums and the scatter
/// about the class means, Σᵢ (xᵢ − μ_yᵢ)(xᵢ − μ_yᵢ)ᵀ (tied), or one such matrix per class. Each
/// `update` centres its rows on the batch's own class means (no cancellation), forms the scatter with
/// SYRK over blocks of rows, and merges it into the state with the parallel-axis rule
/// S = S_a + S_b + Σ_k (n_a,k·n_b,k / n_k)·δ_k δ_kᵀ, δ_k = μ_a,k − μ_b,k (Chan, Golub and LeVeque).
/// Fitting on chunks, or merging fits, therefore gives the state of the fit on the union up to rounding.
/// Covariances are normalised by n (the MLE), as scikit-learn's `EmpiricalCovariance`.
///
/// Accumulation: `.float64` promotes each block to Double and runs a float64 SYRK (exact products,
/// chunked = whole to ~1e-15 relative); `.float32Blocks` runs a float32 SYRK over centred blocks of
/// `blockRows` rows and adds each block's result into the Double state (relative error ~√blockRows·u₃₂,
/// ≈ 4e-6 for the default 4096 rows; about twice as fast — the float32 SYRK does half the memory traffic at twice the
/// lanes). Cost: N·d²/2 multiply-adds per update (×K-independent), plus O(K·d²) per merge.
///
/// Determinism: the blocks are a function of the rows and `blockRows` only; each block's SYRK runs
/// single-threaded (OpenBLAS held at one thread) with the blocks in parallel, and block scatters are
/// added in block order, so the fit is bit-identical for any thread count (tested for 1 and 2).
public struct GaussianFit: Sendable {
    /// How each block's scatter is formed before it is added to the Double state.
    public enum Accumulation: String, Sendable, CaseIterable {
        /// Each block's scatter from a float64 SYRK (exact products), or from a float32 SYRK over centred blocks added in Double (≈ 4e-6 relative for 4096-row blocks, about twice as fast).
        case float64, float32Blocks
    }

    /// Features per row.
    public let dimension: Int
    /// The number of classes; labels must be below it.
    public let classes: Int
    /// How block scatters are formed.
    public let accumulation: Accumulation
    /// Whether one scatter matrix per class is kept (for `classCovariance(_:)` and the per-class detector).
    public let keepsClassCovariances: Bool
    /// Rows seen per class.
    public private(set) var counts: [Int]
    /// classes × dimension sums.
    public private(set) var sums: Matrix<Double>
    /// Scatter about the class means: one matrix (tied) or one per class.
    private var scatters: [Matrix<Double>]
    /// Parallel tasks of the streaming passes: fixed, so the rounding does not depend on the thread count.
    static let tasks = 4
    /// Rows per SYRK block (the float32 error grows like √blockRows).
    public var blockRows = 4096

    /// An empty fit; `dimension` and `classes` must be positive (a precondition). `perClassCovariance` keeps one scatter per class as well.
    public init(dimension: Int, classes: Int, accumulation: Accumulation = .float64, perClassCovariance: Bool = false) {
        precondition(dimension > 0 && classes > 0, "GaussianFit needs a positive dimension and class count")
        self.dimension = dimension
        self.classes = classes
        self.accumulation = accumulation
        keepsClassCovariances = perClassCovariance
        counts = [Int](repeating: 0, count: classes)
        sums = Matrix(rows: classes, columns: dimension)
        scatters = [Matrix<Double>](repeating: Matrix(rows: dimension, columns: dimension), count: perClassCovariance ? classes : 1)
    }

    /// Rows seen in all.
    public var total: Int { counts.reduce(0, +) }

    /// Adds a batch of rows. Throws `ShiftError.invalidInput` on a dimension mismatch, non-finite
    /// features or labels out of range.
    public mutating func update(_ x: Matrix<Float>, labels: [Int]) throws {
        guard x.columns == dimension else { throw ShiftError.invalidInput("features have \(x.columns) dimensions, the fit has \(dimension)") }
        guard labels.count == x.rows else { throw ShiftError.invalidInput("\(x.rows) rows but \(labels.count) labels") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw ShiftError.invalidInput("label \(labels[bad]) at row \(bad) is outside 0..<\(classes)")
        }
        guard x.rows > 0 else { return }
        self = try merged(with: batchFit(x, labels: labels))
    }

    /// The fit of one batch on its own: class sums (one sequential pass, `tasks` contiguous parts of
    /// the rows in parallel), then the scatter of the rows centred on the batch's class means, in blocks of
    /// consecutive rows (tied) or of each class's rows (per class).
    private func batchFit(_ x: Matrix<Float>, labels: [Int]) throws -> GaussianFit {
        var batch = GaussianFit(dimension: dimension, classes: classes, accumulation: accumulation, perClassCovariance: keepsClassCovariances)
        for y in labels { batch.counts[y] += 1 }
        batch.sums = classSums(x, labels: labels)
        // A NaN or ±∞ feature makes its class sum non-finite (Double sums of finite floats cannot
        // overflow), so checking K·d sums replaces a scan of the N·d features.
        guard batch.sums.isFinite else {
            let row = (0..<x.rows).first { i in x.row(i).contains { !$0.isFinite } } ?? 0
            throw ShiftError.invalidInput("features contain NaN or infinite values (first at row \(row))")
        }
        let means = batch.means
        let groups: [(target: Int, rows: [Int])]
        if keepsClassCovariances {
            var rowsOfClass = [[Int]](repeating: [], count: classes)
            for (i, y) in labels.enumerated() { rowsOfClass[y].append(i) }
            groups = rowsOfClass.enumerated().map { ($0.offset, $0.element) }
        } else {
            groups = [(0, Array(0..<x.rows))]
        }
        // Blocks of rows in a fixed order; each round of `tasks` blocks runs in parallel, each block's
        // scatter a single-threaded SYRK into its own slot, added to the state in block order.
        var jobs: [(target: Int, rows: ArraySlice<Int>)] = []
        for (target, rows) in groups {
            for start in stride(from: 0, to: rows.count, by: blockRows) { jobs.append((target, rows[start..<min(start + blockRows, rows.count)])) }
        }
        for first in stride(from: 0, to: jobs.count, by: Self.tasks) {
            let round = jobs[first..<min(first + Self.tasks, jobs.count)]
            switch accumulation {
            case .float64:
                for (job, scatter) in zip(round, blockScatters(x, round.map(\.rows), labels: labels, means: means, as: Double.self)) {
                    batch.scatters[job.target].add(scatter)
                }
            case .float32Blocks:
                for (job, scatter) in zip(round, blockScatters(x, round.map(\.rows), labels: labels, means: means, as: Float.self)) {
                    batch.scatters[job.target].add(scatter)
                }
            }
        }
        return batch
    }

    /// The scatter Σ (xᵢ − μ_yᵢ)(xᵢ − μ_yᵢ)ᵀ of each block of rows in the working precision, the blocks
    /// in parallel, each one single-threaded SYRK (OpenBLAS held at one thread), so every scatter is
    /// bit-identical for any thread count.
    private func blockScatters<T: LinalgScalar>(_ x: Matrix<Float>, _ blocks: [ArraySlice<Int>], labels: [Int], means: Matrix<Double>,
                                                as: T.Type) -> [Matrix<T>] {
        var scatters = [Matrix<T>](repeating: Matrix(rows: 0, columns: 0), count: blocks.count)
        scatters.withUnsafeMutableBufferPointer { slots in
            NativeBLAS.withSingleThread {
                Linalg.parallelForEach(blocks.count) { b in
                    let centred = gatherCentred(x, rows: blocks[b], labels: labels, means: means, as: T.self)
                    var scatter = Matrix<T>(uninitializedRows: dimension, columns: dimension)
                    // The shapes agree by construction: SYRK cannot throw here.
                    guard (try? Linalg.syrk(centred, transA: .transposed, into: &scatter)) != nil else { preconditionFailure("GaussianFit: SYRK shapes") }
                    slots[b] = scatter
                }
            }
        }
        return scatters
    }

    /// Per-class sums of the rows in Double: rows in order (streaming), each thread into its own
    /// partial sums, added at the end.
    private func classSums(_ x: Matrix<Float>, labels: [Int]) -> Matrix<Double> {
        let d = dimension, tasks = Self.tasks
        var partials = Matrix<Double>(rows: tasks * classes, columns: d)  // task t owns rows t·K ..< (t + 1)·K
        x.withUnsafeBufferPointer { px in
            partials.withUnsafeMutableBufferPointer { pp in
                let base = px.baseAddress!, sums = pp.baseAddress!
                Linalg.parallelForEach(tasks) { t in
                    for i in Linalg.partition(x.rows, parts: tasks, part: t) {
                        let row = base + i * d, sum = sums + (t * classes + labels[i]) * d
                        for j in 0..<d { sum[j] += Double(row[j]) }
                    }
                }
            }
        }
        var total = partials.sliceRows(0..<classes)
        for t in 1..<tasks { total.add(partials.sliceRows((t * classes)..<((t + 1) * classes))) }
        return total
    }

    /// Rows `rows` of x, each minus its class mean, in the working precision (float32: the means
    /// rounded once to float32, which shifts every centred row of a class by the same ≤ u·|μ| and so
    /// changes the scatter only at second order). `tasks` parts of the rows are copied in parallel.
    private func gatherCentred<T: LinalgScalar>(_ x: Matrix<Float>, rows: ArraySlice<Int>, labels: [Int], means: Matrix<Double>, as: T.Type) -> Matrix<T> {
        let d = dimension
        let mu = means.converted(to: T.self)
        var out = Matrix<T>(uninitializedRows: rows.count, columns: d)
        let indices = Array(rows), tasks = Self.tasks
        x.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                mu.withUnsafeBufferPointer { pm in
                    let src = px.baseAddress!, dst = po.baseAddress!, m = pm.baseAddress!
                    Linalg.parallelForEach(tasks) { task in
                        for r in Linalg.partition(indices.count, parts: tasks, part: task) {
                            let i = indices[r]
                            let from = src + i * d, to = dst + r * d, mean = m + labels[i] * d
                            for j in 0..<d { to[j] = T(from[j]) - mean[j] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The fit on the union of both fits' data (the parallel-axis merge of the scatters).
    public func merged(with other: GaussianFit) throws -> GaussianFit {
        guard other.dimension == dimension, other.classes == classes, other.keepsClassCovariances == keepsClassCovariances else {
            throw ShiftError.invalidInput("cannot merge a \(other.dimension)-d, \(other.classes)-class fit\(other.keepsClassCovariances ? " with" : " without") per-class covariances into a \(dimension)-d, \(classes)-class fit\(keepsClassCovariances ? " with" : " without") them")
        }
        var out = self
        let meansA = means, meansB = other.means
        // Rows √(n_a n_b / n)·(μ_a − μ_b) of the classes both fits have seen.
        var shifts = Matrix<Double>(rows: classes, columns: dimension)
        for k in 0..<classes where counts[k] > 0 && other.counts[k] > 0 {
            let na = Double(counts[k]), nb = Double(other.counts[k])
            let w = (na * nb / (na + nb)).squareRoot()
            for j in 0..<dimension { shifts[k, j] = w * (meansA[k, j] - meansB[k, j]) }
        }
        for k in 0..<classes { out.counts[k] += other.counts[k] }
        out.sums.add(other.sums)
        for t in scatters.indices {
            out.scatters[t].add(other.scatters[t])
            let rows = keepsClassCovariances ? shifts.sliceRows(t..<(t + 1)) : shifts
            try NativeBLAS.withSingleThread { try Linalg.syrk(rows, transA: .transposed, alpha: 1, beta: 1, into: &out.scatters[t]) }
        }
        return out
    }

    /// All classes pooled into one: the background Gaussian of the relative Mahalanobis distance.
    /// Its scatter is the within-class scatter plus the between-class scatter Σ_k n_k (μ_k − μ)(μ_k − μ)ᵀ.
    public func pooled() throws -> GaussianFit {
        var out = GaussianFit(dimension: dimension, classes: 1, accumulation: accumulation)
        out.counts = [total]
        let n = Double(total), classMeans = means
        var overall = Matrix<Double>(rows: 1, columns: dimension)
        for k in 0..<classes { for j in 0..<dimension { overall[0, j] += sums[k, j] } }
        var between = Matrix<Double>(rows: classes, columns: dimension)
        for k in 0..<classes where counts[k] > 0 {
            let w = Double(counts[k]).squareRoot()
            for j in 0..<dimension { between[k, j] = w * (classMeans[k, j] - overall[0, j] / n) }
        }
        out.sums = overall
        out.scatters = [withinScatter]
        try NativeBLAS.withSingleThread { try Linalg.syrk(between, transA: .transposed, alpha: 1, beta: 1, into: &out.scatters[0]) }
        return out
    }

    /// The mean of every row seen (Double; zeros before any row).
    public var overallMean: [Double] {
        var m = [Double](repeating: 0, count: dimension)
        for k in 0..<classes { for j in 0..<dimension { m[j] += sums[k, j] } }
        let n = Double(max(total, 1))
        return m.map { $0 / n }
    }

    /// Class means (classes × dimension); a class with no samples has a zero row.
    public var means: Matrix<Double> {
        var m = sums
        for k in 0..<classes where counts[k] > 0 { for j in 0..<dimension { m[k, j] /= Double(counts[k]) } }
        return m
    }

    /// Σᵢ (xᵢ − μ_yᵢ)(xᵢ − μ_yᵢ)ᵀ over every row seen.
    private var withinScatter: Matrix<Double> {
        guard keepsClassCovariances else { return scatters[0] }
        var total = scatters[0]
        for k in 1..<classes { total.add(scatters[k]) }
        return total
    }

    /// The tied covariance, normalised by n.
    public var covariance: Matrix<Double> {
        let n = Double(total)
        return withinScatter.map { $0 / n }
    }

    /// The covariance of class k about its mean, normalised by n_k. Throws when the fit was made
    /// without `perClassCovariance` or the class has no samples.
    public func classCovariance(_ k: Int) throws -> Matrix<Double> {
        guard keepsClassCovariances else { throw ShiftError.invalidInput("this fit keeps only the tied covariance; create it with perClassCovariance: true") }
        guard k >= 0 && k < classes, counts[k] > 0 else { throw ShiftError.invalidInput("class \(k) has no samples in this fit") }
        let nk = Double(counts[k])
        return scatters[k].map { $0 / nk }
    }
}

extension Matrix where Scalar == Double {
    /// self += other, element by element (same shape).
    mutating func add(_ other: Matrix<Double>) {
        withUnsafeMutableBufferPointer { o in other.withUnsafeBufferPointer { b in for i in o.indices { o[i] += b[i] } } }
    }

    /// self += other promoted to Double (same shape).
    mutating func add(_ other: Matrix<Float>) {
        withUnsafeMutableBufferPointer { o in other.withUnsafeBufferPointer { b in for i in o.indices { o[i] += Double(b[i]) } } }
    }
}

extension GaussianFit {
    /// The fit of the rows of every rank of a job, on every rank. Each rank fits its own rows (its shard),
    /// then calls this: the ranks' states (counts, class sums, scatters: C + C·d + S·d² doubles, S = 1 tied
    /// or C per class) are all-gathered and merged in rank order with `merged(with:)`, so every rank
    /// holds the identical fit. It equals the one-process fit of all the rows up to rounding (the
    /// parallel-axis merge; tested ≤ 1e-12 relative for K = 1, 2, 3 and shards of 0 rows). Bytes sent per
    /// rank: one state, independent of N; received: K states. With a `SingleProcessCommunicator` it
    /// returns `self` unchanged.
    /// - Throws: `ShiftError.invalidInput` (on every rank) when the ranks' fits differ in dimension, classes,
    ///   accumulation or per-class covariances; `CommunicatorError`.
    public func allMerged(over communicator: some Communicator) throws -> GaussianFit {
        guard communicator.size > 1 else { return self }
        let shape = [dimension, classes, keepsClassCovariances ? 1 : 0, accumulation == .float64 ? 0 : 1]
        let shapes = try communicator.allgathervPerRank(shape)
        guard shapes.allSatisfy({ $0 == shape }) else {
            throw ShiftError.invalidInput("the ranks' Gaussian fits differ in [dimension, classes, per-class, accumulation]: \(shapes)")
        }
        var state = counts.map(Double.init)
        state += sums.withUnsafeBufferPointer { Array($0) }
        for s in scatters { state += s.withUnsafeBufferPointer { Array($0) } }
        let states = try communicator.allgathervPerRank(state)
        var out: GaussianFit?
        for r in states.indices {
            var fit = GaussianFit(dimension: dimension, classes: classes, accumulation: accumulation, perClassCovariance: keepsClassCovariances)
            fit.blockRows = blockRows
            let values = states[r], d = dimension
            fit.counts = values[0..<classes].map { Int($0) }
            var offset = classes
            fit.sums.withUnsafeMutableBufferPointer { _ = $0.initialize(from: values[offset..<(offset + classes * d)]) }
            offset += classes * d
            for t in fit.scatters.indices {
                fit.scatters[t].withUnsafeMutableBufferPointer { _ = $0.initialize(from: values[offset..<(offset + d * d)]) }
                offset += d * d
            }
            out = try out.map { try $0.merged(with: fit) } ?? fit
        }
        return out!
    }
}
