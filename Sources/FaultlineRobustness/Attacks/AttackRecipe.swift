import FaultlineLinalg
import FaultlineNN

/// The settings shared by a family of attacks and the rules that derive the rest from ε: build
/// FGSM, PGD, APGD, Square and AutoAttack from one recipe instead of patching attack values.
///
/// Step rule (Madry et al.): PGD, BIM and MI-FGSM take α = 2.5·ε/steps (`pgdStepSize`), so that
/// `steps` steps can cross the ε-ball and back. No floor applies: at ε = 0 the projection onto the
/// ε-ball returns the clean point whatever α is (both norms), and for ε > 0 the rule is > 0; a floor
/// such as max(α, 1e-4) would only change results for 0 < ε < 4e-5·steps. `stepSize` overrides the rule.
/// APGD sets its own step size (2ε, halved adaptively); Square has none.
public struct AttackRecipe: Sendable, Equatable, Codable {
    /// The perturbation norm of every attack built from the recipe.
    public var norm: PerturbationNorm = .linf
    /// The valid input box of every attack (one interval, or one per channel).
    public var box: InputBox = .unit
    /// Seed of every random start and every Square proposal.
    public var seed: UInt64 = 0
    /// Steps of PGD, BIM and MI-FGSM.
    public var steps: Int = 20
    /// Explicit PGD step size (nil: the rule 2.5·ε/steps).
    public var stepSize: Float?
    /// Steps of APGD (AutoAttack's 100).
    public var apgdSteps: Int = 100
    /// Queries per sample of Square (AutoAttack's 5,000).
    public var squareQueries: Int = 5000
    /// Random restarts of PGD, APGD and Square.
    public var restarts: Int = 1
    /// Stop updating a sample at its first adversarial iterate (PGD, APGD; Square always stops).
    public var earlyStop: Bool = false
    /// The GEMM backend of every attack (nil: the default; `.simd` for batch-size-invariant results).
    public var backend: Backend? {
        get { backendName.flatMap(Backend.init(rawValue:)) }
        set { backendName = newValue?.rawValue }
    }
    /// `backend` as stored (and encoded): its raw value.
    private var backendName: String?

    /// A recipe; the defaults are AutoAttack's (100 APGD steps, 5,000 Square queries, one restart) and PGD-20.
    public init(norm: PerturbationNorm = .linf, box: InputBox = .unit, seed: UInt64 = 0, steps: Int = 20, stepSize: Float? = nil,
                apgdSteps: Int = 100, squareQueries: Int = 5000, restarts: Int = 1, earlyStop: Bool = false, backend: Backend? = nil) {
        (self.norm, self.box, self.seed, self.steps, self.stepSize) = (norm, box, seed, steps, stepSize)
        (self.apgdSteps, self.squareQueries, self.restarts, self.earlyStop) = (apgdSteps, squareQueries, restarts, earlyStop)
        backendName = backend?.rawValue
    }

    /// The PGD step rule α = 2.5·ε/steps (evaluated in this order in Float; steps ≥ 1).
    public static func pgdStepSize(epsilon: Float, steps: Int) -> Float { 2.5 * epsilon / Float(steps) }

    /// PGD with a random start (restarts, early stopping, seed and box from the recipe).
    public func pgd(epsilon: Float) -> GradientAttack {
        var a = GradientAttack.pgd(epsilon: epsilon, stepSize: stepSize ?? Self.pgdStepSize(epsilon: epsilon, steps: steps), steps: steps,
                                   norm: norm, seed: seed)
        (a.restarts, a.earlyStop, a.box, a.backend) = (restarts, earlyStop, box, backend)
        return a
    }

    /// BIM: PGD from the clean point (one run; restarts would repeat it).
    public func bim(epsilon: Float) -> GradientAttack {
        var a = GradientAttack(norm: norm, epsilon: epsilon, stepSize: stepSize ?? Self.pgdStepSize(epsilon: epsilon, steps: steps), steps: steps)
        (a.earlyStop, a.seed, a.box, a.backend) = (earlyStop, seed, box, backend)
        return a
    }

    /// MI-FGSM: BIM with momentum μ = 1.
    public func miFGSM(epsilon: Float) -> GradientAttack {
        var a = bim(epsilon: epsilon)
        a.momentum = 1
        return a
    }

    /// FGSM: one step of size ε from the clean point.
    public func fgsm(epsilon: Float) -> GradientAttack {
        var a = GradientAttack.fgsm(epsilon: epsilon, norm: norm)
        (a.earlyStop, a.seed, a.box, a.backend) = (earlyStop, seed, box, backend)
        return a
    }

    /// APGD with `apgdSteps` steps (untargeted, or APGD-T on `targetClasses` targets).
    public func apgd(epsilon: Float, objective: APGDAttack.Objective = .crossEntropy, targetClasses: Int? = nil) -> APGDAttack {
        var a = APGDAttack(norm: norm, epsilon: epsilon, steps: apgdSteps, objective: objective, targetClasses: targetClasses)
        (a.restarts, a.earlyStop, a.seed, a.box, a.backend) = (restarts, earlyStop, seed, box, backend)
        return a
    }

    /// Square (L∞) with `squareQueries` queries.
    public func square(epsilon: Float) -> SquareAttack {
        var a = SquareAttack(epsilon: epsilon, queries: squareQueries)
        (a.restarts, a.seed, a.box, a.backend) = (restarts, seed, box, backend)
        return a
    }

    /// AutoAttack "standard" minus FAB-T: APGD-CE, APGD-T (DLR; cross-entropy below 4 classes) on up
    /// to 9 targets when the model has ≥ 3 classes, and Square for L∞ — each built by this recipe.
    public func autoAttack(epsilon: Float, classes: Int) -> AutoAttack {
        var attacks: [any Attack] = [apgd(epsilon: epsilon)]
        if classes >= 3 {
            attacks.append(apgd(epsilon: epsilon, objective: classes >= 4 ? .dlr : .crossEntropy, targetClasses: min(9, classes - 1)))
        }
        if norm == .linf { attacks.append(square(epsilon: epsilon)) }
        return AutoAttack(attacks: attacks)
    }
}
