import FaultlineLinalg
import FaultlineNN

/// Auto-PGD (Croce & Hein 2020) as in the reference AutoAttack code (`autopgd_base.py`): APGD-CE,
/// APGD-DLR and their targeted versions (APGD-T).
///
/// Per run, on the samples still classified correctly: a random start on the ε-sphere of the norm
/// (L∞: x + ε·t/‖t‖∞, t ~ U(−1, 1)^d; L2: x + ε·t/‖t‖₂, t ~ N(0, I); then clamped to the box), step
/// size η = 2ε, and for i = 0..<steps with a = 1 at i = 0 and 0.75 afterwards
///
///     z = P(xᵢ + η·sign(g))                  (L2: η·g/‖g‖₂)
///     xᵢ₊₁ = P(xᵢ + a(z − xᵢ) + (1 − a)(xᵢ − xᵢ₋₁))
///
/// with P the projection onto the ε-ball, then the box. The point with the highest loss is kept (with
/// its gradient). At the checkpoints (`checkpoints(steps:)`: after 22, 41, 57, 70, 80, 87, 93, 99
/// iterations for 100 steps) η is halved, and the iterate reset to the best point, for every sample
/// where the loss rose in at most ρ·k of the last k steps, or where η was not halved at the previous
/// checkpoint and the best loss has not improved since. The reference's quirks are kept: the first
/// checkpoint compares the first loss with a zero-initialised slot, and the momentum term is not reset
/// when a sample jumps back to its best point.
///
/// Success is untargeted in every variant (as in AutoAttack, APGD-T counts any misclassification):
/// a broken sample returns its latest misclassified iterate (with `earlyStop`, its first one and it is
/// no longer updated), an unbroken sample returns the clean input. Each restart and each target runs
/// only on samples still robust. Random starts are Philox draws keyed by (seed, sample, target rank,
/// restart), so results do not depend on the batch size; with `backend: .simd` they are bit-identical
/// for any batch size.
public struct APGDAttack: Sendable {
    /// The loss APGD ascends: cross-entropy or the difference of logits ratio. Targeted runs use
    /// −CE(z, target) and the targeted DLR.
    public enum Objective: String, Sendable, Codable {
        /// Cross-entropy (AutoAttack's APGD-CE).
        case crossEntropy = "ce"
        /// The difference of logits ratio (APGD-DLR; the targeted DLR for APGD-T).
        case dlr
    }

    /// The ε-ball's norm: L∞ or L2.
    public var norm: PerturbationNorm = .linf
    /// The perturbation budget ε (≥ 0).
    public var epsilon: Float
    /// Iterations per run (AutoAttack's 100).
    public var steps: Int = 100
    /// Runs from new random starts; each runs only on samples still robust.
    public var restarts: Int = 1
    /// The loss ascended.
    public var objective: Objective = .crossEntropy
    /// APGD-T: attack towards the classes ranked 2nd … (n+1)th by the clean logits, one full run each
    /// (AutoAttack "standard": 9). nil: untargeted.
    public var targetClasses: Int?
    /// ρ of the oscillation test (the reference's 0.75).
    public var rho: Float = 0.75
    /// Stop updating a sample once it is misclassified (returns its first adversarial iterate; the
    /// robust accuracy is unchanged because success is kept anyway).
    public var earlyStop: Bool = false
    /// The valid input box (one interval, or one per channel): iterates are clamped to it.
    public var box: InputBox = .unit
    /// Seed of the random starts (Philox keyed by seed, sample, target rank, restart).
    public var seed: UInt64 = 0
    /// The index of `x`'s first row in a larger data set: random starts are keyed by
    /// `sampleOffset + i`, so rows a..<b attacked with offset a get the starts they get inside the
    /// whole set (a shard of an `mpirun` job). Default 0.
    public var sampleOffset: Int = 0
    /// Explicit stream keys, one per row (nil: `sampleOffset + i`); see `SampleKeyed`.
    public var sampleKeys: [Int]?
    /// Rows per forward/backward batch (results do not depend on it).
    public var batchSize: Int = 1024
    /// The GEMM backend (nil: the default; `.simd` for batch-size-invariant bits).
    public var backend: Backend?

    /// APGD with AutoAttack's settings; `targetClasses` makes it APGD-T (then use `.dlr`).
    public init(norm: PerturbationNorm = .linf, epsilon: Float, steps: Int = 100, objective: Objective = .crossEntropy,
                targetClasses: Int? = nil) {
        self.norm = norm
        self.epsilon = epsilon
        self.steps = steps
        self.objective = objective
        self.targetClasses = targetClasses
    }

