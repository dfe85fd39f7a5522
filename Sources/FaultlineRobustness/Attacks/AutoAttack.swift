import FaultlineLinalg
import FaultlineNN

/// AutoAttack-style evaluation (Croce & Hein 2020): attacks run in order, each only on the samples
/// every earlier attack left correctly classified; a sample counts as broken if **any** attack breaks
/// it (point-wise worst case), and it keeps the first successful example.
///
/// `standard(norm:epsilon:)` is AutoAttack's "standard" version minus FAB-T (not implemented here):
/// APGD-CE (100 steps) → APGD-T (DLR, 100 steps, the 9 classes ranked after the prediction) → Square
/// (L∞ only, 5,000 queries). Robust accuracy after APGD is therefore an upper bound at least as tight
/// as AutoAttack's after the same attacks.
public struct AutoAttack: Sendable {
    /// The attacks, run in order, each on the samples still robust.
    public var attacks: [any Attack]
    /// The index of the input's first row in a larger data set. Each attack runs on the rows still
    /// robust, keyed (`Attack.keyed(by:)`) by `sampleOffset` + their index in the input: a row's
    /// random draws, and so its outcome, do not depend on the other rows or on the shard it is in.
    public var sampleOffset: Int = 0

    /// An ensemble of `attacks` (not empty when run).
    public init(attacks: [any Attack]) {
        self.attacks = attacks
    }

    /// APGD-CE, APGD-T (DLR; cross-entropy for models with fewer than 4 classes) on up to 9 targets,
    /// and Square for L∞, with AutoAttack's settings (100 APGD steps, 5,000 queries, one restart).
    public static func standard(norm: PerturbationNorm = .linf, epsilon: Float, classes: Int, seed: UInt64 = 0,
                                backend: Backend? = nil) -> AutoAttack {
        AttackRecipe(norm: norm, seed: seed, backend: backend).autoAttack(epsilon: epsilon, classes: classes)
    }

    /// The same ensemble with the members' settings from `options` (its norm, box, seed, APGD steps,
    /// Square queries, restarts, early stopping and backend), e.g. a cheaper Square for a quick report:
    /// `AutoAttack.standard(epsilon: e, classes: 10, options: AttackRecipe(seed: s, squareQueries: 1000, earlyStop: true))`.
    public static func standard(epsilon: Float, classes: Int, options: AttackRecipe) -> AutoAttack {
        options.autoAttack(epsilon: epsilon, classes: classes)
    }

    /// The outcome of an ensemble evaluation.
    public struct Report: Sendable {
        /// The share of samples classified correctly without perturbation.
        public var cleanAccuracy: Double
        /// Robust accuracy after each attack in order (the last is the ensemble's).
        public var robustAccuracyAfter: [(attack: String, accuracy: Double)]
        /// Robust accuracy after the whole ensemble (the clean accuracy when there were no attacks).
        public var robustAccuracy: Double { robustAccuracyAfter.last?.accuracy ?? cleanAccuracy }
        /// Which attack broke each sample ("clean" for samples misclassified without perturbation; nil: robust).
        public var brokenBy: [String?]
        /// The first successful example per broken sample (the clean input otherwise), with the margins
        /// and success measured at those examples (`successStep` 0 marks samples misclassified when clean).
        public var result: AttackResult
        /// Signals of a flawed evaluation, e.g. a black-box attack breaking samples the gradient attacks could not.
        public var warnings: [String]
    }

    /// The warning when a black-box attack breaks `broke` of the `of` rows the gradient attacks left robust.
    public static func maskingWarning(attack: String, broke: Int, of robust: Int) -> String {
        "\(attack == "square" ? "Square" : attack) broke \(broke) of the \(robust) samples the gradient attacks left robust: "
            + "gradients may be masked or obfuscated; trust the black-box number"
    }

    /// Runs the attacks in order. `progress(attack index, done, total)` reports inside each attack.
    public func run(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int],
                    progress: ((Int, Int, Int) -> Void)? = nil) throws -> Report {
        guard !attacks.isEmpty else { throw AttackError.invalidParameter("the ensemble has no attacks") }
        try AttackInputs.check(model, x, labels: labels, targets: nil, box: InputBox(-Float.greatestFiniteMagnitude...Float.greatestFiniteMagnitude))
        let n = x.rows
        let predicted = try model.predict(x)
        var brokenBy: [String?] = (0..<n).map { predicted[$0] == labels[$0] ? nil : "clean" }
        let clean = Double(brokenBy.filter { $0 == nil }.count) / Double(max(n, 1))
        var adversarial = x
        var after: [(String, Double)] = []
        var warnings: [String] = []
        var whiteBoxRobust: Int?
        for (index, attack) in attacks.enumerated() {
            let robust = (0..<n).filter { brokenBy[$0] == nil }
            if !robust.isEmpty {
                let result = try attack.keyed(by: robust.map { sampleOffset &+ $0 }).attack(model, AttackInputs.rows(x, robust), labels: robust.map { labels[$0] },
                                               progress: progress.map { report in { report(index, $0, $1) } })
                var broken = 0
                adversarial.withUnsafeMutableBufferPointer { out in
                    result.adversarial.withUnsafeBufferPointer { src in
                        let d = x.columns
                        for (k, i) in robust.enumerated() where result.success[k] {
                            brokenBy[i] = attack.name
                            (out.baseAddress! + i * d).update(from: src.baseAddress! + k * d, count: d)
                            broken += 1
                        }
                    }
                }
                if !attack.usesGradients, let count = whiteBoxRobust, broken > 0 {
                    warnings.append(Self.maskingWarning(attack: attack.name, broke: broken, of: count))
                }
            }
            if attack.usesGradients { whiteBoxRobust = brokenBy.filter { $0 == nil }.count }
            after.append((attack.name, Double(brokenBy.filter { $0 == nil }.count) / Double(max(n, 1))))
        }
        let result = AttackResult.evaluate(model, adversarial: adversarial, labels: labels, targets: nil,
                                           successStep: brokenBy.map { $0 == "clean" ? 0 : nil },
                                           workspace: model.makeWorkspace(capacity: max(1, min(n, 1024))), context: .inference)
        return Report(cleanAccuracy: clean, robustAccuracyAfter: after, brokenBy: brokenBy, result: result, warnings: warnings)
    }
}
