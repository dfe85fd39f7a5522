import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation

extension FailureReport {
    /// Where `build` is. It is reported when each step starts and ends and, inside the long steps (every
    /// attack, the corruption sweep), as rows finish — at most about ten times a second, plus every step's
    /// start and end.
    ///
    /// `fraction` weighs each step by an estimate of its multiply–adds (`WorkEstimate`: forward and
    /// backward passes, CROWN's back-substitution, the Gaussian fit's Gram matrix), so elapsed · (1 − f)/f
    /// estimates the time left of the whole build. It is an estimate: attacks with early stopping finish
    /// sooner than planned when rows break early, and the estimate then shrinks faster than time passes.
    public struct Progress: Sendable, Equatable, CustomStringConvertible {
        /// The stage, one of `FailureReport.stages`.
        public var stage: String
        /// The stage's number, 1 … `stageCount`.
        public var stageNumber: Int
        /// How many stages `build` has (`FailureReport.stages.count`).
        public var stageCount: Int
        /// What runs now, e.g. "PGD-20 at ε 0.05".
        public var step: String
        /// The share of the current stage done, in [0, 1], by estimated work.
        public var stageFraction: Double
        /// The share of the whole build done, in [0, 1], by estimated work; it never decreases and is 1
        /// only at the end.
        public var fraction: Double

        /// "3/5 robustness: PGD-20 at ε 0.05".
        public var description: String { "\(stageNumber)/\(stageCount) \(stage): \(step)" }
    }
}

/// Estimated multiply–adds of the report's steps, for progress weights (not predictions of time). The unit
/// forward pass of one row costs the model's parameter count (a dense layer's multiply–adds); an attack step
/// is a forward and a backward pass (3 units).
struct WorkEstimate {
    /// Multiply–adds of one row's forward pass (≥ the input width).
    let forward: Double
    let features: Double
    let classes: Double
    /// Multiply–adds per row of certifying one ε (CROWN or IBP, as the model allows).
    let certification: Double

    init(model: some DifferentiableClassifier) {
        forward = Double(max(model.parameterCount, model.inputFeatures, 1))
        (features, classes) = (Double(model.inputFeatures), Double(model.outputFeatures))
        certification = Self.certificationWork(model) ?? 2 * forward
    }

    /// `rows` forward passes of `members` models.
    func forward(_ rows: Int, members: Int = 1) -> Double { Double(rows) * Double(members) * forward }
    /// A gradient attack of `steps` steps (plus the final evaluation) with `restarts` restarts on `rows` rows.
    func attack(_ rows: Int, steps: Int, restarts: Int = 1) -> Double { Double(rows) * Double(steps + 1) * Double(max(restarts, 1)) * 3 * forward }
    /// The Gaussian fit of `rows` rows of width `d` with Ledoit–Wolf (two Gram-sized passes) and its factorisation.
    func gaussianFit(_ rows: Int, dimension d: Int) -> Double { 2 * Double(rows) * Double(d * d) + Double(d * d * d) }
    /// Mahalanobis scores of `rows` rows of width `d`.
    func mahalanobis(_ rows: Int, dimension d: Int) -> Double { Double(rows) * Double(d) * (Double(d) + classes) }
    /// Corrupting and classifying `rows` rows, `cells` times.
    func corruptions(_ rows: Int, cells: Int) -> Double { Double(cells) * (forward(rows) + 8 * Double(rows) * features) }

    /// CROWN's per-row multiply–adds for a layer stack of dense layers and activations: the rows of every
    /// hidden pre-activation and the class margins back-substituted through every earlier affine layer; nil
    /// for other models (the caller assumes IBP's two forward passes).
    static func certificationWork(_ model: some DifferentiableClassifier) -> Double? {
        guard let stack = model as? Sequential else { return nil }
        let affine = stack.layers.filter { $0 is Dense || $0 is Conv2d }.map { (rows: Double($0.outputFeatures), columns: Double($0.inputFeatures)) }
        guard affine.count > 1 else { return affine.first.map { 2 * $0.rows * $0.columns } }
        var work = 0.0
        for k in 1..<affine.count {
            let bounded = k == affine.count - 1 ? Double(max(model.outputFeatures - 1, 1)) : affine[k].rows
            work += bounded * affine[k].columns  // through layer k itself
            for j in 0..<k { work += bounded * affine[j].rows * affine[j].columns }
        }
        return work
    }
}

