import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Testing

/// Properties every attack must have over families of inputs: ε = 0 is the clean point for every
/// attack and norm, any ε grid (0 included) gives a valid robustness curve, and every attack is
/// bit-identical for batch sizes 1, 7 and 256 on a CNN with pooling (simd backend, whose sums run in a
/// batch-independent order).
@Suite("attack families", .serialized)
struct AttackFamilyTests {
    /// An untrained CNN with max pooling on 1×8×8 inputs, and inputs in [0, 1] whose labels are the model's
    /// own predictions (so every row is correctly classified and every attack has work to do).
    static let cnn: (model: Sequential, x: Matrix<Float>, y: [Int]) = {
        let model = try! ModelSpec.build("input:1x8x8,conv2d:1-4-3-1-1,relu,maxpool:2,flatten,linear:64-16,relu,linear:16-6", seed: 5)
        var rng = Philox(seed: 17)
        let x = try! Matrix<Float>(rows: 40, columns: 64, elements: (0..<(40 * 64)).map { _ in Float(rng.uniform()) })
        return (model, x, try! model.predict(x))
    }()

    static func gradientAttacks(epsilon e: Float) -> [(String, GradientAttack)] {
        var bim = GradientAttack(norm: .linf, epsilon: e, stepSize: e / 4, steps: 5)
        bim.seed = 1
        var mifgsm = GradientAttack(norm: .linf, epsilon: e, stepSize: e / 5, steps: 5)
        mifgsm.momentum = 1
        var bimL2 = GradientAttack(norm: .l2, epsilon: e, stepSize: e / 4, steps: 5)
        bimL2.seed = 1
        var mifgsmL2 = GradientAttack(norm: .l2, epsilon: e, stepSize: e / 5, steps: 5)
        mifgsmL2.momentum = 1
        var dlr = GradientAttack.pgd(epsilon: e, stepSize: e / 4, steps: 5, seed: 3)
        dlr.loss = .dlr
        return [("fgsm-linf", .fgsm(epsilon: e)), ("fgsm-l2", .fgsm(epsilon: e, norm: .l2)),
                ("bim-linf", bim), ("bim-l2", bimL2), ("mifgsm-linf", mifgsm), ("mifgsm-l2", mifgsmL2),
                ("pgd-linf", .pgd(epsilon: e, stepSize: e / 4, steps: 5, seed: 2)),
                ("pgd-l2", .pgd(epsilon: e, stepSize: e / 4, steps: 5, norm: .l2, seed: 2)), ("pgd-dlr", dlr)]
    }

    /// ε = 0: every attack returns exactly the clean inputs (no NaN: the L2 projection used to
    /// evaluate 0/0) and the robust accuracy is the clean accuracy.
    @Test func epsilonZeroIsTheCleanPointForEveryAttackAndNorm() throws {
        let (model, x, y) = Self.cnn
        var results: [(String, AttackResult)] = try Self.gradientAttacks(epsilon: 0).map { ($0.0, try $0.1.run(model, x, labels: y)) }
        for norm in [PerturbationNorm.linf, .l2] {
            for objective in [APGDAttack.Objective.crossEntropy, .dlr] {
                results.append(("apgd-\(objective)-\(norm)", try APGDAttack(norm: norm, epsilon: 0, steps: 10, objective: objective).run(model, x, labels: y)))
            }
        }
        results.append(("square", try SquareAttack(epsilon: 0, queries: 20).run(model, x, labels: y)))
        for (name, r) in results {
            #expect(r.adversarial.elements == x.elements, "\(name): ε = 0 must return the clean inputs")
            #expect(r.robustAccuracy == 1, "\(name): robust accuracy \(r.robustAccuracy) at ε = 0 on correctly classified rows")
        }
    }

    /// Any ε grid, in any order and with 0 in it, gives a non-increasing curve that starts at the clean
    /// accuracy, for both norms.
    @Test(arguments: [PerturbationNorm.linf, .l2])
    func curveOverAnyGridContainingZero(norm: PerturbationNorm) throws {
        let (model, x, y) = Self.cnn
        let grid: [Float] = norm == .linf ? [0.1, 0, 0.02, 0.05, 0] : [2, 0, 0.5, 1, 0.25]
        let curve = try RobustnessCurve.robustAccuracy(model, x, labels: y, epsilons: grid) { e in
            AttackRecipe(norm: norm, seed: 4, steps: 10).pgd(epsilon: e)
        }
        #expect(curve.map(\.epsilon) == grid.sorted())
        #expect(curve[0].robustAccuracy == 1, "\(norm): the curve at ε = 0 is the clean accuracy, got \(curve[0].robustAccuracy)")
        #expect(zip(curve, curve.dropFirst()).allSatisfy { $0.robustAccuracy >= $1.robustAccuracy }, "\(curve)")
        #expect(curve.last!.robustAccuracy < 1, "the largest budget must break something")
    }

