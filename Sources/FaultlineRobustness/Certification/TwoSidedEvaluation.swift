import FaultlineLinalg
import FaultlineNN

/// Attack (upper bound) and certified (lower bound) robust accuracy side by side, with the soundness
/// check between them: a sample certified at ε that an attack breaks within ε is an inconsistency —
/// a bug or a numerical problem in one of the two, never a property of the model.
public enum TwoSidedEvaluation {
    /// Both bounds at one ε.
    public struct Row: Sendable, Codable {
        /// The budget ε.
        public var epsilon: Float
        /// Robust accuracy under the attack: an upper bound on the true robust accuracy.
        public var attackAccuracy: Double
        /// Share of samples certified: a lower bound.
        public var certifiedAccuracy: Double
        /// Rows certified at ε that the attack broke within ε.
        public var inconsistencies: [Int]
        /// attack − certified: how much is unknown at ε.
        public var gap: Double { attackAccuracy - certifiedAccuracy }
    }

    /// One set of rows' counts at one ε: what `Row` is made of. Tallies of disjoint row sets (the shards
    /// of an `mpirun` job) combine by adding counts and concatenating inconsistencies (`combined`).
    public struct Tally: Sendable, Equatable {
        /// The budget ε.
        public var epsilon: Float
        /// Rows the attack did not break (margin > 0 at the returned example).
        public var robust: Int
        /// Rows certified at ε.
        public var certified: Int
        /// Rows (numbered from `sampleOffset`) certified at ε that the attack broke within ε.
        public var inconsistencies: [Int]

        /// A tally of counts.
        public init(epsilon: Float, robust: Int, certified: Int, inconsistencies: [Int]) {
            (self.epsilon, self.robust, self.certified, self.inconsistencies) = (epsilon, robust, certified, inconsistencies)
        }

        /// The row of `samples` rows in all: accuracies are count / max(samples, 1), as `evaluate` gives them.
        public func row(samples: Int) -> Row {
            let n = Double(max(samples, 1))
            return Row(epsilon: epsilon, attackAccuracy: Double(robust) / n, certifiedAccuracy: Double(certified) / n,
                       inconsistencies: inconsistencies)
        }

        /// The tally of the union of disjoint row sets (given in row order); nil when `parts` is empty or
        /// the parts' ε differ.
        public static func combined(_ parts: [Tally]) -> Tally? {
            guard let first = parts.first, parts.allSatisfy({ $0.epsilon == first.epsilon }) else { return nil }
            return Tally(epsilon: first.epsilon, robust: parts.reduce(0) { $0 + $1.robust }, certified: parts.reduce(0) { $0 + $1.certified },
                         inconsistencies: parts.flatMap(\.inconsistencies))
        }
    }

    /// For each ε: `certified(ε)` (one flag per row) and `attack(ε)` run on **every** row (not only
    /// the certified ones, so the check sees them all). Throws what the attack or certifier throws.
    public static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float],
                                certified: (Float) throws -> [Bool], attack: (Float) -> any Attack,
                                progress: ((Int, Int) -> Void)? = nil) throws -> [Row] {
        try tally(model, x, labels: labels, epsilons: epsilons, certified: certified, attack: attack, progress: progress)
            .map { $0.row(samples: x.rows) }
    }

    /// `evaluate`'s counts, ε ascending, inconsistencies numbered from `sampleOffset` (the index of `x`'s
    /// first row in the whole data set). With no rows, every count is 0 and neither `certified` nor
    /// `attack` runs (ε are still checked).
    public static func tally(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float],
                             certified: (Float) throws -> [Bool], attack: (Float) -> any Attack, sampleOffset: Int = 0,
                             progress: ((Int, Int) -> Void)? = nil) throws -> [Tally] {
        guard !epsilons.isEmpty else { throw CertificationError.invalidParameter("no ε given") }
        if let bad = epsilons.first(where: { !($0.isFinite && $0 >= 0) }) { throw CertificationError.invalidParameter("ε = \(bad) must be finite and ≥ 0") }
        var tallies: [Tally] = []
        for (k, e) in epsilons.sorted().enumerated() {
            defer { progress?(k + 1, epsilons.count) }
            guard x.rows > 0 else { tallies.append(Tally(epsilon: e, robust: 0, certified: 0, inconsistencies: [])); continue }
            let flags = try certified(e)
            guard flags.count == x.rows else { throw CertificationError.invalidInput("the certifier returned \(flags.count) flags for \(x.rows) rows") }
            let result = try attack(e).attack(model, x, labels: labels, progress: nil)
            let broken = (0..<x.rows).filter { flags[$0] && result.success[$0] }.map { $0 + sampleOffset }
            tallies.append(Tally(epsilon: e, robust: result.margin.filter { $0 > 0 }.count, certified: flags.filter { $0 }.count,
                                 inconsistencies: broken))
        }
        return tallies
    }
}