/// Turns step-level work into `FailureReport.Progress`: each stage's planned work is fixed at the start;
/// `step` advances within the stage by the step's share and `enter` snaps to the next stage, so skipped
/// work (a time budget, early stopping) only makes the bar jump forward. Attacks may report from worker
/// threads, so the state is behind a lock (`@unchecked Sendable` for that reason).
final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private let plan: [Double]
    private let callback: ((FailureReport.Progress) -> Void)?
    private var stage = 0
    private var stageDone = 0.0
    private var reported = 0.0
    private var lastReport = Date.distantPast
    private var stepName = ""
    private var entered: [Date?]
    /// Wall-clock seconds of every stage entered so far (the current one until now), by stage name.
    var stageSeconds: [String: Double] {
        locked {
            let now = Date()
            var seconds: [String: Double] = [:]
            for (k, start) in entered.enumerated() {
                guard let start else { continue }
                let end = entered[(k + 1)...].compactMap { $0 }.first ?? now
                seconds[FailureReport.stages[k]] = end.timeIntervalSince(start)
            }
            return seconds
        }
    }

    init(plan: [Double], callback: ((FailureReport.Progress) -> Void)?) {
        self.plan = plan.map { max($0, 1) }
        self.callback = callback
        entered = [Date?](repeating: nil, count: plan.count)
    }

    /// Enters stage `k` (0-based), counting every earlier stage as done; its step reads "starting".
    func enter(_ k: Int) {
        locked {
            (stage, stageDone, stepName) = (min(k, plan.count - 1), 0, "starting")
            entered[stage] = entered[stage] ?? Date()
        }
        emit(0, force: true)
    }

    /// Runs one step of about `work` multiply–adds; `body` may report (done, total) of its own units.
    func step<T>(_ name: String, work: Double, _ body: (_ report: @escaping @Sendable (Int, Int) -> Void) throws -> T) rethrows -> T {
        locked { stepName = name }
        emit(0, force: true)
        let result = try body { [self] done, total in
            emit(total > 0 ? work * Double(min(max(done, 0), total)) / Double(total) : 0, force: false)
        }
        locked { stageDone += work }
        emit(0, force: true)
        return result
    }

    /// A step with no progress of its own.
    func step<T>(_ name: String, work: Double, _ body: () throws -> T) rethrows -> T {
        try step(name, work: work) { _ in try body() }
    }

    /// The end of the build.
    func finish() {
        locked { (stage, stageDone, stepName) = (plan.count - 1, plan[plan.count - 1], "done") }
        emit(0, force: true, final: true)
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    private func emit(_ inStep: Double, force: Bool, final: Bool = false) {
        guard let callback else { return }
        locked {  // the callback too, so reports arrive in order
            let now = Date()
            guard force || now.timeIntervalSince(lastReport) >= 0.1 else { return }
            lastReport = now
            let total = plan.reduce(0, +), before = plan[..<stage].reduce(0, +)
            let inStage = min(stageDone + inStep, plan[stage])
            // Below 1 until the end: a stage that ran over its plan waits at its end instead of passing 100 %.
            reported = max(reported, final ? 1 : min((before + inStage) / total, 0.999))
            callback(FailureReport.Progress(stage: FailureReport.stages[stage], stageNumber: stage + 1, stageCount: plan.count,
                                            step: stepName, stageFraction: final ? 1 : inStage / plan[stage], fraction: reported))
        }
    }
}

/// An attack that runs as a step of a `ProgressTracker`, its rows reported as they finish, whatever
/// progress its caller passes (TwoSidedEvaluation runs its attacks without one).
struct ReportingAttack: Attack {
    let base: any Attack
    let tracker: ProgressTracker
    let step: String
    let work: Double

    var name: String { base.name }
    var usesGradients: Bool { base.usesGradients }

    func attack<Model: DifferentiableClassifier>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                 progress: ((Int, Int) -> Void)?) throws -> AttackResult {
        try tracker.step(step, work: work) { report in
            try base.attack(model, x, labels: labels) { done, total in
                report(done, total)
                progress?(done, total)
            }
        }
    }

    /// Robust accuracy over `x`.
    func robustAccuracy(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int]) throws -> Double {
        try attack(model, x, labels: labels, progress: nil).robustAccuracy
    }

    func keyed(by keys: [Int]) -> any Attack { ReportingAttack(base: base.keyed(by: keys), tracker: tracker, step: step, work: work) }
}

