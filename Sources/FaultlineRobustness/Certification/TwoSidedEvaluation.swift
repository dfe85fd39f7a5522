import FaultlineLinalg
import FaultlineNN

/// Attack (upper bound) and certified (lower bound) robust accuracy side by side, with the soundness
/// check between them: a sample certified at ε that an attack breaks within ε is an inconsistency —
/// a bug or a numerical problem in one of the two, never a property of the model.
public enum TwoSidedEvaluation {
    public struct Row: Sendable, Codable {
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

    /// For each ε: `certified(ε)` (one flag per row) and `attack(ε)` run on **every** row (not only
    /// the certified ones, so the check sees them all). Throws what the attack or certifier throws.
    public static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilons: [Float],
                                certified: (Float) throws -> [Bool], attack: (Float) -> any Attack,
                                progress: ((Int, Int) -> Void)? = nil) throws -> [Row] {
        guard !epsilons.isEmpty else { throw CertificationError.invalidParameter("no ε given") }
        if let bad = epsilons.first(where: { !($0.isFinite && $0 >= 0) }) { throw CertificationError.invalidParameter("ε = \(bad) must be finite and ≥ 0") }
        let n = Double(max(x.rows, 1))
        var rows: [Row] = []
        for (k, e) in epsilons.sorted().enumerated() {
            let flags = try certified(e)
            guard flags.count == x.rows else { throw CertificationError.invalidInput("the certifier returned \(flags.count) flags for \(x.rows) rows") }
            let result = try attack(e).attack(model, x, labels: labels, progress: nil)
            let broken = (0..<x.rows).filter { flags[$0] && result.success[$0] }
            rows.append(Row(epsilon: e, attackAccuracy: result.robustAccuracy, certifiedAccuracy: Double(flags.filter { $0 }.count) / n,
                            inconsistencies: broken))
            progress?(k + 1, epsilons.count)
        }
        return rows
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
        let certified: (Float) throws -> [Bool]
        var lipschitz: LipschitzCertificate?
        if certifier == .lipschitz {
            guard let model = try (model as? any LayerStackConvertible)?.layerStack() else {
                throw CertificationError.unsupportedLayer("Lipschitz certificates need a Sequential model (\(model.spec) is not one); use IBP")
            }
            let certificate = try LipschitzCertificate(model)
            let radii = try certificate.radii(model, x, labels: labels)
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
        let attack: (Float) -> any Attack = attackSteps == 0 ? { _ in NoAttack() }
            : { e in options.norm == .linf ? options.apgd(epsilon: e) as any Attack : options.pgd(epsilon: e) }
        return (try evaluate(model, x, labels: labels, epsilons: epsilons, certified: certified, attack: attack, progress: progress), lipschitz)
    }
}
