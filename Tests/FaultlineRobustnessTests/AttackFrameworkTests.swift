import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// A classifier that is not a `Sequential`: z = W·x + b in plain loops (each row on its own), to show
/// that attacks, curves, AutoAttack and smoothing need only `DifferentiableClassifier`.
struct LinearClassifier: DifferentiableClassifier {
    let weight: [Float]  // outputFeatures × inputFeatures, row-major
    let bias: [Float]
    let inputFeatures: Int, outputFeatures: Int
    var spec: String { "test-linear:\(inputFeatures)-\(outputFeatures)" }
    /// Rows of 12 features read as 3×2×2 images (Square needs a layout).
    var inputImageShape: ImageShape? { inputFeatures == 12 ? ImageShape(channels: 3, height: 2, width: 2) : nil }

    final class Workspace: ClassifierWorkspace {
        let capacity: Int, classes: Int
        let z: AlignedBuffer<Float>, dz: AlignedBuffer<Float>
        init(capacity: Int, classes: Int) {
            (self.capacity, self.classes) = (capacity, classes)
            (z, dz) = (AlignedBuffer(uninitializedCount: capacity * classes), AlignedBuffer(uninitializedCount: capacity * classes))
        }
        func logits(rows: Int) -> MatrixPointer<Float> { MatrixPointer(z.pointer, rows: rows, columns: classes) }
        var logitGradientScratch: UnsafeMutablePointer<Float> { dz.pointer }
    }

    init(inputs d: Int, classes c: Int, seed: UInt64) {
        var rng = Philox(seed: seed)
        weight = (0..<(c * d)).map { _ in Float(rng.normal()) }
        bias = (0..<c).map { _ in Float(rng.normal() * 0.1) }
        (inputFeatures, outputFeatures) = (d, c)
    }

    func makeWorkspace(capacity: Int) -> Workspace { Workspace(capacity: capacity, classes: outputFeatures) }

    func logits(_ x: UnsafePointer<Float>, rows: Int, workspace: Workspace, context: ForwardContext) -> MatrixPointer<Float> {
        let d = inputFeatures, c = outputFeatures
        for r in 0..<rows {
            for j in 0..<c {
                var s = bias[j]
                for k in 0..<d { s += weight[j * d + k] * x[r * d + k] }
                workspace.z.pointer[r * c + j] = s
            }
        }
        return workspace.logits(rows: rows)
    }

    func inputGradient(logitGradient dz: MatrixPointer<Float>, workspace: Workspace, context: ForwardContext,
                       into gradient: MutableMatrixPointer<Float>) {
        let d = inputFeatures, c = outputFeatures
        for r in 0..<dz.rows {
            for k in 0..<d {
                var s: Float = 0
                for j in 0..<c { s += dz.base[r * dz.rowStride + j] * weight[j * d + k] }
                gradient.base[r * gradient.rowStride + k] = s
            }
        }
    }

    /// Cross-entropy of row x with label y in Double (the finite-difference oracle).
    func crossEntropy(_ x: [Double], _ y: Int) -> Double {
        let z = (0..<outputFeatures).map { j in Double(bias[j]) + (0..<inputFeatures).reduce(0.0) { $0 + Double(weight[j * inputFeatures + $1]) * x[$1] } }
        let m = z.max()!
        return m + log(z.reduce(0) { $0 + exp($1 - m) }) - z[y]
    }

    /// The exact smallest L∞ perturbation (no box) that makes some class j score at least class y.
    func minimalLinf(_ x: [Float], _ y: Int) -> Double {
        let d = inputFeatures
        let z = (0..<outputFeatures).map { j in Double(bias[j]) + (0..<d).reduce(0.0) { $0 + Double(weight[j * d + $1]) * Double(x[$1]) } }
        return (0..<outputFeatures).filter { $0 != y }.map { j in
            (z[y] - z[j]) / (0..<d).reduce(0.0) { $0 + abs(Double(weight[y * d + $1] - weight[j * d + $1])) }
        }.min()!
    }
}

