import FaultlineLinalg
import FaultlineNN

/// Square Attack (Andriushchenko et al. 2020), L∞: a score-based black-box attack that needs only
/// logits, as AutoAttack runs it (margin loss, p_init = 0.8, 5,000 queries).
///
/// Start: vertical stripes, x + ε·s with one random sign per (channel, column), clamped to the box.
/// Each query, for every sample still classified correctly: a square window of side
/// s = clamp(round(√(p·d/c)), 1, h − 1) at a random position gets a new random sign per channel
/// (x_new = clamp(x_best + 2ε·sign on the window, ε-ball, box)); the candidate replaces x_best if it
/// lowers the loss or is misclassified. p halves on AutoAttack's schedule (after 10, 50, 200, 500,
/// 1,000, 2,000, 4,000, 6,000 and 8,000 ten-thousandths of the budget).
///
/// One deliberate difference from AutoAttack's code: the window and its signs are drawn **per sample**
/// (as in the original paper's code), from a Philox stream keyed by (seed, sample, restart), so results
/// do not depend on the batch size; AutoAttack shares one draw across its batch.
public struct SquareAttack: Sendable {
    /// The loss the proposals must lower.
    public enum Objective: String, Sendable, Codable {
        /// z_y − max_{j≠y} z_j (AutoAttack's default).
        case margin
        /// −CE(z, y).
        case crossEntropy = "ce"
    }

    /// The L∞ budget ε.
    public var epsilon: Float
    /// Model evaluations per sample, the start included.
    public var queries: Int = 5000
    /// p_init: the initial share of the pixels a window covers.
    public var pInit: Float = 0.8
    /// The loss the proposals must lower.
    public var objective: Objective = .margin
    /// Runs from new random starts on the samples still robust.
    public var restarts: Int = 1
    /// Layout of one input row (channels × height × width); nil: the model's first convolution's input,
    /// else one channel of √d × √d for square d.
    public var imageShape: ImageShape?
    /// The valid input box (one interval, or one per channel): iterates are clamped to it.
    public var box: InputBox = .unit
    /// Seed of the starts, windows and signs (Philox keyed by seed, sample, restart).
    public var seed: UInt64 = 0
    /// The index of the input's first row in a larger data set: row i's proposals are drawn from the
    /// stream keyed by `sampleOffset + i` (or `sampleKeys[i]`); see `SampleKeyed`.
    public var sampleOffset: Int = 0
    public var sampleKeys: [Int]?
    /// Rows per batch (results do not depend on it).
    public var batchSize: Int = 1024
    /// The GEMM backend (nil: the default).
    public var backend: Backend?

    /// Square with AutoAttack's settings (5,000 queries, p_init 0.8, margin loss).
    public init(epsilon: Float, queries: Int = 5000, pInit: Float = 0.8) {
        self.epsilon = epsilon
        self.queries = queries
        self.pInit = pInit
    }

    /// The share p of the image area changed at iteration `iteration` of `queries` (AutoAttack's schedule).
    public static func windowShare(pInit: Float, iteration: Int, queries: Int) -> Float {
        let divisor: Float = switch Int(Double(iteration) / Double(queries) * 10000) {
        case 11...50: 2
        case 51...200: 4
        case 201...500: 8
        case 501...1000: 16
        case 1001...2000: 32
        case 2001...4000: 64
        case 4001...6000: 128
        case 6001...8000: 256
        case 8001...: 512
        default: 1
        }
        return pInit / divisor
    }

    func resolvedShape(_ model: some DifferentiableClassifier, features d: Int) throws -> ImageShape {
        if let imageShape {
            guard imageShape.features == d else { throw AttackError.invalidParameter("image shape \(imageShape) has \(imageShape.features) features, the inputs \(d)") }
            guard imageShape.height >= 2, imageShape.width >= 2 else { throw AttackError.invalidParameter("Square needs images at least 2×2, got \(imageShape)") }
            return imageShape
        }
        if let shape = model.inputImageShape { return shape }
        let side = Int(Double(d).squareRoot().rounded())
        guard side * side == d, side >= 2 else {
            throw AttackError.invalidParameter("cannot infer an image shape for \(d) features; set `imageShape` (channels × height × width)")
        }
        return ImageShape(channels: 1, height: side, width: side)
    }

