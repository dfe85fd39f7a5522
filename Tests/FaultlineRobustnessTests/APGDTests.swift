import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// APGD against torchattacks' port of the reference AutoAttack code (scripts/fixtures/make_apgd_fixtures.py):
/// the same trajectories from a fixed start, and the robust accuracy of random-start runs.
@Suite("APGD", .serialized)
struct APGDTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    static let model = try! Sequential.load(weights: root + "/digits_mlp.safetensors", spec: "linear:64-32,relu,linear:32-10")
    static let arrays = Dictionary(uniqueKeysWithValues: try! NPZ.read(root + "/apgd.npz").map { ($0.name, $0.tensor) })
    static func matrix(_ key: String) -> Matrix<Float> { try! arrays[key]!.matrix(Float.self) }
    static func flags(_ key: String) -> [Bool] { arrays[key]!.values(as: Double.self).map { $0 != 0 } }
    static func values(_ key: String) -> [Double] { arrays[key]!.values(as: Double.self) }

    @Test func checkpointScheduleOfTheReference() {
        #expect(APGDAttack.checkpoints(steps: 100) == [22, 41, 57, 70, 80, 87, 93, 99])
        #expect(APGDAttack.checkpoints(steps: 10) == Array(2...10))
    }

    /// From the same start the examples follow the reference's trajectory. A broken sample returns its
    /// last misclassified iterate after up to 100 momentum steps, where float32 rounding (L2 norms, the
    /// DLR ratio) drifts by ~1e-4, so: equal robustness flags on ≥ 98 % of the samples and equal examples
    /// on ≥ 90 % (to 1e-5 for CE-L∞, 1e-3 for DLR and L2). Measured: flags 300/300 in all three.
    @Test(arguments: [("ce_linf", "delta0", 1e-5), ("dlr_linf", "delta0", 1e-3), ("ce_l2", "delta0_l2", 1e-3)] as [(String, String, Float)])
    func followsTheReferenceFromAGivenStart(key: String, startKey: String, tolerance: Float) throws {
        let x = Self.matrix("x"), y = Self.values("y").map { Int($0) }
        var attack = APGDAttack(norm: key.hasSuffix("l2") ? .l2 : .linf, epsilon: key.hasSuffix("l2") ? 0.6 : 0.08,
                                objective: key.hasPrefix("dlr") ? .dlr : .crossEntropy)
        attack.backend = .simd
        let result = try attack.run(Self.model, x, labels: y, start: Self.matrix(startKey))
        let reference = Self.matrix(key), robust = Self.flags(key + "_robust")
        var sameFlag = 0, sameExample = 0
        for i in 0..<x.rows {
            if (result.margin[i] > 0) == robust[i] { sameFlag += 1 }
            let diff = zip(result.adversarial.row(i), reference.row(i)).map { abs($0 - $1) }.max()!
            if diff <= tolerance { sameExample += 1 }
        }
        print("APGD \(key): robust ours \(result.robustAccuracy) reference \(Double(robust.filter { $0 }.count) / Double(x.rows)); same flag \(sameFlag), same example \(sameExample) of \(x.rows)")
        #expect(Double(sameFlag) >= 0.98 * Double(x.rows))
        #expect(Double(sameExample) >= 0.90 * Double(x.rows))
    }

    @Test func randomStartRobustAccuracyMatchesTheReferenceRun() throws {
        let digits = try BundledDatasets.digits()
        let reference = Self.values("random_ce_linf_accuracy"), mean = reference.reduce(0, +) / Double(reference.count)
        let ours = try APGDAttack(epsilon: 0.08).run(Self.model, digits.features, labels: digits.labels).robustAccuracy
        let referenceT = Self.values("random_t_linf_accuracy"), meanT = referenceT.reduce(0, +) / Double(referenceT.count)
        let oursT = try APGDAttack(epsilon: 0.08, objective: .dlr, targetClasses: 9).run(Self.model, digits.features, labels: digits.labels).robustAccuracy
        print("APGD-CE robust accuracy ours \(ours), reference \(reference); APGD-T ours \(oursT), reference \(referenceT)")
        #expect(abs(ours - mean) <= 0.005)
        #expect(abs(oursT - meanT) <= 0.005)
    }

    static var sample: (x: Matrix<Float>, y: [Int]) {
        let x = matrix("x"), y = values("y").map { Int($0) }
        let rows = Array(0..<60)
        return (try! Matrix(rows: rows.count, columns: x.columns, elements: rows.flatMap { Array(x.row($0)) }), rows.map { y[$0] })
    }

    @Test(arguments: [PerturbationNorm.linf, .l2])
    func examplesStayInTheBallAndTheBox(norm: PerturbationNorm) throws {
        let (x, y) = Self.sample
        let eps: Float = norm == .linf ? 0.05 : 0.5
        var attack = APGDAttack(norm: norm, epsilon: eps, steps: 30)
        attack.restarts = 2
        let r = try attack.run(Self.model, x, labels: y)
        for i in 0..<x.rows {
            let delta = zip(r.adversarial.row(i), x.row(i)).map { $0 - $1 }
            let size = norm == .linf ? delta.map(abs).max()! : delta.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(size <= eps * (1 + 1e-5) + 1e-6, "row \(i): ‖δ‖ = \(size)")
            #expect(r.adversarial.row(i).allSatisfy { $0 >= 0 && $0 <= 1 })
            if !r.success[i] { #expect(Array(r.adversarial.row(i)) == Array(x.row(i)), "an unbroken sample returns the clean input") }
        }
    }

    @Test func identicalForAnyBatchSizeAndEarlyStopKeepsTheRobustAccuracy() throws {
        let (x, y) = Self.sample
        var results: [[UInt32]] = []
        var accuracies: [Double] = []
        for (batch, early) in [(1, false), (7, false), (256, false), (7, true)] {
            var a = APGDAttack(epsilon: 0.06, steps: 20, objective: .dlr)
            a.batchSize = batch
            a.backend = .simd
            a.earlyStop = early
            let r = try a.run(Self.model, x, labels: y)
            if !early { results.append(r.adversarial.elements.map(\.bitPattern)) }
            accuracies.append(r.robustAccuracy)
        }
        #expect(results[0] == results[1] && results[1] == results[2])
        #expect(Set(accuracies).count == 1, "early stopping must not change which samples break: \(accuracies)")
    }

    /// Rows a..<b attacked with `sampleOffset` a get the examples they get inside the whole set (random
    /// starts keyed by the row's index there): APGD L∞ and L2 with 2 restarts and PGD with 2 restarts, the
    /// 60 rows split 0..<23, 23..<24, 24..<60, bit for bit (simd backend). Without the offset the split
    /// gives other examples. `TwoSidedEvaluation.tally` of the parts, combined, is the whole's tally.
    @Test func aShardWithItsOffsetGivesTheWholeSetsExamples() throws {
        let (x, y) = Self.sample
        func rows(_ r: Range<Int>) -> (Matrix<Float>, [Int]) {
            (x.gatherRows(Array(r)), Array(y[r]))
        }
        let parts = [0..<23, 23..<24, 24..<60]
        func attacks(_ offset: Int) -> [any Attack] {
            var linf = APGDAttack(norm: .linf, epsilon: 0.06, steps: 10), l2 = APGDAttack(norm: .l2, epsilon: 0.6, steps: 10)
            var pgd = GradientAttack.pgd(epsilon: 0.06, stepSize: 0.01, steps: 10, seed: 5)
            (linf.restarts, l2.restarts, pgd.restarts) = (2, 2, 2)
            (linf.backend, l2.backend, pgd.backend) = (.simd, .simd, .simd)
            (linf.sampleOffset, l2.sampleOffset, pgd.sampleOffset) = (offset, offset, offset)
            return [linf, l2, pgd]
        }
        for k in 0..<3 {
            let whole = try attacks(0)[k].attack(Self.model, x, labels: y, progress: nil)
            var shifted: [UInt32] = [], unshifted: [UInt32] = []
            for r in parts {
                let (xs, ys) = rows(r)
                shifted += try attacks(r.lowerBound)[k].attack(Self.model, xs, labels: ys, progress: nil).adversarial.elements.map(\.bitPattern)
                unshifted += try attacks(0)[k].attack(Self.model, xs, labels: ys, progress: nil).adversarial.elements.map(\.bitPattern)
            }
            let expected = whole.adversarial.elements.map(\.bitPattern)
            #expect(shifted == expected, "attack \(k)")
            #expect(unshifted != expected, "attack \(k): the offset must matter")
        }
        let recipe = AttackRecipe(norm: .linf, box: .unit, seed: 2, backend: .simd)
        let eps: [Float] = [0, 0.01, 0.05]
        let whole = try TwoSidedEvaluation.tally(Self.model, x, labels: y, epsilons: eps, certifier: .crown, recipe: recipe, attackSteps: 5).tallies
        var pieces: [[TwoSidedEvaluation.Tally]] = []
        for r in parts + [60..<60] {
            let (xs, ys) = rows(r)
            pieces.append(try TwoSidedEvaluation.tally(Self.model, xs, labels: ys, epsilons: eps, certifier: .crown, recipe: recipe,
                                                       attackSteps: 5, sampleOffset: r.lowerBound).tallies)
        }
        #expect(eps.indices.map { k in TwoSidedEvaluation.Tally.combined(pieces.map { $0[k] }) } == whole)
        #expect(whole.allSatisfy { $0.certified <= $0.robust } && whole[0].certified > 0 && whole[2].robust < whole[0].robust)
        let rows = try TwoSidedEvaluation.evaluate(Self.model, x, labels: y, epsilons: eps, certifier: .crown, recipe: recipe, attackSteps: 5).rows
        #expect(rows.map(\.attackAccuracy) == whole.map { Double($0.robust) / 60 } && rows.map(\.certifiedAccuracy) == whole.map { Double($0.certified) / 60 })
    }

    @Test func wholeBoxBreaksEverySampleAndBadParametersThrow() throws {
        let (x, y) = Self.sample
        #expect(try APGDAttack(epsilon: 1, steps: 20).run(Self.model, x, labels: y).robustAccuracy == 0)
        #expect(throws: AttackError.self) { try APGDAttack(epsilon: -0.1).run(Self.model, x, labels: y) }
        #expect(throws: AttackError.self) { try APGDAttack(epsilon: .nan).run(Self.model, x, labels: y) }
        #expect(throws: AttackError.self) { try APGDAttack(epsilon: 0.1, targetClasses: 10).run(Self.model, x, labels: y) }
        #expect(throws: AttackError.self) { try APGDAttack(epsilon: 0.1).run(Self.model, x, labels: y.map { $0 + 10 }) }
    }
}

