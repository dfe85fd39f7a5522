import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Testing

/// The entry points the command line calls (`AttackSweep`, `TwoSidedEvaluation.evaluate(certifier:)`,
/// `CorruptionSweep.copies`) give exactly what composing the underlying attacks and certificates by hand
/// gives, for every attack kind, several budget grids (with 0 and repeats) and both norms.
@Suite("library entry points: attack sweep, certification by name, corruption copies")
struct LibraryEntryPointTests {
    static func data(rows: Int, seed: UInt64) -> (model: LinearClassifier, x: Matrix<Float>, labels: [Int]) {
        var rng = Philox(seed: seed)
        let model = LinearClassifier(inputs: 12, classes: 4, seed: seed)
        let x: Matrix<Float> = rng.matrix(rows: rows, columns: 12, .uniform(0.2, 0.8))
        // The model's predictions, every fifth one replaced by the next class (a mistake).
        let labels = (0..<rows).map { i in model.prediction(x, i) + (i % 5 == 0 ? 1 : 0) }.map { $0 % 4 }
        return (model, x, labels)
    }

    @Test(arguments: [[Float(0), 0.05, 0.2], [0.1], [0.2, 0.05, 0.05]])
    func sweepEqualsEachAttackRunByHand(epsilons: [Float]) throws {
        let (model, x, labels) = Self.data(rows: 23, seed: 5)
        for norm in [PerturbationNorm.linf, .l2] {
            let recipe = AttackRecipe(norm: norm, seed: 3, steps: 7, apgdSteps: 7, squareQueries: 40)
            for kind in AttackSweep.Kind.allCases where !kind.isMinimalPerturbation && !(kind == .square && norm == .l2) {
                let sweep = try AttackSweep(kind, recipe: recipe).run(model, x, labels: labels, epsilons: epsilons)
                #expect(sweep.rows.map(\.epsilon) == epsilons)
                #expect(sweep.examples.map(\.name) == epsilons.map { "eps_\($0)" })
                for (k, e) in epsilons.enumerated() {
                    let direct: AttackResult
                    switch kind {
                    case .fgsm: direct = try recipe.fgsm(epsilon: e).run(model, x, labels: labels)
                    case .bim: direct = try recipe.bim(epsilon: e).run(model, x, labels: labels)
                    case .mifgsm: direct = try recipe.miFGSM(epsilon: e).run(model, x, labels: labels)
                    case .apgdCE: direct = try recipe.apgd(epsilon: e).run(model, x, labels: labels)
                    case .apgdDLR: direct = try recipe.apgd(epsilon: e, objective: .dlr).run(model, x, labels: labels)
                    case .apgdT: direct = try recipe.apgd(epsilon: e, objective: .dlr, targetClasses: 3).run(model, x, labels: labels)
                    case .square: direct = try recipe.square(epsilon: e).run(model, x, labels: labels)
                    case .autoattack:
                        var options = recipe
                        (options.restarts, options.earlyStop) = (1, false)
                        direct = try AutoAttack.standard(epsilon: e, classes: 4, options: options).run(model, x, labels: labels).result
                    default: direct = try recipe.pgd(epsilon: e).run(model, x, labels: labels)
                    }
                    #expect(sweep.rows[k].robustAccuracy == direct.robustAccuracy, "\(kind) \(norm) ε \(e)")
                    #expect(sweep.examples[k].tensor.values(as: Float.self) == direct.adversarial.elements, "\(kind) \(norm) ε \(e)")
                    #expect((sweep.rows[k].stages != nil) == (kind == .autoattack))
                }
            }
        }
    }

    /// DeepFool and CW run once: robust accuracy falls with ε, equals the share of correct rows at ε = 0
    /// (a perturbation of norm 0 changes nothing), and the attack must match its norm.
    @Test func minimalPerturbationAttacksAnswerEveryBudget() throws {
        let (model, x, labels) = Self.data(rows: 31, seed: 9)
        let clean = Double((0..<x.rows).filter { model.prediction(x, $0) == labels[$0] }.count) / Double(x.rows)
        for (kind, norm) in [(AttackSweep.Kind.deepfool, PerturbationNorm.l2), (.deepfool, .linf), (.cw, .l2)] {
            let result = try AttackSweep(kind, recipe: AttackRecipe(norm: norm, steps: 20)).run(model, x, labels: labels, epsilons: [0, 0.01, 0.1, 1, 10])
            let accuracies = result.rows.map(\.robustAccuracy)
            #expect(zip(accuracies, accuracies.dropFirst()).allSatisfy { $0 >= $1 }, "\(kind) \(norm): \(accuracies)")
            #expect(accuracies[0] == clean, "\(kind) \(norm)")
            #expect(result.examples.count == 1)
        }
        #expect(throws: AttackError.self) { try AttackSweep(.cw, recipe: AttackRecipe(norm: .linf)).run(model, x, labels: labels, epsilons: [0.1]) }
        #expect(throws: AttackError.self) { try AttackSweep(.square, recipe: AttackRecipe(norm: .l2)).run(model, x, labels: labels, epsilons: [0.1]) }
    }