    /// Attacks every row of `x`. `successStep` counts queries (1: the stripe start already fooled it).
    public func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> AttackResult {
        try AttackInputs.checkEpsilon(epsilon)
        guard queries >= 1, restarts >= 1, batchSize >= 1 else { throw AttackError.invalidParameter("queries, restarts and batch size must be ≥ 1") }
        guard pInit > 0, pInit <= 1 else { throw AttackError.invalidParameter("p_init = \(pInit) must lie in (0, 1]") }
        let bounds = try AttackInputs.check(model, x, labels: labels, targets: nil, box: box)
        try checkSampleKeys(rows: x.rows)
        let shape = try resolvedShape(model, features: x.columns)
        let n = x.rows, batch = min(batchSize, max(n, 1))
        let context = ForwardContext(backend: backend)
        let workspace = model.makeWorkspace(capacity: batch)
        let clean = try model.logits(x, batchSize: batch, context: context)
        let cleanPredictions = try Linalg.rowArgmax(clean)
        var robust = (0..<n).map { cleanPredictions[$0] == labels[$0] }
        var successStep = [Int?](repeating: nil, count: n)
        for i in 0..<n where !robust[i] { successStep[i] = 0 }
        var adversarial = x
        let state = SquareBatch(capacity: batch, shape: shape, bounds: bounds)
        for restart in 0..<restarts {
            let attacked = (0..<n).filter { robust[$0] }
            for first in stride(from: 0, to: attacked.count, by: batch) {
                let rows = Array(attacked[first..<min(first + batch, attacked.count)])
                state.load(rows: rows, x: x, labels: labels, attack: self, restart: restart)
                state.run(model, self, workspace: workspace, context: context)
                for slot in 0..<state.batch.count where state.queriesUsed[slot] != nil {
                    let i = state.batch.origin[slot]
                    robust[i] = false
                    successStep[i] = state.queriesUsed[slot]
                    state.copyOut(slot, into: &adversarial, row: i)
                }
                progress?(restart * n + first + rows.count, restarts * n)
            }
        }
        return AttackResult.evaluate(model, adversarial: adversarial, labels: labels, targets: nil, successStep: successStep,
                                     workspace: workspace, context: context)
    }
}

/// The state of one Square batch: clean rows, best points, candidates, per-sample losses and streams,
/// all registered in `batch` for compaction.
final class SquareBatch {
    let capacity: Int, shape: ImageShape
    let batch: BatchRows
    let clean, best, candidate: AlignedBuffer<Float>
    let labels: RowColumn<Int>, bestLoss: RowColumn<Float>
    let queriesUsed: RowColumn<Int?>
    let streams: RowColumn<Philox>
    /// The input box per feature.
    let bounds: BoxBounds

    init(capacity: Int, shape: ImageShape, bounds: BoxBounds) {
        self.bounds = bounds
        self.capacity = capacity
        self.shape = shape
        batch = BatchRows(capacity: capacity)
        (clean, best, candidate) = (batch.floats(width: shape.features), batch.floats(width: shape.features), batch.floats(width: shape.features))
        (labels, bestLoss) = (batch.column(repeating: 0), batch.column(repeating: 0))
        queriesUsed = batch.column(repeating: nil)
        streams = batch.column(repeating: Philox(seed: 0))
    }

    func load(rows: [Int], x: Matrix<Float>, labels allLabels: [Int], attack: SquareAttack, restart: Int) {
        batch.load(rows)
        let d = shape.features, eps = attack.epsilon, lo = bounds.lo, hi = bounds.hi
        x.withUnsafeBufferPointer { px in
            for (slot, i) in rows.enumerated() {
                streams[slot] = Philox(seed: attack.seed, stream: UInt64(truncatingIfNeeded: attack.key(i)) << 16 | UInt64(restart))
                labels[slot] = allLabels[i]
                queriesUsed[slot] = nil
                let c = clean.pointer + slot * d, b = candidate.pointer + slot * d
                c.update(from: px.baseAddress! + i * d, count: d)
                // Vertical stripes: one sign per (channel, column).
                for ch in 0..<shape.channels {
                    for col in 0..<shape.width {
                        let sign: Float = streams.pointer[slot].uniform() < 0.5 ? -1 : 1
                        for row in 0..<shape.height {
                            let j = (ch * shape.height + row) * shape.width + col
                            b[j] = min(max(c[j] + eps * sign, lo[j]), hi[j])
                        }
                    }
                }
            }
        }
    }