    /// The iteration counts after which the step size is checked: the interval starts at
    /// max(⌊0.22·N⌋, 1) and shrinks by max(⌊0.03·N⌋, 1) per checkpoint down to max(⌊0.06·N⌋, 1).
    public static func checkpoints(steps: Int) -> [Int] {
        let first = max(Int(0.22 * Double(steps)), 1), smallest = max(Int(0.06 * Double(steps)), 1)
        let shrink = max(Int(0.03 * Double(steps)), 1)
        var points: [Int] = [], interval = first, at = first
        while at <= steps {
            points.append(at)
            interval = max(interval - shrink, smallest)
            at += interval
        }
        return points
    }

    /// Returns the box's per-feature bounds.
    func validate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, _ labels: [Int]) throws -> BoxBounds {
        try AttackInputs.checkEpsilon(epsilon)
        guard steps >= 1, restarts >= 1, batchSize >= 1 else { throw AttackError.invalidParameter("steps, restarts and batch size must be ≥ 1") }
        guard rho.isFinite, rho >= 0, rho <= 1 else { throw AttackError.invalidParameter("ρ = \(rho) must lie in [0, 1]") }
        let classes = model.outputFeatures
        if let n = targetClasses {
            guard n >= 1, n <= classes - 1 else {
                throw AttackError.invalidParameter("APGD-T with \(n) target classes needs 1…\(classes - 1) (the model has \(classes) classes)")
            }
            if objective == .dlr && classes < 4 { throw AttackError.invalidParameter("targeted DLR needs at least 4 classes; use the cross-entropy objective") }
        } else if objective == .dlr && classes < 3 {
            throw AttackError.invalidParameter("DLR needs at least 3 classes; use the cross-entropy objective")
        }
        return try AttackInputs.check(model, x, labels: labels, targets: nil, box: box)
    }

    /// Attacks every row of `x` (true classes `labels`). `start` gives the first run's initial
    /// perturbation δ₀ instead of a random one (the reference's `x_init`; the start is clamp(x + δ₀)).
    /// `progress(done, total)` counts sample-runs. Throws `AttackError` for invalid parameters or inputs.
    public func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], start: Matrix<Float>? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> AttackResult {
        let bounds = try validate(model, x, labels)
        try checkSampleKeys(rows: x.rows)
        if let start, start.rows != x.rows || start.columns != x.columns {
            throw AttackError.invalidInput("start δ₀ is \(start.rows)×\(start.columns), x is \(x.rows)×\(x.columns)")
        }
        let n = x.rows, d = x.columns
        let batch = min(batchSize, max(n, 1))
        let state = APGDBatch(capacity: batch, features: d, steps: steps, bounds: bounds)
        let workspace = model.makeWorkspace(capacity: batch)
        let context = ForwardContext(backend: backend)
        let clean = try model.logits(x, batchSize: batch, context: context)
        let cleanPredictions = try Linalg.rowArgmax(clean)
        var robust = (0..<n).map { cleanPredictions[$0] == labels[$0] }
        var successStep = [Int?](repeating: nil, count: n)
        for i in 0..<n where !robust[i] { successStep[i] = 0 }
        var adversarial = x
        let ranks = targetClasses.map { Array(2...($0 + 1)) } ?? [0]
        let total = ranks.count * restarts * n
        var done = 0
        for (r, rank) in ranks.enumerated() {
            for restart in 0..<restarts {
                let attacked = (0..<n).filter { robust[$0] }
                for first in stride(from: 0, to: attacked.count, by: batch) {
                    let rows = Array(attacked[first..<min(first + batch, attacked.count)])
                    let targets = rank == 0 ? nil : rows.map { APGDAttack.classRanked(rank, in: clean.row($0)) }
                    state.load(rows: rows, x: x, labels: labels, targets: targets, start: r == 0 && restart == 0 ? start : nil,
                               attack: self, rank: rank, restart: restart)
                    state.attack(model, self, workspace: workspace, context: context)
                    for k in 0..<rows.count where !state.robust[k] {
                        let i = state.batch.origin[k]
                        robust[i] = false
                        successStep[i] = state.successStep[k]
                        state.copyBestAdversarial(k, into: &adversarial, row: i)
                    }
                    done += rows.count
                    progress?(done, total)
                }
            }
        }
        return AttackResult.evaluate(model, adversarial: adversarial, labels: labels, targets: nil, successStep: successStep,
                                     workspace: workspace, context: context)
    }

    /// The class with the `rank`-th largest logit (rank 1: the prediction; ties by lower index).
    static func classRanked(_ rank: Int, in row: MatrixRow<Float>) -> Int {
        let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
        return order[rank - 1]
    }
}