    /// Every attack, early stopping included, is bit-identical for batch sizes 1, 7 and 256: a row's
    /// result never depends on which rows share its batch or where compaction moved it.
    @Test func everyAttackIsIdenticalForBatchSizes1_7_256() throws {
        let (model, x, y) = Self.cnn
        func same(_ name: String, _ run: (Int) throws -> AttackResult) throws {
            let results = try [1, 7, 256].map { try run($0) }
            for r in results.dropFirst() {
                #expect(r.adversarial.elements.map(\.bitPattern) == results[0].adversarial.elements.map(\.bitPattern), "\(name): examples differ across batch sizes")
                #expect(r.successStep == results[0].successStep, "\(name): success steps differ across batch sizes")
            }
        }
        for (name, attack) in Self.gradientAttacks(epsilon: 0.1) + [("pgd-l2-large", .pgd(epsilon: 1.5, stepSize: 0.3, steps: 8, norm: .l2, seed: 9))] {
            try same(name) { b in
                var a = attack
                (a.batchSize, a.backend, a.earlyStop) = (b, .simd, true)
                return try a.run(model, x, labels: y)
            }
        }
        for norm in [PerturbationNorm.l2, .linf] {
            try same("deepfool-\(norm)") { b in
                var a = DeepFool(norm: norm, candidates: 6, maxIterations: 30)
                (a.batchSize, a.backend) = (b, .simd)
                return try a.run(model, x, labels: y)
            }
        }
        try same("cw") { b in
            var a = CarliniWagnerL2(steps: 30, searchSteps: 3, initialConstant: 0.1, learningRate: 0.05)
            (a.batchSize, a.backend) = (b, .simd)
            return try a.run(model, x, labels: y)
        }
        for objective in [APGDAttack.Objective.crossEntropy, .dlr] {
            try same("apgd-\(objective)") { b in
                var a = APGDAttack(norm: .linf, epsilon: 0.05, steps: 12, objective: objective)
                (a.batchSize, a.backend, a.earlyStop) = (b, .simd, true)
                return try a.run(model, x, labels: y)
            }
        }
        try same("square") { b in
            var a = SquareAttack(epsilon: 0.1, queries: 40)
            (a.batchSize, a.backend) = (b, .simd)
            return try a.run(model, x, labels: y)
        }
    }

    /// DLR's gradient is exactly zero when the true class ranks third (the loss is then the constant
    /// (v − ε)/v), and equals central differences of the float64 definition otherwise. The model is the
    /// identity, so the input gradient is the logit gradient.
    @Test func dlrGradientIsExactlyZeroWhenTheLabelRanksThird() throws {
        let c = 7
        var model = try ModelSpec.build("linear:\(c)-\(c)")
        model.updateParameters { index, values in
            for i in values.indices { values[i] = index == 0 && i % (c + 1) == 0 ? 1 : 0 }
        }
        var rng = Philox(seed: 23)
        for trial in 0..<200 {
            let scale = [0.01, 1, 30][trial % 3]
            let z = (0..<c).map { _ in Float(scale * (rng.uniform() * 2 - 1)) }
            let order = z.indices.sorted { z[$0] > z[$1] || (z[$0] == z[$1] && $0 < $1) }
            let rank = trial % c, y = order[rank]
            let g = try model.inputGradient(try Matrix(rows: 1, columns: c, elements: z), labels: [y], loss: .dlr).gradient.elements
            if rank == 2 {
                #expect(g.allSatisfy { $0 == 0 }, "rank 3 (trial \(trial)): gradient \(g) must be exactly 0")
                continue
            }
            // Central differences of −(z_y − max_{j≠y} z_j)/(z_π1 − z_π3) in Double (the ranks stay put for small h).
            func dlr(_ v: [Double]) -> Double {
                let sorted = v.sorted(by: >), other = v.indices.filter { $0 != y }.map { v[$0] }.max()!
                return -(v[y] - other) / (sorted[0] - sorted[2])
            }
            let gap = zip(order, order.dropFirst()).map { Double(z[$0.0] - z[$0.1]) }.min()!
            guard gap > 1e-3 * scale else { continue }
            let h = 1e-4 * min(gap, Double(z[order[0]] - z[order[2]]))  // FD error ~ (h/D)²: keep h ≪ every gap and D
            for j in 0..<c {
                var plus = z.map(Double.init), minus = plus
                plus[j] += h
                minus[j] -= h
                let expected = (dlr(plus) - dlr(minus)) / (2 * h)
                #expect(abs(Double(g[j]) - expected) <= 1e-4 * max(1, abs(expected)), "rank \(rank + 1), class \(j): \(g[j]) vs \(expected)")
            }
        }
    }
}