extension TwoSidedEvaluation {
    /// The certificates `evaluate(_:_:labels:epsilons:certifier:recipe:attackSteps:)` can give: all three for a
    /// Sequential model, IBP for a `GraphModel`.
    public enum Certifier: String, CaseIterable, Sendable {
        /// Interval and CROWN bound propagation over the ε-ball of `recipe.norm` (L∞ balls intersected with the box).
        case ibp, crown
        /// Margin / (√2·L) with L the product of the layers' L2 Lipschitz bounds (an L2 certificate).
        case lipschitz
    }

    /// Certified accuracy by `certifier` beside robust accuracy under attack (APGD-CE for L∞, PGD for L2,
    /// `attackSteps` steps with `recipe`'s seed; 0 steps: no attack, the upper bound is clean accuracy), with
    /// the soundness check of `evaluate`. For `lipschitz` the certificate is returned too (its constant and
    /// whether every layer's bound is exact). Cost: one certification and one attack per ε. Throws
    /// `CertificationError.unsupportedLayer` for CROWN on a model without a layer chain (see
    /// `BoundPropagation.supportsCROWN`) or Lipschitz on a model that is not a Sequential.
    public static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float], certifier: Certifier,
                                recipe: AttackRecipe, attackSteps: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> (rows: [Row], lipschitz: LipschitzCertificate?) {
        let (tallies, lipschitz) = try tally(model, x, labels: labels, epsilons: epsilons, certifier: certifier, recipe: recipe,
                                             attackSteps: attackSteps, progress: progress)
        return (tallies.map { $0.row(samples: x.rows) }, lipschitz)
    }

    /// The counts of `evaluate(_:_:labels:epsilons:certifier:recipe:attackSteps:)` for rows
    /// `sampleOffset ..< sampleOffset + x.rows` of a larger data set: the attacks' random starts are keyed
    /// by the row's index in that set (`APGDAttack.sampleOffset`) and every certificate depends on its
    /// own row only, so the tallies of a split, `Tally.combined`, equal the tally of the whole (up to the
    /// forward pass's rounding, which the default GEMM backend may vary with the batch). The certifier is
    /// built (and its errors thrown) even when `x` has no rows.
    public static func tally(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float], certifier: Certifier,
                             recipe: AttackRecipe, attackSteps: Int, sampleOffset: Int = 0,
                             progress: ((Int, Int) -> Void)? = nil) throws -> (tallies: [Tally], lipschitz: LipschitzCertificate?) {
        let certified: (Float) throws -> [Bool]
        var lipschitz: LipschitzCertificate?
        if certifier == .lipschitz {
            guard let model = try (model as? any LayerStackConvertible)?.layerStack() else {
                throw CertificationError.unsupportedLayer("Lipschitz certificates need a Sequential model (\(model.spec) is not one); use IBP")
            }
            let certificate = try LipschitzCertificate(model)
            let radii = x.rows == 0 ? [] : try certificate.radii(model, x, labels: labels)
            lipschitz = certificate
            certified = { e in radii.map { $0 > Double(e) } }
        } else {
            let propagation = try BoundPropagation(classifier: model)
            if certifier == .crown, let reason = propagation.crownUnavailableReason {
                throw CertificationError.unsupportedLayer("\(reason) (\(model.spec)); use IBP (--method ibp)")
            }
            let norm = recipe.norm, box = recipe.box
            let region = { (e: Float) in BoundPropagation.Region(norm: norm, epsilon: e, box: norm == .linf ? box : nil) }
            certified = { e in try propagation.certify(x, labels: labels, region: region(e), method: certifier == .ibp ? .ibp : .crown) }
        }
        var options = recipe
        (options.steps, options.apgdSteps) = (max(attackSteps, 1), max(attackSteps, 1))
        let attack: (Float) -> any Attack = attackSteps == 0 ? { _ in NoAttack() } : { e in
            if options.norm == .linf {
                var a = options.apgd(epsilon: e)
                a.sampleOffset = sampleOffset
                return a
            }
            var a = options.pgd(epsilon: e)
            a.sampleOffset = sampleOffset
            return a
        }
        return (try tally(model, x, labels: labels, epsilons: epsilons, certified: certified, attack: attack, sampleOffset: sampleOffset,
                          progress: progress), lipschitz)
    }
}