/// Every attack `faultline attack` runs, on a shard with its offset, gives the whole set's outcome row for
/// row — what makes `mpirun -np K faultline attack` equal the one-process run. AutoAttack attacks the rows
/// still robust after each stage, keyed by their index in its input, so a row's draws do not depend on
/// which other rows are still robust either.
@Suite("attacks on shards")
struct ShardedAttackTests {
    @Test(arguments: AttackSweep.Kind.allCases.filter { $0 != .cw })
    func aShardWithItsOffsetGivesTheWholeSetsOutcome(_ kind: AttackSweep.Kind) throws {
        let (x, y) = APGDTests.sample
        var recipe = AttackRecipe(norm: .linf, box: .unit, seed: 4, backend: .simd)
        (recipe.steps, recipe.apgdSteps, recipe.squareQueries, recipe.restarts) = (6, 6, 40, 2)
        let eps: [Float] = [0.02, 0.08]
        let whole = try AttackSweep(kind, recipe: recipe).run(APGDTests.model, x, labels: y, epsilons: eps)
        var robust = [Int](repeating: 0, count: eps.count), examples = [[UInt32]](repeating: [], count: whole.examples.count)
        var stages = [[Int]](repeating: [], count: eps.count)
        for r in [0..<23, 23..<24, 24..<60] {
            var sweep = AttackSweep(kind, recipe: recipe)
            sweep.sampleOffset = r.lowerBound
            let part = try sweep.run(APGDTests.model, x.gatherRows(Array(r)), labels: Array(y[r]), epsilons: eps)
            for k in eps.indices {
                robust[k] += Int((part.rows[k].robustAccuracy * Double(r.count)).rounded())
                let counts = (part.rows[k].stages ?? []).map { Int(($0.robustAccuracy * Double(r.count)).rounded()) }
                stages[k] = stages[k].isEmpty ? counts : zip(stages[k], counts).map(+)
            }
            for k in examples.indices { examples[k] += try part.examples[k].tensor.matrix(Float.self).elements.map(\.bitPattern) }
        }
        #expect(robust == whole.rows.map { Int(($0.robustAccuracy * 60).rounded()) }, "\(kind)")
        #expect(stages == whole.rows.map { ($0.stages ?? []).map { Int(($0.robustAccuracy * 60).rounded()) } }, "\(kind)")
        #expect(examples == (try whole.examples.map { try $0.tensor.matrix(Float.self).elements.map(\.bitPattern) }), "\(kind)")
        // The case is informative: the attack breaks some rows and leaves others at the larger ε.
        if kind != .fgsm { #expect(whole.rows.last!.robustAccuracy < whole.rows.first!.robustAccuracy || whole.rows.last!.robustAccuracy < 1, "\(kind)") }
    }

    /// A key per row (`sampleKeys`) gives each row the draws of its key: attacking rows [5, 9, 2] keyed
    /// 5, 9, 2 reproduces those rows of the whole set's examples; one key too few is refused.
    @Test func explicitKeysPickTheRowsStreams() throws {
        let (x, y) = APGDTests.sample
        var pgd = GradientAttack.pgd(epsilon: 0.05, stepSize: 0.01, steps: 5, seed: 8)
        pgd.backend = .simd
        let whole = try pgd.run(APGDTests.model, x, labels: y).adversarial
        let rows = [5, 9, 2]
        pgd.sampleKeys = rows
        let part = try pgd.run(APGDTests.model, x.gatherRows(rows), labels: rows.map { y[$0] }).adversarial
        #expect(part.elements.map(\.bitPattern) == whole.gatherRows(rows).elements.map(\.bitPattern))
        pgd.sampleKeys = [5, 9]
        #expect(throws: AttackError.self) { try pgd.run(APGDTests.model, x.gatherRows(rows), labels: rows.map { y[$0] }) }
    }
}