    func run<Model: DifferentiableClassifier>(_ model: Model, _ attack: SquareAttack, workspace: Model.Workspace, context: ForwardContext) {
        let d = shape.features
        var live = batch.count
        live = evaluateCandidates(model, attack, live: live, query: 1, workspace: workspace, context: context)
        for iteration in 0..<(attack.queries - 1) where live > 0 {
            let p = SquareAttack.windowShare(pInit: attack.pInit, iteration: iteration, queries: attack.queries)
            let side = min(max(Int((Double(p) * Double(d) / Double(shape.channels)).squareRoot().rounded()), 1), min(shape.height, shape.width) - 1)
            for slot in 0..<live { propose(slot, side: side, attack: attack) }
            live = evaluateCandidates(model, attack, live: live, query: iteration + 2, workspace: workspace, context: context)
        }
    }

    /// candidate = clamp(best + 2ε·sign on a random side × side window, ε-ball around clean, box).
    private func propose(_ slot: Int, side: Int, attack: SquareAttack) {
        let d = shape.features, eps = attack.epsilon, lo = bounds.lo, hi = bounds.hi
        let c = clean.pointer + slot * d, b = best.pointer + slot * d, out = candidate.pointer + slot * d
        out.update(from: b, count: d)
        let top = Int(streams.pointer[slot].uniform() * Double(shape.height - side))
        let left = Int(streams.pointer[slot].uniform() * Double(shape.width - side))
        for ch in 0..<shape.channels {
            let sign: Float = streams.pointer[slot].uniform() < 0.5 ? -1 : 1
            for row in top..<(top + side) {
                for col in left..<(left + side) {
                    let j = (ch * shape.height + row) * shape.width + col
                    out[j] = min(max(min(max(b[j] + 2 * eps * sign, c[j] - eps), c[j] + eps), lo[j]), hi[j])
                }
            }
        }
    }

    /// Evaluates the candidates of the live rows; a candidate becomes the best point when it is the
    /// start (query 1), lowers the loss or is misclassified. Fooled rows move behind the live ones.
    private func evaluateCandidates<Model: DifferentiableClassifier>(_ model: Model, _ attack: SquareAttack, live: Int, query: Int,
                                                                     workspace: Model.Workspace, context: ForwardContext) -> Int {
        let d = shape.features
        let z = model.logits(candidate.pointer, rows: live, workspace: workspace, context: context)
        return batch.compact(live: live, alongside: z) { slot in
            let row = z.base + slot * z.rowStride
            let y = labels[slot]
            var other = -Float.infinity, m: Float = -.infinity
            for j in 0..<z.columns {
                if j != y { other = max(other, row[j]) }
                m = max(m, row[j])
            }
            let margin = row[y] - other
            var loss = margin
            if attack.objective == .crossEntropy {
                var s: Float = 0
                for j in 0..<z.columns { s += Float.exp(row[j] - m) }
                loss = -(m + Float.log(s) - row[y])
            }
            let improved = query == 1 || loss < bestLoss[slot]
            if improved || margin <= 0 { (best.pointer + slot * d).update(from: candidate.pointer + slot * d, count: d) }
            if improved { bestLoss[slot] = loss }
            guard margin <= 0 else { return false }
            queriesUsed[slot] = query  // fooled: the row (and its logits) move behind the live ones
            return true
        }.live
    }

    func copyOut(_ slot: Int, into matrix: inout Matrix<Float>, row i: Int) {
        best.copyRow(slot, width: shape.features, into: &matrix, row: i)
    }
}