/// The attack framework: the one compaction routine, the recipe's step rule, AutoAttack configured by
/// options, and attacks on a classifier that is not a `Sequential`.
@Suite("attack framework", .serialized)
struct AttackFrameworkTests {
    // MARK: Compaction

    /// The compaction the attacks used before `BatchRows` (swap the finished slot with the last live one,
    /// re-examine the slot), on slot contents only: the order every attack's results depend on.
    static func referenceOrder(_ origin: [Int], done: Set<Int>) -> (order: [Int], live: Int) {
        var order = origin, live = origin.count, k = 0
        while k < live {
            if done.contains(order[k]) { live -= 1; order.swapAt(k, live) } else { k += 1 }
        }
        return (order, live)
    }

    @Test(arguments: [1, 2, 7, 33])
    func compactionMovesEveryBufferOfEveryRowTogether(capacity: Int) throws {
        var rng = Philox(seed: UInt64(capacity))
        for trial in 0..<60 {
            let batch = BatchRows(capacity: capacity)
            let wide = batch.floats(width: 5), narrow = batch.floats(width: 1)
            let labels = batch.column(repeating: -1), steps = batch.column(width: 3, repeating: Int?.none)
            let streams = batch.column(repeating: Philox(seed: 0))
            let count = trial == 0 ? capacity : Int(rng.uniform() * Double(capacity + 1))
            let rows = (0..<count).map { 1000 + 3 * $0 + trial }  // input indices, not slot numbers
            batch.load(rows)
            // Every buffer's contents encode the input row: moved consistently ⇔ still decodes to origin.
            for (k, i) in rows.enumerated() {
                for j in 0..<5 { wide.pointer[k * 5 + j] = Float(i * 10 + j) }
                narrow.pointer[k] = Float(-i)
                labels[k] = i % 7
                for j in 0..<3 { steps.pointer[k * 3 + j] = j == 1 ? nil : i + j }
                streams[k] = Philox(seed: UInt64(i))
            }
            let logitsBuffer = (0..<(count * 2 + 2)).map { Float($0 / 2) }  // logits row k holds k: follows the slots
            var logitOrigin = logitsBuffer
            // Random keep-masks, including all-keep (trial % 5 == 1) and all-done (trial % 5 == 2).
            let share = [0.5, 0, 1, 0.1, 0.9][trial % 5]
            let done = Set(rows.filter { _ in rng.uniform() < share })
            var seen: [Int] = []
            let result = logitOrigin.withUnsafeMutableBufferPointer { p in
                batch.compact(live: count, alongside: MatrixPointer(UnsafePointer(p.baseAddress!), rows: count, columns: 2)) { k in
                    seen.append(batch.origin[k])
                    return done.contains(batch.origin[k])
                }
            }
            let reference = Self.referenceOrder(rows, done: done)
            #expect(result.live == count - done.count && result.live == reference.live)
            #expect(batch.rows == reference.order, "slot order must be the attacks' historical compaction order")
            #expect(Set(seen) == Set(rows) && seen.count == count, "every row is examined exactly once")
            #expect(batch.rows[..<result.live].allSatisfy { !done.contains($0) } && batch.rows[result.live...].allSatisfy { done.contains($0) })
            #expect(result.moved == (reference.order != rows))
            for k in 0..<count {
                let i = batch.origin[k]
                #expect((0..<5).allSatisfy { wide.pointer[k * 5 + $0] == Float(i * 10 + $0) }, "trial \(trial) slot \(k): wide row")
                #expect(narrow.pointer[k] == Float(-i) && labels[k] == i % 7)
                #expect((0..<3).allSatisfy { steps.pointer[k * 3 + $0] == ($0 == 1 ? nil : i + $0) })
                var a = streams[k], b = Philox(seed: UInt64(i))
                #expect(a.uniform() == b.uniform(), "trial \(trial) slot \(k): random stream")
                let logitRow = Int(logitOrigin[k * 2])
                #expect(rows[logitRow] == i && logitOrigin[k * 2 + 1] == logitOrigin[k * 2], "logits follow their row")
            }
            if done.isEmpty {
                #expect(batch.rows == rows && !result.moved && logitOrigin == logitsBuffer, "nothing finished: nothing moves")
            }
        }
    }