/// The estimated work of every step `FailureReport.build` may run, and of each stage (the sum of its
/// steps' estimates, under the same conditions the build uses to run them).
struct PlannedWork {
    var predictions = 0.0, dropout = 0.0, ensemble = 0.0, conformal = 0.0
    var inputFit = 0.0, featureFit = 0.0, cleanScores = 0.0
    private var shiftedRow = 0.0
    /// Per ε: certification, APGD-CE, PGD, FGSM, the AutoAttack-style ensemble.
    var certification = 0.0, apgd = 0.0, pgd = 0.0, fgsm = 0.0, autoAttack = 0.0
    var minimalEpsilon = 0.0, corruptions = 0.0, mildShift = 0.0
    var attribution = 0.0, examples = 0.0, dataQuality = 0.0
    /// The planned work of each of `FailureReport.stages`.
    private(set) var stages: [Double] = []

    init(model: some DifferentiableClassifier, ensemble members: DeepEnsemble?, data: FailureReport.Data, options: FailureReport.Options,
         featureWidth: Int?, robustnessRows r: Int) {
        let w = WorkEstimate(model: model)
        let n = data.test.count, c = data.calibration?.count ?? 0, train = data.train.count, d = model.inputFeatures
        let count = members?.members.count ?? 1, heldOut = data.calibration?.count ?? train
        let classes = Double(model.outputFeatures)
        predictions = w.forward(n) + w.forward(c, members: 2)
        dropout = options.monteCarloDropoutPasses > 0 && model is Sequential ? w.forward(n, members: options.monteCarloDropoutPasses) : 0
        ensemble = members.map { w.forward(n + c, members: $0.members.count) } ?? 0
        conformal = options.runs(.conformal) && c > 0 ? Double((n + c) * options.conformalAlphas.count) * classes * 8 : 0
        inputFit = w.gaussianFit(train, dimension: d) + w.mahalanobis(train, dimension: d)
        featureFit = featureWidth.map { w.forward(train) + w.gaussianFit(train, dimension: $0) + w.mahalanobis(train, dimension: $0) } ?? 0
        let featureScore = { (rows: Int) in featureWidth.map { w.forward(rows) + w.mahalanobis(rows, dimension: $0) } ?? 0 }
        cleanScores = w.mahalanobis(n + heldOut, dimension: d) + featureScore(n) + featureScore(heldOut)
        shiftedRow = w.forward(1, members: 1 + (members == nil ? 0 : count)) + w.mahalanobis(1, dimension: d) + featureScore(1)
        let attacks = options.runs(.attacks)
        if attacks {
            let recipe = options.attackRecipe
            certification = options.runs(.certify) ? Double(r) * w.certification : 0
            apgd = w.attack(r, steps: recipe.apgdSteps, restarts: recipe.restarts)
            pgd = w.attack(r, steps: recipe.steps, restarts: recipe.restarts)
            fgsm = options.fgsm ? w.attack(r, steps: 1) : 0
            // APGD-CE, APGD-T on up to 9 target classes, Square's queries (before early stopping shrinks them).
            autoAttack = options.autoAttack
                ? apgd * Double(1 + min(9, max(model.outputFeatures - 1, 0))) + w.forward(r, members: recipe.squareQueries) : 0
            minimalEpsilon = options.minimalEpsilon ? 8 * pgd : 0
            attribution = w.attack(n, steps: recipe.steps, restarts: recipe.restarts)
        }
        if let shape = data.imageShape, options.box == .unit, options.runs(.corruptions) {
            corruptions = w.corruptions(r, cells: Corruption.allCases.count * 5)
            mildShift = data.shifted.isEmpty ? 0 : w.corruptions(n, cells: 1) + featureScore(n) + w.mahalanobis(n, dimension: shape.features)
        }
        examples = w.forward(attacks ? n : 0) + Double(n) * classes
        dataQuality = Double(n) * classes * 16 + Double(n + train) * Double(d)
        let perEpsilon = certification + apgd + pgd + fgsm + autoAttack
        stages = [predictions + dropout + ensemble + conformal,
                  inputFit + featureFit + cleanScores + data.shifted.reduce(0) { $0 + shiftedSet($1.features.rows) },
                  perEpsilon * Double(options.epsilons.count) + minimalEpsilon,
                  corruptions + mildShift,
                  attribution + examples + dataQuality]
    }

    /// No planned work (every step weighs 0).
    static var none: PlannedWork { PlannedWork() }

    private init() {}

    /// A shifted set of `rows` rows: its predictions, the ensemble's, and its scores.
    func shiftedSet(_ rows: Int) -> Double { Double(rows) * shiftedRow }
}
