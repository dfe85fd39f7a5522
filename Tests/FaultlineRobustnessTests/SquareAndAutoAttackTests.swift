import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// Square against torchattacks' port of AutoAttack's square.py, and the AutoAttack-style ensemble.
@Suite("Square and AutoAttack", .serialized)
struct SquareAndAutoAttackTests {
    @Test func windowScheduleOfAutoAttack() {
        #expect(SquareAttack.windowShare(pInit: 0.8, iteration: 0, queries: 5000) == 0.8)
        #expect(SquareAttack.windowShare(pInit: 0.8, iteration: 5, queries: 5000) == 0.8)  // 10/10,000 of the budget
        #expect(SquareAttack.windowShare(pInit: 0.8, iteration: 6, queries: 5000) == 0.4)
        #expect(SquareAttack.windowShare(pInit: 0.8, iteration: 2600, queries: 5000) == 0.8 / 128)
        #expect(SquareAttack.windowShare(pInit: 0.8, iteration: 4999, queries: 5000) == 0.8 / 512)
    }

    /// Both sides draw their own random windows, so only the robust accuracy is comparable: the
    /// reference gives 70.3–73.3 % over three seeds on these 300 digits (8×8 images); we ask for ±3 points of its mean.
    @Test func squareRobustAccuracyMatchesTheReferenceRun() throws {
        let x = APGDTests.matrix("x"), y = APGDTests.values("y").map { Int($0) }
        let reference = APGDTests.values("square_linf_accuracy"), mean = reference.reduce(0, +) / Double(reference.count)
        let ours = try SquareAttack(epsilon: 0.08, queries: 1000).run(APGDTests.model, x, labels: y)
        print("Square robust accuracy ours \(ours.robustAccuracy), reference \(reference)")
        #expect(abs(ours.robustAccuracy - mean) <= 0.03)
        for i in 0..<x.rows {
            #expect(zip(ours.adversarial.row(i), x.row(i)).allSatisfy { abs($0 - $1) <= 0.08 + 1e-6 && $0 >= 0 && $0 <= 1 })
            if ours.success[i] { #expect(ours.margin[i] <= 0 && ours.successStep[i] != nil) }
        }
    }

    @Test func squareIsIdenticalForAnyBatchSize() throws {
        let (x, y) = APGDTests.sample
        var results: [[UInt32]] = []
        for batch in [1, 7, 256] {
            var a = SquareAttack(epsilon: 0.06, queries: 200)
            a.batchSize = batch
            a.backend = .simd
            results.append(try a.run(APGDTests.model, x, labels: y).adversarial.elements.map(\.bitPattern))
        }
        #expect(results[0] == results[1] && results[1] == results[2])
        #expect(throws: AttackError.self) { try SquareAttack(epsilon: 0.1, queries: 0).run(APGDTests.model, x, labels: y) }
        var odd = SquareAttack(epsilon: 0.1)
        odd.imageShape = ImageShape(channels: 1, height: 4, width: 4)
        #expect(throws: AttackError.self) { try odd.run(APGDTests.model, x, labels: y) }
    }

    @Test func ensembleIsThePointwiseWorstCase() throws {
        let (x, y) = APGDTests.sample
        var ce = APGDAttack(epsilon: 0.08, steps: 30)
        ce.seed = 1
        let alone = try ce.run(APGDTests.model, x, labels: y)
        var t = APGDAttack(epsilon: 0.08, steps: 30, objective: .dlr, targetClasses: 3)
        t.seed = 1
        let ensemble = AutoAttack(attacks: [ce, t, SquareAttack(epsilon: 0.08, queries: 300)])
        let report = try ensemble.run(APGDTests.model, x, labels: y)
        #expect(report.robustAccuracy <= alone.robustAccuracy)
        #expect(report.robustAccuracyAfter.first!.accuracy == alone.robustAccuracy, "the first attack sees every sample")
        #expect(zip(report.robustAccuracyAfter.dropFirst(), report.robustAccuracyAfter).allSatisfy { $0.accuracy <= $1.accuracy })
        let predicted = try APGDTests.model.predict(report.result.adversarial)
        for i in 0..<x.rows {
            #expect((report.brokenBy[i] != nil) == (predicted[i] != y[i]), "row \(i): brokenBy \(report.brokenBy[i] ?? "nil")")
        }
        let standard = AutoAttack.standard(epsilon: 0.08, classes: 10)
        #expect(standard.attacks.map(\.name) == ["apgd-ce", "apgd-t-dlr", "square"])
    }
}