    // MARK: Recipe

    @Test func pgdStepRuleIsTwoAndAHalfEpsilonOverSteps() {
        for steps in [1, 7, 10, 20, 100] {
            for e: Float in [0, 1e-6, 1e-3, 8 / 255, 0.03, 0.3, 2] {
                let rule = 2.5 * e / Float(steps)
                #expect(AttackRecipe.pgdStepSize(epsilon: e, steps: steps).bitPattern == rule.bitPattern)
                for norm in [PerturbationNorm.linf, .l2] {
                    let recipe = AttackRecipe(norm: norm, steps: steps)
                    for a in [recipe.pgd(epsilon: e), recipe.bim(epsilon: e), recipe.miFGSM(epsilon: e)] {
                        #expect(a.stepSize.bitPattern == rule.bitPattern && a.steps == steps && a.norm == norm && a.epsilon == e)
                    }
                    #expect(recipe.fgsm(epsilon: e).stepSize == e && recipe.fgsm(epsilon: e).steps == 1)
                    #expect(AttackRecipe(steps: steps, stepSize: 0.125).pgd(epsilon: e).stepSize == 0.125, "an explicit step size wins")
                }
            }
        }
        #expect(AttackRecipe().pgd(epsilon: 0.1).randomStart && !AttackRecipe().bim(epsilon: 0.1).randomStart)
        #expect(AttackRecipe().miFGSM(epsilon: 0.1).momentum == 1)
    }

    /// Why the rule has no floor: at ε = 0 the projection returns the clean point for any step size, so
    /// max(α, 1e-4) changes nothing there (both norms, with and without early stopping).
    @Test(arguments: [PerturbationNorm.linf, .l2])
    func stepSizeIsIrrelevantAtEpsilonZero(norm: PerturbationNorm) throws {
        let (model, x, y) = AttackFamilyTests.cnn
        for early in [false, true] {
            let results = try [Float(0), 1e-4, 0.5].map { alpha in
                var a = AttackRecipe(norm: norm, steps: 5, stepSize: alpha, earlyStop: early).pgd(epsilon: 0)
                a.backend = .simd
                return try a.run(model, x, labels: y)
            }
            for r in results {
                #expect(r.adversarial.elements.map(\.bitPattern) == x.elements.map(\.bitPattern))
                #expect(r.successStep == results[0].successStep && r.margin.map(\.bitPattern) == results[0].margin.map(\.bitPattern))
            }
        }
    }

