import FaultlineLinalg
import FaultlineNN

/// Robust accuracy over a list of ε and per-sample minimal perturbations, for any `Attack` built per
/// budget (e.g. `AttackRecipe.pgd(epsilon:)`) on any `DifferentiableClassifier`.
public enum RobustnessCurve {
    /// Robust accuracy at one budget.
    public struct Point: Sendable, Codable, Equatable {
        /// The budget ε.
        public var epsilon: Float
        /// The share of samples the attack did not break within ε.
        public var robustAccuracy: Double
    }

    /// Robust accuracy at each ε in ascending order, reusing work: a sample broken at a smaller ε is
    /// broken at every larger one (its example lies in every larger ball), so only samples still robust
    /// are attacked at the next ε. The curve is therefore non-increasing by construction.
    /// `attack(ε)` builds the attack for one budget. Throws what the attack throws.
    public static func robustAccuracy<Model: DifferentiableClassifier, A: Attack>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                                                 epsilons: [Float], attack: (Float) -> A) throws -> [Point] {
        try curve(model, x, labels: labels, epsilons: epsilons, attack: attack)
    }

    private static func curve<Model: DifferentiableClassifier, A: Attack>(_ model: Model, _ x: Matrix<Float>, labels: [Int],
                                                                         epsilons: [Float], attack: (Float) -> A) throws -> [Point] {
        guard !epsilons.isEmpty else { throw AttackError.invalidParameter("no ε given") }
        var robust = Array(0..<x.rows)
        var points: [Point] = []
        for e in epsilons.sorted() {
            if !robust.isEmpty {
                let result = try attack(e).attack(model, AttackInputs.rows(x, robust), labels: robust.map { labels[$0] }, progress: nil)
                robust = zip(robust, result.success).filter { !$0.1 }.map(\.0)
            }
            points.append(Point(epsilon: e, robustAccuracy: Double(robust.count) / Double(max(x.rows, 1))))
        }
        return points
    }

    /// `robustAccuracy` for gradient attacks (lets `{ e in .pgd(…) }` name its type by context).
    public static func robustAccuracy(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float],
                                      attack: (Float) -> GradientAttack) throws -> [Point] {
        try curve(model, x, labels: labels, epsilons: epsilons, attack: attack)
    }

    /// For every sample, the smallest ε in (0, upper] at which `attack(ε)` breaks it, by bisection
    /// (`rounds` halvings, so the answer is within upper/2^rounds above the true threshold of this attack);
    /// 0 for samples misclassified without perturbation, nil for samples the attack cannot break at `upper`.
    /// Samples sharing a midpoint are attacked together in one batch, each keyed (`Attack.keyed(by:)`) by
    /// `sampleOffset` + its row in `x`, so a row's answer depends on its own row only, not on which rows
    /// share its batch (and rows a..<b with offset a get what they get inside the whole input). Cost:
    /// 1 + `rounds` attack runs over the breakable samples.
    public static func minimalEpsilon<Model: DifferentiableClassifier, A: Attack>(_ model: Model, _ x: Matrix<Float>, labels: [Int], upper: Float,
                                                                                 rounds: Int = 8, sampleOffset: Int = 0,
                                                                                 attack: (Float) -> A) throws -> [Float?] {
        try bisection(model, x, labels: labels, upper: upper, rounds: rounds, sampleOffset: sampleOffset, attack: attack)
    }

    private static func bisection<Model: DifferentiableClassifier, A: Attack>(_ model: Model, _ x: Matrix<Float>, labels: [Int], upper: Float,
                                                                             rounds: Int, sampleOffset: Int, attack: (Float) -> A) throws -> [Float?] {
        guard upper > 0, upper.isFinite, rounds >= 1 else { throw AttackError.invalidParameter("need a finite upper ε > 0 and at least one round") }
        let predicted = try model.predict(x)
        var lo = [Float](repeating: 0, count: x.rows), hi = [Float](repeating: upper, count: x.rows)
        var broken = (0..<x.rows).map { predicted[$0] != labels[$0] }
        let attacked = (0..<x.rows).filter { !broken[$0] }
        func success(_ e: Float, _ members: [Int]) throws -> [Bool] {
            try attack(e).keyed(by: members.map { sampleOffset &+ $0 }).attack(model, AttackInputs.rows(x, members), labels: members.map { labels[$0] },
                                                                             progress: nil).success
        }
        // Is the sample breakable at all?
        if !attacked.isEmpty {
            let flags = try success(upper, attacked)
            for (k, i) in attacked.enumerated() where flags[k] { broken[i] = true }
        }
        let searching = attacked.filter { broken[$0] }
        for _ in 0..<rounds {
            var groups: [Float: [Int]] = [:]
            for i in searching { groups[(lo[i] + hi[i]) / 2, default: []].append(i) }
            for (e, members) in groups.sorted(by: { $0.key < $1.key }) {
                let flags = try success(e, members)
                for (k, i) in members.enumerated() {
                    if flags[k] { hi[i] = e } else { lo[i] = e }
                }
            }
        }
        return (0..<x.rows).map { i in
            if predicted[i] != labels[i] { return 0 }
            return broken[i] ? hi[i] : nil
        }
    }

    /// `minimalEpsilon` for gradient attacks (lets `{ e in .pgd(…) }` name its type by context).
    public static func minimalEpsilon(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], upper: Float, rounds: Int = 8,
                                      sampleOffset: Int = 0, attack: (Float) -> GradientAttack) throws -> [Float?] {
        try bisection(model, x, labels: labels, upper: upper, rounds: rounds, sampleOffset: sampleOffset, attack: attack)
    }
}