    @Test(arguments: TwoSidedEvaluation.Certifier.allCases)
    func certificationByNameEqualsTheComposition(certifier: TwoSidedEvaluation.Certifier) throws {
        let model = try ModelSpec.build("linear:6-16,relu,linear:16-3", seed: 4)
        var rng = Philox(seed: 8)
        let x: Matrix<Float> = rng.matrix(rows: 40, columns: 6, .uniform(0, 1))
        let labels = try model.predict(x)
        let epsilons: [Float] = [0, 0.01, 0.05]
        for (norm, steps) in [(PerturbationNorm.linf, 10), (.l2, 10), (.linf, 0)] where certifier != .lipschitz || norm == .l2 {
            let recipe = AttackRecipe(norm: norm, seed: 2)
            let (rows, lipschitz) = try TwoSidedEvaluation.evaluate(model, x, labels: labels, epsilons: epsilons, certifier: certifier,
                                                                    recipe: recipe, attackSteps: steps)
            let certified: (Float) throws -> [Bool]
            if certifier == .lipschitz {
                let radii = try LipschitzCertificate(model).radii(model, x, labels: labels)
                certified = { e in radii.map { $0 > Double(e) } }
                #expect(lipschitz != nil)
            } else {
                let propagation = try BoundPropagation(model)
                certified = { e in
                    try propagation.certify(x, labels: labels, region: .init(norm: norm, epsilon: e, box: norm == .linf ? InputBox.unit : nil),
                                            method: certifier == .ibp ? .ibp : .crown)
                }
                #expect(lipschitz == nil)
            }
            var options = recipe
            (options.steps, options.apgdSteps) = (max(steps, 1), max(steps, 1))
            let expected = try TwoSidedEvaluation.evaluate(model, x, labels: labels, epsilons: epsilons, certified: certified, attack: { e in
                steps == 0 ? NoAttack() : norm == .linf ? options.apgd(epsilon: e) as any Attack : options.pgd(epsilon: e)
            })
            #expect(rows.map(\.certifiedAccuracy) == expected.map(\.certifiedAccuracy), "\(certifier) \(norm)")
            #expect(rows.map(\.attackAccuracy) == expected.map(\.attackAccuracy), "\(certifier) \(norm)")
            #expect(rows.allSatisfy { $0.inconsistencies.isEmpty && $0.certifiedAccuracy <= $0.attackAccuracy })
            if steps == 0 { #expect(rows.allSatisfy { $0.attackAccuracy == 1 }) }  // labels are the predictions
        }
    }

    @Test func corruptionCopiesAreTheSweepsInputs() throws {
        var rng = Philox(seed: 1)
        let x: Matrix<Float> = rng.matrix(rows: 3, columns: 48, .uniform(0, 1))
        let shape = ImageShape(channels: 3, height: 4, width: 4)
        let chosen: [Corruption] = [.gaussianNoise, .brightness, .contrast]
        let copies = try CorruptionSweep.copies(x, shape: shape, corruptions: chosen, severities: [1, 5], seed: 7)
        #expect(copies.map(\.name) == ["gaussian-noise_1", "gaussian-noise_5", "brightness_1", "brightness_5", "contrast_1", "contrast_5"])
        for (k, (c, s)) in chosen.flatMap({ c in [1, 5].map { (c, $0) } }).enumerated() {
            #expect(copies[k].tensor.values(as: Float.self) == (try c.apply(to: x, shape: shape, severity: s, seed: 7)).elements)
        }
    }
}

extension LinearClassifier {
    /// Logit `j` of row `i` in float32, as the classifier computes it.
    func logit(_ x: Matrix<Float>, _ i: Int, _ j: Int) -> Float {
        var z = bias[j]
        for k in 0..<inputFeatures { z += weight[j * inputFeatures + k] * x[i, k] }
        return z
    }

    /// The top class of row `i` (the first on ties).
    func prediction(_ x: Matrix<Float>, _ i: Int) -> Int {
        (0..<outputFeatures).reduce(0) { logit(x, i, $1) > logit(x, i, $0) ? $1 : $0 }
    }
}