    /// `AutoAttack.standard(…, options:)` builds exactly the members that callers used to patch by
    /// downcasting, and the ensembles give bit-identical reports.
    @Test func autoAttackOptionsEqualTheDowncastPatchedEnsemble() throws {
        let (model, x, y) = AttackFamilyTests.cnn
        typealias Patch = (queries: Int, steps: Int, earlyStop: Bool, box: InputBox)
        for (norm, classes) in [(PerturbationNorm.linf, 6), (.l2, 6), (.linf, 3), (.linf, 2)] {
            for patch: Patch in [(1000, 100, true, InputBox(0...1)), (40, 8, false, InputBox(-1...2)), (5000, 100, false, InputBox(0...1))] {
                var patched = AutoAttack.standard(norm: norm, epsilon: 0.05, classes: classes, seed: 7)
                patched.attacks = patched.attacks.map { member in
                    if var square = member as? SquareAttack { (square.queries, square.box) = (patch.queries, patch.box); return square }
                    if var apgd = member as? APGDAttack { (apgd.earlyStop, apgd.steps, apgd.box) = (patch.earlyStop, patch.steps, patch.box); return apgd }
                    return member
                }
                let options = AttackRecipe(norm: norm, box: patch.box, seed: 7, apgdSteps: patch.steps, squareQueries: patch.queries,
                                           earlyStop: patch.earlyStop)
                let configured = AutoAttack.standard(epsilon: 0.05, classes: classes, options: options)
                #expect(configured.attacks.map { String(reflecting: $0) } == patched.attacks.map { String(reflecting: $0) },
                        "\(norm), \(classes) classes, \(patch)")
            }
        }
        #expect(AutoAttack.standard(epsilon: 0.05, classes: 6, options: AttackRecipe()).attacks.map { String(reflecting: $0) }
                == AutoAttack.standard(epsilon: 0.05, classes: 6).attacks.map { String(reflecting: $0) }, "default options are the standard ensemble")
        // The same members give the same report, bit for bit.
        var patched = AutoAttack.standard(epsilon: 0.06, classes: 6, seed: 3, backend: .simd)
        patched.attacks = patched.attacks.map { member in
            if var square = member as? SquareAttack { square.queries = 30; return square }
            if var apgd = member as? APGDAttack { (apgd.earlyStop, apgd.steps) = (true, 6); return apgd }
            return member
        }
        let options = AttackRecipe(seed: 3, apgdSteps: 6, squareQueries: 30, earlyStop: true, backend: .simd)
        let a = try patched.run(model, x, labels: y), b = try AutoAttack.standard(epsilon: 0.06, classes: 6, options: options).run(model, x, labels: y)
        #expect(a.result.adversarial.elements.map(\.bitPattern) == b.result.adversarial.elements.map(\.bitPattern))
        #expect(a.brokenBy == b.brokenBy && a.robustAccuracyAfter.map(\.accuracy) == b.robustAccuracyAfter.map(\.accuracy))
    }

    // MARK: A classifier that is not a Sequential

    static let linear = LinearClassifier(inputs: 12, classes: 5, seed: 11)
    static let inputs: (x: Matrix<Float>, y: [Int]) = {
        var rng = Philox(seed: 29)
        let x = try! Matrix<Float>(rows: 30, columns: 12, elements: (0..<360).map { _ in Float(rng.uniform()) })
        return (x, try! linear.predict(x))
    }()

    /// The default `inputGradient(_:labels:…)` (forward, loss, backward) equals central differences of
    /// the float64 cross-entropy, over rows and labels.
    @Test func defaultInputGradientMatchesFiniteDifferences() throws {
        let model = Self.linear, (x, _) = Self.inputs, d = model.inputFeatures
        let workspace = model.makeWorkspace(capacity: x.rows)
        for label in 0..<model.outputFeatures {
            let labels = [Int](repeating: label, count: x.rows)
            var losses = [Float](repeating: 0, count: x.rows), gradient = [Float](repeating: 0, count: x.rows * d)
            x.withUnsafeBufferPointer { px in
                labels.withUnsafeBufferPointer { py in
                    model.inputGradient(MatrixPointer(px.baseAddress!, rows: x.rows, columns: d), labels: py.baseAddress!, targets: nil,
                                        loss: .crossEntropy, losses: &losses, into: MutableMatrixPointer(&gradient, rows: x.rows, columns: d),
                                        workspace: workspace, context: .inference)
                }
            }
            for i in 0..<x.rows {
                let row = x.row(i).map(Double.init)
                #expect(abs(Double(losses[i]) - model.crossEntropy(row, label)) <= 1e-4 * max(1, model.crossEntropy(row, label)))
                for k in 0..<d {
                    var plus = row, minus = row
                    plus[k] += 1e-4
                    minus[k] -= 1e-4
                    let expected = (model.crossEntropy(plus, label) - model.crossEntropy(minus, label)) / 2e-4
                    #expect(abs(Double(gradient[i * d + k]) - expected) <= 1e-3 * max(1, abs(expected)), "row \(i), feature \(k), label \(label)")
                }
            }
        }
    }

    /// PGD, APGD, Square, DeepFool, AutoAttack, the curve, the bisection and smoothing all run on the
    /// hand-written classifier; nothing breaks a sample below its exact minimal L∞ distance, PGD breaks
    /// most samples at 1.5× it, and results do not depend on the batch size.
    @Test func attacksRunOnANonSequentialClassifier() throws {
        let model = Self.linear, (x, y) = Self.inputs
        let box = InputBox(-100...100)  // wide: the exact minimum ignores the box
        let exact = (0..<x.rows).map { model.minimalLinf(Array(x.row($0)), y[$0]) }
        let recipe = AttackRecipe(box: box, seed: 1, steps: 40, apgdSteps: 20, squareQueries: 100)
        // Soundness: at 0.95× each sample's own minimum nothing breaks it.
        for i in 0..<x.rows {
            let row = AttackFrameworkTests.rows(x, [i])
            for attack in [recipe.pgd(epsilon: Float(0.95 * exact[i])) as any Attack, recipe.apgd(epsilon: Float(0.95 * exact[i]))] {
                #expect(try !attack.attack(model, row, labels: [y[i]], progress: nil).success[0], "\(attack.name) row \(i) below its minimal ε")
            }
        }
        let sorted = exact.sorted(), median = Float(sorted[sorted.count / 2])
        let pgd = try recipe.pgd(epsilon: 1.5 * median).run(model, x, labels: y)
        let broken = (0..<x.rows).filter { pgd.success[$0] }
        #expect(broken.allSatisfy { exact[$0] <= 1.5 * Double(median) * (1 + 1e-5) })
        #expect(Double(broken.count) >= 0.4 * Double(x.rows), "PGD at 1.5× the median minimum breaks \(broken.count) of \(x.rows)")
        for i in 0..<x.rows {
            #expect(zip(pgd.adversarial.row(i), x.row(i)).allSatisfy { abs($0 - $1) <= 1.5 * median * (1 + 1e-6) })
        }
        // Bisection: every answer is at least the exact minimum.
        let minimal = try RobustnessCurve.minimalEpsilon(model, x, labels: y, upper: 3 * median, rounds: 6) { e in recipe.pgd(epsilon: e) }
        for i in 0..<x.rows { if let m = minimal[i] { #expect(Double(m) >= exact[i] * (1 - 1e-5), "row \(i): \(m) < \(exact[i])") } }
        #expect(minimal.compactMap { $0 }.count >= broken.count / 2)
        // The curve over any attack, and batch-size identity on this model.
        let curve = try RobustnessCurve.robustAccuracy(model, x, labels: y, epsilons: [0, median, 2 * median]) { e in recipe.apgd(epsilon: e) }
        #expect(curve[0].robustAccuracy == 1 && curve[2].robustAccuracy <= curve[1].robustAccuracy && curve[2].robustAccuracy < 1)
        for make in [{ (b: Int) -> any Attack in var a = recipe.pgd(epsilon: median); (a.batchSize, a.earlyStop) = (b, true); return a },
                     { b in var a = recipe.apgd(epsilon: median); (a.batchSize, a.earlyStop) = (b, true); return a },
                     { b in var a = DeepFool(norm: .linf, candidates: 5); (a.batchSize, a.box) = (b, box); return a }] {
            let results = try [1, 7, 64].map { try make($0).attack(model, x, labels: y, progress: nil) }
            for r in results.dropFirst() {
                #expect(r.adversarial.elements.map(\.bitPattern) == results[0].adversarial.elements.map(\.bitPattern) && r.successStep == results[0].successStep)
            }
        }
        let square = try recipe.square(epsilon: 2 * median).run(model, x, labels: y)
        #expect(square.robustAccuracy < 1 && (0..<x.rows).allSatisfy { !square.success[$0] || exact[$0] <= 2 * Double(median) * (1 + 1e-5) })
        let auto = try AutoAttack.standard(epsilon: median, classes: model.outputFeatures, options: recipe).run(model, x, labels: y)
        #expect(auto.robustAccuracy <= curve[1].robustAccuracy, "the ensemble starts with the curve's APGD-CE")
        #expect(auto.robustAccuracyAfter.count == 3)
        var smoothing = RandomizedSmoothing(sigma: 0.1, selectionSamples: 10, estimationSamples: 200)
        smoothing.noiseBatch = 37
        let certificates = try smoothing.certify(model, AttackFrameworkTests.rows(x, [0, 1, 2]))
        #expect(certificates.count == 3 && certificates.allSatisfy { $0.prediction == nil || $0.radius > 0 })
    }

    static func rows(_ x: Matrix<Float>, _ indices: [Int]) -> Matrix<Float> {
        try! Matrix(rows: indices.count, columns: x.columns, elements: indices.flatMap { Array(x.row($0)) })
    }
}
